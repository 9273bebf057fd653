"""Incidents as operators see them: building the record and explaining its probable root.

The explanation is written in plain French and English from three kinds of evidence:
the causal edges learned between alarm types that link folded alarms to their causes,
the topology (how far the incident's devices are from the head's device, and one path),
and the timing (when it started, how long it lasted, how many repeats were folded).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from allo.domain.alarms import Evidence, FoldReason, Incident, Member
from allo.noc.pipeline import Flow
from allo.noc.topology import Topology


def member_of(flow: Flow, incident_flows: set[int], roots: set[int]) -> Member:
    """The member record of ``flow``: why it is folded and under which alarm of the incident."""
    if id(flow) in roots:
        return Member(flow.alarm, FoldReason.ROOT, None, "no learned cause nearby")
    if flow.reason is not None:
        under = (
            flow.under.alarm.row
            if flow.under is not None and id(flow.under) in incident_flows
            else None
        )
        return Member(flow.alarm, flow.reason, under, flow.detail)
    if flow.cause is not None:
        inside = id(flow.cause) in incident_flows
        cause = flow.cause.alarm
        where = "same device" if flow.cause_hops == 0 else f"{flow.cause_hops} hop(s) away"
        return Member(
            flow.alarm,
            FoldReason.CAUSED,
            cause.row if inside else None,
            f"caused by {cause.alarm_type} on {cause.device} ({where}, "
            f"{flow.alarm.raised_at - cause.raised_at:.0f} s before)",
        )
    return Member(flow.alarm, FoldReason.GROUPED, None, "same type and device as a listed root")


def build_incident(
    incident_id: str,
    head: Flow,
    flows: Sequence[Flow],
    roots: Sequence[Flow],
    topology: Topology | None,
) -> Incident:
    """The frozen incident of an open group (``flows`` includes the head).

    Runs once per alarm of a replay: the common member (folded by a stage, not a listed
    root) is built here directly; the others go through :func:`member_of`."""
    inside = {id(f) for f in flows}
    root_ids = {id(r) for r in roots}
    members = []
    for f in flows:
        if f is head:
            continue
        reason = f.reason
        if reason is None or (root_ids and id(f) in root_ids):
            members.append(member_of(f, inside, root_ids))
            continue
        under = f.under
        members.append(
            Member(
                f.alarm,
                reason,
                under.alarm.row if under is not None and id(under) in inside else None,
                f.detail,
            )
        )
    devices = tuple(sorted({f.device for f in flows}))
    evidence = explain(head, flows, members, devices, topology, inside)
    return Incident(
        incident_id, head.alarm, tuple(members), tuple(r.alarm for r in roots), devices, evidence
    )


def explain(
    head: Flow,
    flows: Sequence[Flow],
    members: Sequence[Member],
    devices: Sequence[str],
    topology: Topology | None,
    inside: set[int] | None = None,
) -> tuple[Evidence, ...]:
    """Evidence for the head as probable root, in French and English (``inside``: the ids
    of ``flows``, when the caller has them already)."""
    alarm = head.alarm
    out: list[Evidence] = []
    if head.cause is None:
        out.append(
            Evidence(
                "root",
                f"Cause probable : alarme {alarm.alarm_type} sur {alarm.device} "
                f"(t={alarm.raised_at:.0f}) ; aucune alarme d'un type qui la cause n'a été vue "
                "sur cet équipement ni sur ses voisins juste avant.",
                f"Probable root: alarm {alarm.alarm_type} on {alarm.device} "
                f"(t={alarm.raised_at:.0f}); no alarm of a type that causes it was seen on this "
                "device or its neighbours just before.",
            )
        )
    else:
        cause = head.cause.alarm
        out.append(
            Evidence(
                "root",
                f"Première alarme : {alarm.alarm_type} sur {alarm.device} ; sa cause apprise "
                f"({cause.alarm_type} sur {cause.device}) appartient à un autre incident.",
                f"First alarm: {alarm.alarm_type} on {alarm.device}; its learned cause "
                f"({cause.alarm_type} on {cause.device}) belongs to another incident.",
            )
        )
    if inside is None:
        inside = {id(f) for f in flows}
    edges = Counter(
        (f.cause.alarm_type, f.alarm_type)
        for f in flows
        if f.cause is not None and id(f.cause) in inside
    )
    if edges:
        listed = ", ".join(f"{a} → {b} (×{n})" for (a, b), n in edges.most_common(3))
        total = sum(edges.values())
        out.append(
            Evidence(
                "causal",
                f"{total} alarme(s) expliquée(s) par le graphe causal appris : {listed}.",
                f"{total} alarm(s) explained by the learned causal graph: {listed}.",
            )
        )
    if len(devices) > 1:
        text_fr = f"{len(devices)} équipements touchés"
        text_en = f"{len(devices)} devices affected"
        if topology is not None:
            far = max(devices, key=lambda d: topology.hops(alarm.device, d, 4) or 0)
            route = topology.path(alarm.device, far, 4)
            if route and len(route) > 1:
                text_fr += f", au plus loin {far} par {' – '.join(route)}"
                text_en += f", the farthest {far} via {' – '.join(route)}"
        out.append(Evidence("topology", text_fr + ".", text_en + "."))
    else:
        out.append(
            Evidence(
                "topology",
                f"Un seul équipement : {alarm.device}.",
                f"A single device: {alarm.device}.",
            )
        )
    times = [f.raised_at for f in flows]
    start = min(times)
    span = max(times) - start
    # counted by value: hashing a str is cheaper than hashing an Enum member
    reasons = Counter([m.reason._value_ for m in members]).most_common()
    folded_fr = ", ".join(f"{n} {_FR_BY_VALUE[r]}" for r, n in reasons)
    folded_en = ", ".join(f"{n} {r}" for r, n in reasons)
    out.append(
        Evidence(
            "timing",
            f"{len(flows)} alarme(s) en {span:.0f} s à partir de t={start:.0f}"
            + (f" ; regroupées : {folded_fr}." if folded_fr else "."),
            f"{len(flows)} alarm(s) over {span:.0f} s from t={start:.0f}"
            + (f"; folded: {folded_en}." if folded_en else "."),
        )
    )
    return tuple(out)


_FR = {
    FoldReason.DUPLICATE: "doublon(s)",
    FoldReason.FLAPPING: "oscillation(s)",
    FoldReason.TRANSIENT: "transitoire(s)",
    FoldReason.INHIBITED: "inhibée(s)",
    FoldReason.CAUSED: "conséquence(s)",
    FoldReason.ROOT: "autre(s) cause(s) probable(s)",
    FoldReason.GROUPED: "regroupée(s)",
}
_FR_BY_VALUE = {reason.value: text for reason, text in _FR.items()}


def incident_json(incident: Incident) -> dict[str, object]:
    """The ``--incidents-out`` line: rows of the input file, plus the explanation."""
    return {
        "incident": incident.id,
        "head": incident.head.row,
        "members": [m.alarm.row for m in incident.members],
        "roots": [r.row for r in incident.roots],
        "devices": list(incident.devices),
        "reasons": {str(m.alarm.row): m.reason.value for m in incident.members},
        "explanation": {
            "fr": " ".join(e.fr for e in incident.evidence),
            "en": " ".join(e.en for e in incident.evidence),
        },
    }
