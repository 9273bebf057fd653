"""Causal correlation: name each alarm's probable cause from the learned graph.

For an alarm of type ``j`` on device ``d`` at ``t``, a cause is an alarm of a learned
parent type of ``j`` raised in ``[t - cause_seconds, t]`` on ``d`` or within
``cause_hops`` of it; the strongest edge wins, then the nearest in time. Alarms of the
same batch see each other, so simultaneous alarms are correlated whatever their order in
the file. An alarm without a cause is a probable root.
"""

from __future__ import annotations

from collections import deque

from allo.noc.causal import CausalGraph
from allo.noc.pipeline import Flow, PipelineConfig
from allo.noc.topology import Topology


class CausalCorrelation:
    name = "correlate"

    def __init__(
        self, graph: CausalGraph | None, topology: Topology | None, config: PipelineConfig
    ) -> None:
        self.config = config
        self.topology = topology
        self._parents = graph.parents() if graph is not None else {}
        self._causes = {cause for parents in self._parents.values() for cause in parents}
        self._recent: dict[tuple[str, str], deque[Flow]] = {}
        self._newest = float("-inf")

    def process(self, batch: list[Flow]) -> list[Flow]:
        if not self._parents:
            return batch
        for flow in batch:
            if flow.alarm.alarm_type in self._causes:
                self._recent.setdefault(flow.key, deque()).append(flow)
                self._newest = max(self._newest, flow.alarm.raised_at)
        for flow in batch:
            parents = self._parents.get(flow.alarm.alarm_type)
            if parents:
                self._correlate(flow, parents)
        self._prune()
        return batch

    def _correlate(self, flow: Flow, parents: dict[str, float]) -> None:
        moment = flow.alarm.raised_at
        earliest = moment - self.config.cause_seconds
        near = (
            self.topology.ball(flow.alarm.device, self.config.cause_hops)
            if self.topology is not None
            else {flow.alarm.device: 0}
        )
        best: tuple[float, float] | None = None
        for device, hops in near.items():
            for cause_type, strength in parents.items():
                recent = self._recent.get((device, cause_type))
                if not recent:
                    continue
                for candidate in reversed(recent):
                    raised = candidate.alarm.raised_at
                    if raised > moment:
                        continue
                    if raised < earliest:
                        break
                    rank = (strength, raised)
                    if best is None or rank > best:
                        best = rank
                        flow.cause, flow.cause_hops, flow.cause_strength = candidate, hops, strength
                    break

    def _prune(self) -> None:
        oldest = self._newest - self.config.cause_seconds - self.config.late_seconds
        empty = []
        for key, recent in self._recent.items():
            while recent and recent[0].alarm.raised_at < oldest:
                recent.popleft()
            if not recent:
                empty.append(key)
        for key in empty:
            del self._recent[key]
