"""Judging the engine against a ground-truth causal DAG, exactly as issue 5 defines it.

Kept apart from the engine on purpose: the engine never sees the truth, only its learned
graph. Everything here works on data rows (0-based indices in the input file), so that an
``--incidents-out`` file can be re-judged by anyone.

- *root alarm*: no alarm of a causal-parent type (truth DAG) on the same or an adjacent
  device in the ``root_seconds`` (300) before it; an alarm raised at the very same second
  counts as before it (the sources have one-second resolution, so order within a second is
  unknown).
- *coherent* incident: every alarm raised within ``incident_seconds`` (3600) of its first
  alarm, on a device at most ``incident_hops`` (2) from the head's device (the same device
  without topology), and ``roots`` are rows of the incident.
- ``root_recall``: share of root alarms that are the head of their incident, or listed in
  its roots, or folded into an incident whose head or a listed root has the same type and
  device. ``root_precision``: share of heads and listed roots that are root alarms.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from allo.domain.alarms import Alarm, Incident
from allo.errors import InvalidInputError
from allo.noc.sources.base import MALFORMED_TYPE
from allo.noc.topology import Topology, adjacency_matrix


@dataclass(frozen=True, slots=True)
class IncidentRows:
    """An incident reduced to data rows."""

    head: int
    members: tuple[int, ...]
    roots: tuple[int, ...]

    @classmethod
    def of(cls, incident: Incident) -> IncidentRows:
        return cls(
            incident.head.row,
            tuple(m.alarm.row for m in incident.members),
            tuple(r.row for r in incident.roots),
        )


def load_incident_rows(path: Path) -> list[IncidentRows]:
    """Read an ``--incidents-out`` file."""
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                data = json.loads(line)
                rows.append(
                    IncidentRows(int(data["head"]), tuple(data["members"]), tuple(data["roots"]))
                )
    return rows


def load_truth(path: Path) -> np.ndarray:
    """A truth DAG (``.npy``, ``DAG[i, j] == 1``: type ``i`` causes type ``j``)."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read truth DAG {path}: {exc}") from exc
    matrix = adjacency_matrix(loaded, f"truth DAG {path}")
    out: np.ndarray = (matrix != 0).astype(np.int64)
    return out


def edge_scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 over directed edges (diagonal ignored), as in PCIC 2021."""
    mask = ~np.eye(truth.shape[0], dtype=bool)
    pred = (predicted != 0) & mask
    true = (truth != 0) & mask
    hits = int((pred & true).sum())
    precision = hits / pred.sum() if pred.sum() else 0.0
    recall = hits / true.sum() if true.sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(float(precision), 4),
        "recall": round(float(recall), 4),
        "f1": round(float(f1), 4),
        "predicted_edges": int(pred.sum()),
        "true_edges": int(true.sum()),
    }


def check_truth_covers(alarms: Sequence[Alarm], truth: np.ndarray) -> None:
    """Refuse a truth DAG that does not name every alarm type (types ``0..N-1``): a 3 x 3
    DAG against 11 types would otherwise be scored, silently and meaninglessly."""
    size = truth.shape[0]
    outside = sorted(
        {
            a.alarm_type
            for a in alarms
            if a.alarm_type != MALFORMED_TYPE
            and not (a.alarm_type.isascii() and a.alarm_type.isdigit() and int(a.alarm_type) < size)
        }
    )
    if outside:
        raise InvalidInputError(
            f"the truth DAG names types 0-{size - 1}, but the alarms also have "
            f"{', '.join(outside[:5])}{'...' if len(outside) > 5 else ''}: "
            "give the DAG of these alarms' types"
        )


def _codes(alarms: Sequence[Alarm], size: int) -> np.ndarray:
    """Truth index of each alarm type; -1 when the type is not a row of the truth."""
    out = np.full(len(alarms), -1, dtype=np.int64)
    for i, alarm in enumerate(alarms):
        try:
            code = int(alarm.alarm_type)
        except ValueError:
            continue
        if 0 <= code < size:
            out[i] = code
    return out


def root_alarms(
    alarms: Sequence[Alarm], truth: np.ndarray, topology: Topology | None, seconds: float = 300.0
) -> np.ndarray:
    """``True`` for each alarm with no truth-parent alarm nearby just before it."""
    n = len(alarms)
    kinds = _codes(alarms, truth.shape[0])
    times = np.array([a.raised_at for a in alarms], dtype=np.float64)
    names = sorted({a.device for a in alarms})
    index = {d: i for i, d in enumerate(names)}
    where = np.array([index[a.device] for a in alarms], dtype=np.int64)
    by_device = [np.flatnonzero(where == i) for i in range(len(names))]
    by_device = [rows[np.argsort(times[rows], kind="stable")] for rows in by_device]
    explained = np.zeros(n, dtype=bool)
    parent = truth != 0
    for device, targets in zip(names, by_device, strict=True):
        near = [index[d] for d in (topology.neighbours(device) if topology else ()) if d in index]
        sources = np.concatenate([targets, *(by_device[i] for i in near)])
        sources = sources[np.argsort(times[sources], kind="stable")]
        source_times = times[sources]
        lo = np.searchsorted(source_times, times[targets] - seconds, side="left")
        hi = np.searchsorted(source_times, times[targets], side="right")
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            continue
        picked = sources[np.arange(total) + np.repeat(lo - np.cumsum(counts) + counts, counts)]
        target = np.repeat(targets, counts)
        ok = (picked != target) & (kinds[picked] >= 0) & (kinds[target] >= 0)
        picked, target = picked[ok], target[ok]
        hit = parent[kinds[picked], kinds[target]]
        explained[target[hit]] = True
    return ~explained


def judge(
    alarms: Sequence[Alarm],
    incidents: Sequence[IncidentRows],
    truth: np.ndarray,
    topology: Topology | None,
    *,
    root_seconds: float = 300.0,
    incident_seconds: float = 3600.0,
    incident_hops: int = 2,
) -> dict[str, float | int]:
    """``root_recall``, ``root_precision``, ``incoherent_incidents`` and row accounting."""
    by_row = {a.row: a for a in alarms}
    position = {a.row: i for i, a in enumerate(alarms)}
    roots = root_alarms(alarms, truth, topology, root_seconds)
    seen: dict[int, int] = {}
    duplicated = 0
    incoherent = 0
    leaders: set[int] = set()
    for number, incident in enumerate(incidents):
        rows = [incident.head, *incident.members]
        for row in rows:
            if row in seen:
                duplicated += 1
            seen[row] = number
        leaders.add(incident.head)
        leaders.update(incident.roots)
        if not _coherent(incident, rows, by_row, topology, incident_seconds, incident_hops):
            incoherent += 1
    missing = sum(1 for a in alarms if a.row not in seen)
    keys: dict[int, set[tuple[str, str]]] = {}
    for number, incident in enumerate(incidents):
        keys[number] = {
            (by_row[r].alarm_type, by_row[r].device)
            for r in (incident.head, *incident.roots)
            if r in by_row
        }
    recalled = 0
    root_rows = [a.row for a, is_root in zip(alarms, roots, strict=True) if is_root]
    for row in root_rows:
        found = seen.get(row)
        alarm = by_row[row]
        if found is not None and (alarm.alarm_type, alarm.device) in keys[found]:
            recalled += 1
    true_leaders = sum(1 for row in leaders if row in position and roots[position[row]])
    return {
        "root_alarms": len(root_rows),
        "root_recall": round(recalled / len(root_rows), 4) if root_rows else 1.0,
        "root_precision": round(true_leaders / len(leaders), 4) if leaders else 1.0,
        "incoherent_incidents": incoherent,
        "rows_missing": missing,
        "rows_duplicated": duplicated,
    }


def _coherent(
    incident: IncidentRows,
    rows: list[int],
    by_row: dict[int, Alarm],
    topology: Topology | None,
    seconds: float,
    hops: int,
) -> bool:
    if any(row not in by_row for row in rows) or not set(incident.roots) <= set(rows):
        return False
    members = [by_row[row] for row in rows]
    first = min(a.raised_at for a in members)
    if any(a.raised_at - first > seconds for a in members):
        return False
    head = by_row[incident.head].device
    if topology is None:
        return all(a.device == head for a in members)
    near = topology.ball(head, hops) if head in topology else {head: 0}
    return all(a.device in near for a in members)
