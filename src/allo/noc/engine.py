"""The streaming engine: one long-lived object that takes alarms as they come.

It wraps the *same* :class:`~allo.noc.pipeline.Pipeline` as a batch replay and adds what a
live service needs:

- **persistence, kill -9 safe**: each step (the alarms of one call, the incidents they
  touched, the members of those that closed) is one transaction of the
  :class:`~allo.noc.store.NocStore`. Alarms are keyed by ``(stream, id)``: an id seen
  before is acknowledged and not counted again (a resent Alertmanager alert only brings
  its clear time). On :meth:`NocEngine.warm_up` the alarms whose incident had not closed
  are pushed through a fresh pipeline, which rebuilds the open incidents: nothing lost,
  nothing twice.
- **stable incident ids**: ``<stream>-<seq>`` where ``seq`` is the arrival number of the
  incident's first alarm, so that an incident keeps its id (and its acknowledgement)
  across a restart and from "open" to "closed".
- **maintenance windows**: an alarm raised on a device under maintenance does not reach
  the pipeline; it is folded with reason ``maintenance`` into the window's own incident.
- **silences**: an incident whose head matches an active silence is shown as silenced.
- **live updates**: every change is an event with a version number, kept in a short
  history and handed to subscribers (the SSE route).

Every time-dependent part reads the injected clock. One engine per stream (a stream is
a partition: one process owns it); calls are serialised by a lock.
"""

from __future__ import annotations

import re
import secrets
import threading
import uuid
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from allo.clock import Clock
from allo.domain.alarms import Alarm, Incident, Severity
from allo.errors import InvalidInputError
from allo.noc.incidents import build_incident
from allo.noc.known_ids import KnownIds
from allo.noc.maintenance import MaintenanceIncidents
from allo.noc.owner import StreamLock
from allo.noc.pipeline import Flow, Pipeline, PipelineConfig, build_pipeline
from allo.noc.silences import MaintenanceWindow, Matcher, Silence, window_for
from allo.noc.sources.base import InputReport, screened
from allo.noc.store import (
    AlarmRecord,
    IncidentQuery,
    IncidentRecord,
    MemberUpdate,
    NocStore,
    WriteBatch,
)

_STREAM = re.compile(r"^[A-Za-z0-9_.]{1,40}$")
Listener = Callable[[int, dict[str, Any]], None]
_LAZY = "_incident_id"  # a history event whose incident is read when a client resumes
# a request body to parse (rows numbered from the given arrival number) and its source
Payload = tuple[Callable[[InputReport, int], list[Alarm]], str | None]


@dataclass
class IngestResult:
    """What one call to :meth:`NocEngine.ingest` did."""

    accepted: int = 0
    already_stored: int = 0
    cleared: int = 0
    maintenance: int = 0
    alarms: list[dict[str, Any]] = field(default_factory=list)  # id, seq, incident, issues
    closed: list[Incident] = field(default_factory=list)
    touched: list[str] = field(default_factory=list)
    problems: InputReport = field(default_factory=InputReport)

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "already_stored": self.already_stored,
            "cleared": self.cleared,
            "maintenance": self.maintenance,
            "alarms": self.alarms,
            "incidents": self.touched,
            "input_problems": self.problems.to_json(),
        }


def check_stream(stream: str) -> None:
    """A stream name is 1-40 letters, digits, ``_`` or ``.`` (it prefixes incident ids)."""
    if not _STREAM.match(stream):
        raise InvalidInputError(f"stream name {stream!r}: use 1-40 letters, digits, _ or .")


class _Open:
    """What the engine shows of an open incident of the pipeline."""

    __slots__ = (
        "_sorted",
        "devices",
        "first",
        "folded",
        "founder",
        "group",
        "id",
        "last",
        "size",
        "stored_first",
        "stored_head",
    )

    def __init__(self, incident_id: str, group: object, founder: Flow) -> None:
        self.id = incident_id
        self.group = group  # the grouping stage's own object, kept to build a live view
        self.founder = founder
        self.size = 0
        self.devices: set[str] = set()
        self.first = self.last = founder.alarm.raised_at
        self.folded: Counter[str] = Counter()
        # the head and start of the row a step of this engine stored (None: not stored)
        self.stored_head: str | None = None
        self.stored_first = self.first
        self._sorted: tuple[str, ...] = ()

    @property
    def head(self) -> Alarm:
        head = getattr(self.group, "head", None)
        return head.alarm if isinstance(head, Flow) else self.founder.alarm

    def sorted_devices(self) -> tuple[str, ...]:
        """The devices in order, sorted again only when one was added (a set that only
        grows and has the same size is the same set); a large incident is touched by
        most steps, and sorting its devices each time was a good part of its record."""
        if len(self._sorted) != len(self.devices):
            self._sorted = tuple(sorted(self.devices))
        return self._sorted


def _provisional_reason(flow: Flow) -> str | None:
    if flow.reason is not None:
        return flow.reason._value_  # plain attribute: cheaper than .value or hashing
    return "caused" if flow.cause is not None else None


class NocEngine:
    """The NOC pipeline as a persistent, observable service (see the module docstring)."""

    def __init__(
        self,
        store: NocStore,
        clock: Clock,
        *,
        stream: str = "live",
        source: str = "api",
        topology: Any = None,
        graph: Any = None,
        config: PipelineConfig | None = None,
        inhibit_rules: Sequence[Any] = (),
        history: int = 2000,
        lock: StreamLock | None = None,
    ) -> None:
        check_stream(stream)
        self.store = store
        self.clock = clock
        self.stream = stream
        self.source = source
        self.topology = topology
        self.graph = graph
        self.config = config or PipelineConfig()
        self.inhibit_rules = list(inhibit_rules)
        self.report = InputReport()
        self.pipeline: Pipeline | None = None
        self.recovered = 0
        self.totals: Counter[str] = Counter()  # accepted, already_stored, ... since start
        self._lock = threading.RLock()
        self._known = KnownIds()
        self._seq: dict[str, int] = {}  # pending alarm id -> arrival number
        # pending alarm id -> the place stored for it (reason, folded under, detail): an
        # alarm whose final place is that one is not written again when its incident closes
        self._placed: dict[str, tuple[str | None, int | None, str]] = {}
        self._next = 0
        self._open: dict[int, _Open] = {}  # id(group object) -> view
        self._by_id: dict[str, _Open] = {}
        self._maintenance = MaintenanceIncidents(store, stream)
        self._windows: list[MaintenanceWindow] = []
        self._silences: list[Silence] = []
        self._version = 0
        self._history: deque[tuple[int, dict[str, Any]]] = deque(maxlen=history)
        self._listeners: dict[int, Listener] = {}
        # names this engine's versions: they start again at 0 in another process or after
        # a restart, where a client's version would name other events
        self.epoch = secrets.token_hex(4)
        # held while this engine runs its stream: another process may not (allo.noc.owner)
        self.lock = lock

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.pipeline is not None

    def warm_up(self) -> None:
        """Migrate the store, load operator state and rebuild open incidents (idempotent)."""
        with self._lock:
            if self.pipeline is not None:
                return
            try:
                self._load()
            except BaseException:
                self._forget()
                raise

    def _load(self) -> None:
        """:meth:`warm_up`'s work; one that fails half-way is forgotten there."""
        if self.lock is not None:
            self.lock.acquire()  # before anything is read: another process may be writing
        self.store.migrate()
        self.pipeline = build_pipeline(
            self.clock,
            topology=self.topology,
            graph=self.graph,
            config=self.config,
            inhibit_rules=self.inhibit_rules,
            report=self.report,
        )
        self._known = KnownIds(self.store.known_ids(self.stream))
        self._next = self.store.next_seq(self.stream)
        self._windows = self.store.windows()
        self._silences = self.store.silences()
        self._maintenance.load()
        self._close_ended_windows()  # windows that ended while nothing ran
        pending = self.store.pending(self.stream)
        self.recovered = len(pending)
        for start in range(0, len(pending), 2000):
            chunk = pending[start : start + 2000]
            for record in chunk:
                self._seq[record.alarm.id] = record.seq
            self._step(chunk, new=False, result=IngestResult())
        self.store.drop_open(self.stream, self._by_id)

    def _forget(self) -> None:
        """Drop what the engine holds in memory; the next call rebuilds it from the store.

        A step changes the pipeline's state before its write is tried. Were the write to
        fail (a database away, a disk full) and that state be kept, the engine would show
        incidents the store never got, and a restart would give them other ids. The store
        is the truth, so the engine starts again from it, as a restart does."""
        self.pipeline = None
        self._known = KnownIds()
        self._seq.clear()
        self._placed.clear()
        self._open.clear()
        self._by_id.clear()
        self._maintenance = MaintenanceIncidents(self.store, self.stream)

    def _write(self, batch: WriteBatch) -> None:
        """Store one step, or forget the step's memory when that fails (:meth:`_forget`)."""
        try:
            self.store.write(self.stream, batch)
        except BaseException:
            self._forget()
            raise

    def close(self) -> None:
        """Release the store and the stream (open incidents stay pending, rebuilt by the
        next start). The engine forgets what it held: used again, it warms up again, and
        takes the stream again first, or is told another process has it."""
        with self._lock:
            self._forget()
            self.store.close()
            if self.lock is not None:
                self.lock.release()

    def _ready(self) -> Pipeline:
        if self.pipeline is None:
            self.warm_up()
        assert self.pipeline is not None
        return self.pipeline

    # -- alarms in -------------------------------------------------------------------------

    def ingest_payload(
        self, parse: Callable[[InputReport, int], list[Alarm]], source: str | None = None
    ) -> IngestResult:
        """Parse a request body with rows numbered from the next arrival, then ingest it."""
        outcome = self.ingest_payloads([(parse, source)])[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def ingest_payloads(self, payloads: Sequence[Payload]) -> list[IngestResult | Exception]:
        """Several request bodies in *one* step and one transaction (group commit).

        Each body is parsed on its own (rows numbered after the previous body's); one
        that cannot be parsed gets its exception back and changes nothing, the others
        go through together. Results come back in order, each saying what became of its
        own alarms, once the transaction that holds them has committed.

        A row number is never given twice in a stream, even across restarts: an alarm
        sent without an id is named after its row (``row-<n>``), and a number given again
        would make a new alarm look like one already stored. So a body's new alarms take
        their row as their arrival number, and the rows of alarms already stored (which
        are not stored again) are simply skipped.
        """
        with self._lock:
            self._ready()
            outcomes: list[IngestResult | Exception] = []
            groups: list[tuple[Sequence[Alarm], str | None]] = []
            parsed: list[tuple[int, InputReport]] = []
            first_row = self._next
            for index, (parse, source) in enumerate(payloads):
                problems = InputReport()
                try:
                    alarms = screened(parse(problems, first_row), problems)
                except Exception as exc:  # a caller's bad body: its own answer, nobody else's
                    outcomes.append(exc)
                    continue
                first_row = max([first_row + len(alarms), *(a.row + 1 for a in alarms)])
                for kind, count in problems.counts.items():
                    self.report.counts[kind] += count
                groups.append((alarms, source))
                parsed.append((index, problems))
                outcomes.append(IngestResult())
            results = self._ingest_groups(groups, rows_numbered=True)
            self._next = max(self._next, first_row)
            for (index, problems), result in zip(parsed, results, strict=True):
                result.problems = problems
                outcomes[index] = result
            return outcomes

    def ingest(self, alarms: Sequence[Alarm], source: str | None = None) -> IngestResult:
        """Accept alarms (one or many), run them through the pipeline, persist, publish."""
        with self._lock:
            self._ready()
            return self._ingest_groups([(screened(alarms, self.report), source)])[0]

    def _ingest_groups(
        self,
        groups: Sequence[tuple[Sequence[Alarm], str | None]],
        *,
        detail: bool = True,
        rows_numbered: bool = False,
    ) -> list[IngestResult]:
        """One pipeline step and one transaction for the alarms of several callers.

        ``detail`` false leaves ``IngestResult.alarms`` empty (one dict per alarm that a
        replay, which only wants the closed incidents, would build for nothing); it needs
        a single group, as every caller must hear about its own alarms otherwise.
        ``rows_numbered``: :meth:`ingest_payloads` numbered the rows, and each new alarm's
        arrival number is its row (see there).

        Nothing of the step is kept unless its write succeeds (:meth:`_write`)."""
        assert detail or len(groups) == 1, "several callers need each alarm's detail"
        results = [IngestResult() for _ in groups]
        if not groups:
            return results
        now = self.clock.now()
        fresh: list[AlarmRecord] = []
        cleared: list[tuple[str, float]] = []
        batch_ids: set[str] = set()
        owner: dict[int, IngestResult] = {}  # seq -> the result of the caller who sent it
        known = self._known
        several = len(groups) > 1
        seq = self._next
        for (alarms, source), result in zip(groups, results, strict=True):
            origin = source or self.source
            before = len(fresh)
            for alarm in alarms:
                alarm_id = alarm.id
                if alarm_id in known or alarm_id in batch_ids:
                    result.already_stored += 1
                    if alarm.cleared_at is not None:
                        cleared.append((alarm_id, alarm.cleared_at))
                        result.cleared += 1
                    continue
                batch_ids.add(alarm_id)
                if rows_numbered and alarm.row > seq:
                    seq = alarm.row
                fresh.append(AlarmRecord(seq, alarm, origin, now))
                if several:
                    owner[seq] = result
                seq += 1
            result.accepted = len(fresh) - before
        step = results[0] if len(results) == 1 else IngestResult()
        try:
            write = self._step(fresh, new=True, result=step, detail=detail)
            write.cleared.extend(cleared)
            ended = self._maintenance.close_ended(self._windows, now)
            if ended:
                write.incidents.extend(ended)
                step.touched.extend(r.id for r in ended)
            self._write(write)
        except BaseException:
            self._forget()
            raise
        self._next = seq
        known.update(batch_ids)
        for result in results:
            self.totals.update(
                accepted=result.accepted,
                already_stored=result.already_stored,
                cleared=result.cleared,
            )
        self._publish(step.touched)
        if len(results) > 1:  # each caller hears about its own alarms and their incidents
            window_prefix = f"{self.stream}-mw-"
            seen: dict[int, set[str]] = {}
            for item in step.alarms:
                result = owner[item["seq"]]
                result.alarms.append(item)
                incident = item["incident"]
                if incident.startswith(window_prefix):
                    result.maintenance += 1
                mine = seen.setdefault(id(result), set())
                if incident not in mine:
                    mine.add(incident)
                    result.touched.append(incident)
        return results

    def _step(
        self, records: list[AlarmRecord], *, new: bool, result: IngestResult, detail: bool = True
    ) -> WriteBatch:
        """Maintenance first, then the pipeline; returns what to write (written here when
        re-pushing pending alarms at start-up). ``detail``: see :meth:`_ingest_groups`."""
        pipeline = self._ready()
        write = WriteBatch()
        now = self.clock.now()
        flowing: list[AlarmRecord] = []
        for record in records:
            window = window_for(record.alarm, self._windows) if new and self._windows else None
            if window is None:
                flowing.append(record)
                if new:
                    self._seq[record.alarm.id] = record.seq
                continue
            result.maintenance += 1
            self.totals["maintenance"] += 1
            folded = self._maintenance.fold(record, window, now)
            is_head = folded.head.id == record.alarm.id
            write.alarms.append(
                AlarmRecord(
                    record.seq,
                    record.alarm,
                    record.source,
                    record.received_at,
                    folded.id,
                    "head" if is_head else "maintenance",
                    None if is_head else folded.head.row,
                    f"maintenance window {window.id}",
                    (),
                )
            )
            write.incidents.append(folded)
            result.alarms.append(
                {"id": record.alarm.id, "seq": record.seq, "incident": folded.id, "issues": []}
            )
            if folded.id not in result.touched:
                result.touched.append(folded.id)
        if not flowing:
            return write
        flows, closed = pipeline.push_flows([r.alarm for r in flowing])
        final: dict[str, MemberUpdate] = {}
        for incident in closed:
            record_, members = self._closed(incident, now)
            write.incidents.append(record_)
            for member in members:
                final[member.alarm_id] = member
            result.touched.append(record_.id)
        result.closed.extend(closed)
        touched: dict[str, _Open] = {}
        views = self._open
        placed = self._placed
        alarms_out = write.alarms
        members_out = write.members
        details = result.alarms if detail else None
        for record, flow in zip(flowing, flows, strict=True):
            alarm = flow.alarm
            alarm_id = record.alarm.id
            known = final.pop(alarm_id, None) if final else None
            if known is None:  # its incident is still open: a provisional place
                view = views.get(id(flow.incident))
                if view is None:
                    view = self._view(flow, record.seq)
                view.size += 1
                view.devices.add(alarm.device)
                moment = alarm.raised_at
                if moment < view.first:
                    view.first = moment
                if moment > view.last:
                    view.last = moment
                reason = _provisional_reason(flow)
                if reason is not None:
                    view.folded[reason] += 1
                touched[view.id] = view
                incident_id = view.id
                under = flow.under
                folded_under = under.alarm.row if under is not None else None
                member_detail = flow.detail
                placed[alarm_id] = (reason if new else reason or "", folded_under, member_detail)
            else:
                incident_id, reason = known.incident_id, known.reason or None
                folded_under, member_detail = known.folded_under, known.detail
            issues = flow.issues
            if new:
                # the record built on arrival, now given its place (building a second one
                # per alarm was a copy of everything but these fields); the alarm is the
                # flow's, which normalisation may have corrected
                record.alarm = alarm
                record.incident_id = incident_id
                record.reason = reason
                record.folded_under = folded_under
                record.detail = member_detail
                record.issues = tuple(issues) if issues else ()
                alarms_out.append(record)
                if details is not None:
                    details.append(
                        {
                            "id": alarm_id,
                            "seq": record.seq,
                            "incident": incident_id,
                            "issues": list(issues),
                        }
                    )
            else:
                members_out.append(
                    MemberUpdate(alarm_id, incident_id, reason or "", folded_under, member_detail)
                )
        write.members.extend(final.values())  # alarms of earlier calls whose place changed
        for view in touched.values():
            head = view.head
            record_ = IncidentRecord(
                view.id,
                self.stream,
                "pipeline",
                "open",
                head,
                view.first,
                view.last,
                view.size,
                view.sorted_devices(),
                (),
                dict(view.folded),
                (),
                now,
            )
            if view.stored_head == head.id and view.stored_first == view.first:
                write.grown.append(record_)  # same row, grown: see WriteBatch.grown
            else:
                write.incidents.append(record_)
                view.stored_head, view.stored_first = head.id, view.first
            if view.id not in result.touched:
                result.touched.append(view.id)
        if not new:
            self._write(write)
        return write

    def _view(self, flow: Flow, seq: int) -> _Open:
        group = flow.incident
        assert group is not None, "the grouping stage places every flow"
        view = self._open.get(id(group))
        if view is None:
            view = _Open(f"{self.stream}-{seq:07d}", group, flow)
            self._open[id(group)] = view
            self._by_id[view.id] = view
        return view

    def _closed(self, incident: Incident, now: float) -> tuple[IncidentRecord, list[MemberUpdate]]:
        """The stored record of a closed incident and the final place of those of its
        alarms that are not stored there already (an alarm of an earlier step whose place
        did not change since is left alone: the closed incident makes that place final);
        the engine forgets the incident (its open view, its alarms' arrival numbers and
        places) on the way."""
        seq_of = self._seq
        head = incident.head
        alarms = [head, *(m.alarm for m in incident.members)]
        incident_id = f"{self.stream}-{min([seq_of[a.id] for a in alarms]):07d}"
        view = self._by_id.pop(incident_id, None)
        if view is not None:
            self._open.pop(id(view.group), None)
        for alarm in alarms:
            seq_of.pop(alarm.id, None)
        reasons = [m.reason._value_ for m in incident.members]
        # its alarms of earlier steps were stored under its open view's id, this very id
        # when that view is found: their update need not set it again
        moved = view is None
        placed = self._placed
        members = []
        for update in (
            MemberUpdate(head.id, incident_id, "head", None, "probable root", moved),
            *(
                MemberUpdate(m.alarm.id, incident_id, reason, m.folded_under, m.detail, moved)
                for m, reason in zip(incident.members, reasons, strict=True)
            ),
        ):
            stored = placed.pop(update.alarm_id, None)
            if moved or stored != (update.reason, update.folded_under, update.detail):
                members.append(update)
        times = [a.raised_at for a in alarms]
        record = IncidentRecord(
            incident_id,
            self.stream,
            "pipeline",
            "closed",
            head,
            min(times),
            max(times),
            incident.size,
            incident.devices,
            tuple(r.id for r in incident.roots),
            dict(Counter(reasons)),
            incident.evidence,
            now,
        )
        return record, members

    # -- the replay protocol (``allo noc ingest``) ---------------------------------------

    def push(self, alarms: Sequence[Alarm]) -> list[Incident]:
        """:meth:`ingest` for a replay, which reads only the incidents that closed."""
        with self._lock:
            self._ready()
            fresh = screened(alarms, self.report)
            return self._ingest_groups([(fresh, None)], detail=False)[0].closed

    def flush(self) -> list[Incident]:
        """Close every open incident (end of a file); written and published."""
        with self._lock:
            pipeline = self._ready()
            now = self.clock.now()
            closed = pipeline.flush()
            write = WriteBatch()
            touched = []
            for incident in closed:
                record, members = self._closed(incident, now)
                write.incidents.append(record)
                write.members.extend(members)
                touched.append(record.id)
            self._write(write)
            self._publish(touched)
            return closed

    def fold_counts(self) -> Counter[str]:
        return self._ready().fold_counts()

    # -- operators -----------------------------------------------------------------------

    def incidents(
        self, query: IncidentQuery, offset: int = 0, limit: int = 50
    ) -> tuple[int, list[dict[str, Any]]]:
        self._ready()
        total, items = self.store.list_incidents(query, offset, limit)
        self._mark_silenced(items)
        return total, items

    def incident(
        self, incident_id: str, members_offset: int = 0, members_limit: int = 200
    ) -> dict[str, Any]:
        """The drill-down: stored record, members with reasons; live evidence while open."""
        self._ready()
        data = self.store.get_incident(incident_id)
        total, members = self.store.members(incident_id, members_offset, members_limit)
        with self._lock:
            view = self._by_id.get(incident_id)
            live = self._live(view) if view is not None else None
        if live is not None:
            data["evidence"] = [{"kind": e.kind, "fr": e.fr, "en": e.en} for e in live.evidence]
            data["explanation"] = {
                "fr": " ".join(e.fr for e in live.evidence),
                "en": " ".join(e.en for e in live.evidence),
            }
            data["roots"] = [r.id for r in live.roots]
            reasons = {m.alarm.id: m for m in live.members}
            for member in members:
                found = reasons.get(member["id"])
                if member["id"] == live.head.id:
                    member.update(reason="head", folded_under=None, detail="probable root")
                elif found is not None:
                    member.update(
                        reason=found.reason.value,
                        folded_under=found.folded_under,
                        detail=found.detail,
                    )
        data["members"] = members
        data["members_total"] = total
        self._mark_silenced([data])
        return data

    def _live(self, view: _Open) -> Incident | None:
        group = view.group
        head, flows, roots = (getattr(group, n, None) for n in ("head", "flows", "roots"))
        if not isinstance(head, Flow) or not isinstance(flows, list) or roots is None:
            return None
        return build_incident(view.id, head, list(flows), list(roots), self.topology)

    def _mark_silenced(self, items: list[dict[str, Any]]) -> None:
        """``silenced_by``: the active silences whose matchers all match the head alarm
        (its attributes read from the store only when a matcher needs them)."""
        now = self.clock.now()
        active = [s for s in self._silences if s.active(now)]
        attributes: dict[tuple[str, str], dict[str, str]] = {}
        if active and any(m.reads_attributes for s in active for m in s.matchers):
            attributes = self.store.attributes_of(
                [(item.get("stream") or self.stream, item["head"]["id"]) for item in items]
            )
        for item in items:
            if not active:
                item["silenced_by"] = []
                continue
            head = item["head"]
            alarm = Alarm(
                head["id"],
                head["device"],
                head["alarm_type"],
                item["started_at"],
                severity=Severity(item["severity"]),
                attributes=attributes.get((item.get("stream") or self.stream, head["id"]), {}),
            )
            item["silenced_by"] = [s.id for s in active if s.matches(alarm)]

    def set_status(
        self, incident_id: str, status: str, by: str = "", note: str | None = None
    ) -> dict[str, Any]:
        """Acknowledge or resolve; published to live subscribers."""
        self._ready()
        with self._lock:
            data = self.store.set_status(incident_id, status, by, note, self.clock.now())
            self._mark_silenced([data])
            self._emit({"type": "incident", "incident": _summary_of(data)})
        return data

    def add_silence(
        self,
        matchers: Sequence[Matcher],
        starts_at: float | None,
        ends_at: float,
        created_by: str = "",
        comment: str = "",
    ) -> Silence:
        self._ready()
        now = self.clock.now()
        silence = Silence(
            uuid.uuid4().hex[:12],
            tuple(matchers),
            now if starts_at is None else starts_at,
            ends_at,
            created_by,
            comment,
            now,
        )
        if silence.ends_at <= now:
            raise InvalidInputError("silence: ends_at is already in the past")
        with self._lock:
            self.store.add_silence(silence)
            self._silences = self.store.silences()
            self._emit({"type": "silence", "silence": silence.to_json(now)})
        return silence

    def silences(self) -> list[dict[str, Any]]:
        self._ready()
        now = self.clock.now()
        return [s.to_json(now) for s in self._silences]

    def expire_silence(self, silence_id: str) -> dict[str, Any]:
        self._ready()
        with self._lock:
            now = self.clock.now()
            silence = self.store.expire_silence(silence_id, now)
            self._silences = self.store.silences()
            data = silence.to_json(now)
            self._emit({"type": "silence", "silence": data})
        return data

    def add_window(
        self,
        devices: Sequence[str],
        starts_at: float,
        ends_at: float,
        created_by: str = "",
        comment: str = "",
    ) -> MaintenanceWindow:
        self._ready()
        now = self.clock.now()
        window = MaintenanceWindow(
            uuid.uuid4().hex[:12],
            frozenset(d.strip() for d in devices if d.strip()),
            starts_at,
            ends_at,
            created_by,
            comment,
            now,
        )
        with self._lock:
            self.store.add_window(window)
            self._windows = self.store.windows()
            self._emit({"type": "maintenance", "window": window.to_json(now)})
        return window

    def windows(self) -> list[dict[str, Any]]:
        self._ready()
        now = self.clock.now()
        return [w.to_json(now) for w in self._windows]

    def delete_window(self, window_id: str) -> None:
        """Delete a window; its incident, if any, closes (it stays, with its alarms)."""
        self._ready()
        with self._lock:
            self.store.delete_window(window_id)
            self._windows = self.store.windows()
            self._emit({"type": "maintenance_deleted", "id": window_id})
            self._close_ended_windows()

    def close_ended_windows(self) -> list[str]:
        """Close the incidents of windows that have ended; returns their ids.

        Steps that bring alarms do it on the way; a server calls this now and then so
        that a window's incident also closes on a quiet network. Nothing to do (and no
        store access) before the engine was first used."""
        with self._lock:
            if self.pipeline is None:
                return []
            return self._close_ended_windows()

    def _close_ended_windows(self) -> list[str]:
        ended = self._maintenance.close_ended(self._windows, self.clock.now())
        if not ended:
            return []
        self._write(WriteBatch(incidents=ended))
        ids = [r.id for r in ended]
        self._publish(ids)
        return ids

    # -- live updates --------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self._version

    def subscribe(
        self, listener: Listener, since: int | None = None, epoch: str | None = None
    ) -> int:
        """Call ``listener(version, event)`` for each event; returns a token for
        :meth:`unsubscribe`. Listeners run under the engine's lock and must not block.

        With ``since`` (a version of the engine ``epoch``, this one when ``None``), the
        events after it are replayed first when the history still holds them all; when it
        does not (they were dropped from the short history, or ``since`` names another
        engine's versions: another process, or before a restart), the listener gets one
        ``{"type": "resync", "version": ...}`` event instead: what it shows may be stale,
        and it must read the incidents again."""
        with self._lock:
            if since is not None:
                if epoch not in (None, self.epoch) or not self._holds_after(since):
                    listener(self._version, {"type": "resync", "version": self._version})
                else:
                    missed = [(v, e) for v, e in self._history if v > since]
                    for version, event in self._materialise(missed):
                        listener(version, event)
            token = id(listener)
            self._listeners[token] = listener
            return token

    def _holds_after(self, since: int) -> bool:
        """Whether every event after version ``since`` is still in the history."""
        if since == self._version:
            return True
        return since < self._version and bool(self._history) and self._history[0][0] <= since + 1

    def unsubscribe(self, token: int) -> None:
        with self._lock:
            self._listeners.pop(token, None)

    def _emit(self, event: dict[str, Any]) -> None:
        self._version += 1
        self._history.append((self._version, event))
        for listener in list(self._listeners.values()):
            listener(self._version, event)

    def _publish(self, incident_ids: Sequence[str]) -> None:
        """Events for touched incidents, read back with their operator status.

        Skipped when nobody listens and no history is kept (``allo noc ingest``). With a
        history but no listener (a consumer process, a server with no console open), the
        event keeps only the incident's id: reading every touched incident back at every
        step would cost more than the step; :meth:`subscribe` reads them when a client
        resumes, so it gets their state as it is then, under the same versions."""
        if not incident_ids or (not self._listeners and not self._history.maxlen):
            return
        if not self._listeners:
            for incident_id in dict.fromkeys(incident_ids):
                self._emit({"type": "incident", _LAZY: incident_id})
            return
        for data in self.store.incidents_by_id(incident_ids, detail=False):
            self._mark_silenced([data])
            self._emit({"type": "incident", "incident": _summary_of(data)})

    def _materialise(
        self, events: list[tuple[int, dict[str, Any]]]
    ) -> list[tuple[int, dict[str, Any]]]:
        """History events with the incidents that :meth:`_publish` left to read."""
        wanted = [e[_LAZY] for _, e in events if _LAZY in e]
        if not wanted:
            return events
        found = {d["id"]: d for d in self.store.incidents_by_id(wanted, detail=False)}
        self._mark_silenced(list(found.values()))
        out = []
        for version, event in events:
            if _LAZY not in event:
                out.append((version, event))
            elif event[_LAZY] in found:  # an open incident a restart dropped has no state
                out.append(
                    (version, {"type": "incident", "incident": _summary_of(found[event[_LAZY]])})
                )
        return out


def _summary_of(data: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "id",
        "stream",
        "kind",
        "state",
        "status",
        "head",
        "severity",
        "started_at",
        "last_at",
        "size",
        "device_count",
        "folded",
        "acknowledged_at",
        "acknowledged_by",
        "resolved_at",
        "resolved_by",
        "note",
        "updated_at",
        "silenced_by",
    )
    out = {k: data.get(k) for k in keep}
    out["devices"] = list(data.get("devices", []))[:20]
    return out
