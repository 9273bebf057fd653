"""Group into incidents: the last stage, where flows become what operators handle.

An incident stays *coherent*: every alarm raised within ``incident_seconds`` of its first
alarm, on a device within ``incident_hops`` of the head's device (the same device when
there is no topology). An alarm joins, in this order of preference, the open incident
that holds the alarm it is folded under or its learned cause, then (if it is a probable
root) one that already lists a root of the same type on the same device, then the nearest
one. A probable root that joins is listed in ``roots``, unless its type and device are
already there; if the head itself has a learned cause elsewhere, the first probable root
that keeps the incident coherent becomes the head instead. Incidents close when the event
time has moved past their window, or on ``close_all``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from allo.domain.alarms import Incident
from allo.noc.incidents import build_incident
from allo.noc.pipeline import FAR_FUTURE, Flow, PipelineConfig
from allo.noc.topology import Topology

_BALLS_KEPT = 100_000  # devices whose neighbourhood the grouping stage keeps at hand


class _Open:
    __slots__ = ("devices", "first", "flows", "head", "keys", "last", "number", "roots")

    def __init__(self, number: int, head: Flow) -> None:
        self.number = number
        self.head = head
        self.flows = [head]
        self.roots: list[Flow] = []
        self.keys = {head.key}
        self.first = self.last = head.raised_at
        self.devices = {head.device}


class GroupIntoIncidents:
    name = "group"

    def __init__(self, config: PipelineConfig, topology: Topology | None) -> None:
        self.config = config
        self.topology = topology
        self._open: dict[str, list[_Open]] = {}  # by head device
        self._count = 0
        self._newest = float("-inf")
        self.reasons: Counter[str] = Counter()
        self._window = config.incident_seconds
        # each device's ball of radius ``incident_hops`` (the topology is fixed): two calls
        # fewer per alarm; bounded, as a stream may name any number of devices
        self._balls: dict[str, dict[str, int]] = {}

    def add(self, batch: list[Flow]) -> list[Incident]:
        """Place every flow of the batch; returns the incidents that can no longer grow."""
        newest = self._newest
        place = self._place
        for flow in batch:
            place(flow)
            moment = flow.raised_at
            if moment > newest and FAR_FUTURE not in flow.issues:
                newest = moment
        self._newest = newest
        horizon = newest - self.config.incident_seconds - self.config.late_seconds
        return self._close(lambda group: group.first < horizon)

    def close_all(self) -> list[Incident]:
        return self._close(lambda group: True)

    def _near(self, device: str, radius: int) -> dict[str, int]:
        if self.topology is None or device not in self.topology:
            return {device: 0}
        return self.topology.ball(device, radius)

    def _place(self, flow: Flow) -> None:
        """Join the best open incident near ``flow`` (see the module docstring) or open one:
        the lowest ``(linked, same root key, hops, first)``, the first met winning a tie."""
        moment = flow.raised_at
        window = self._window
        under, cause = flow.under, flow.cause
        under_group = under.incident if under is not None else None
        cause_group = cause.incident if cause is not None else None
        is_root = cause is None
        key = (flow.device, flow.alarm_type)
        best: _Open | None = None
        best_rank: tuple[int, int, int, float] | None = None
        open_ = self._open
        ball = self._balls.get(flow.device)
        if ball is None:
            ball = self._near(flow.device, self.config.incident_hops)
            if len(self._balls) < _BALLS_KEPT:
                self._balls[flow.device] = ball
        for device, hops in ball.items():
            groups = open_.get(device)
            if groups is None:
                continue
            for group in groups:
                first, last = group.first, group.last
                if (last if last > moment else moment) - (
                    first if first < moment else moment
                ) > window:
                    continue
                rank = (
                    0 if group is under_group or group is cause_group else 1,
                    0 if is_root and key in group.keys else 1,
                    hops,
                    first,
                )
                if best_rank is None or rank < best_rank:
                    best, best_rank = group, rank
        if best is None:
            self._count += 1
            group = _Open(self._count, flow)
            open_.setdefault(flow.device, []).append(group)
            flow.incident = group
            return
        best.flows.append(flow)
        if moment < best.first:
            best.first = moment
        if moment > best.last:
            best.last = moment
        best.devices.add(flow.device)
        flow.incident = best
        if is_root and key not in best.keys:
            if best.head.cause is not None and self._can_lead(flow, best):
                self._promote(best, flow)
            else:
                best.roots.append(flow)
                best.keys.add(key)

    def _can_lead(self, flow: Flow, group: _Open) -> bool:
        near = self._near(flow.device, self.config.incident_hops)
        return all(device in near for device in group.devices)

    def _promote(self, group: _Open, flow: Flow) -> None:
        """``flow`` (a probable root) replaces a head that has a learned cause elsewhere."""
        self._open[group.head.device].remove(group)
        group.head = flow
        self._open.setdefault(flow.device, []).append(group)
        group.keys = {flow.key, *(r.key for r in group.roots)}
        for member in group.flows:  # probable roots that the old head's key was covering
            if member.cause is None and member.key not in group.keys:
                group.roots.append(member)
                group.keys.add(member.key)

    def _close(self, done: Callable[[_Open], bool]) -> list[Incident]:
        closed: list[Incident] = []
        for device in list(self._open):
            groups = self._open[device]
            keep = []
            for group in groups:
                if done(group):
                    closed.append(self._finish(group))
                else:
                    keep.append(group)
            if keep:
                self._open[device] = keep
            else:
                del self._open[device]
        closed.sort(key=lambda incident: incident.id)
        return closed

    def _finish(self, group: _Open) -> Incident:
        incident = build_incident(
            f"inc-{group.number:06d}", group.head, group.flows, group.roots, self.topology
        )
        for flow in group.flows:
            flow.incident = None  # let the flows be collected once the incident is out
        # ``_value_``: a plain attribute, cheaper than ``.value`` or hashing the member
        self.reasons.update([member.reason._value_ for member in incident.members])
        return incident
