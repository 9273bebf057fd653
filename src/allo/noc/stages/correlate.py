"""Causal correlation: name each alarm's probable cause from the learned graph.

For an alarm of type ``j`` on device ``d`` at ``t``, a candidate cause is an alarm of a
learned parent type of ``j`` raised in ``[t - cause_seconds, t]`` on ``d`` or within
``cause_hops`` of it. Alarms of the same batch see each other, so simultaneous alarms are
correlated whatever their order in the file. An alarm without a cause is a probable root.

When the graph carries its fitted Hawkes model (a learned graph does), the alarm is
folded as caused only when the model says so: its intensity at ``t`` is split into the
background rate of ``j``, the excitation by earlier ``j`` alarms nearby (a repeat is not
caused by another type) and the excitation by each candidate. The share of the
candidates is the posterior probability that one of them triggered the alarm (the
branching structure of a Hawkes process); at ``threshold`` (one half: more likely than
not) or above, the most probable candidate is named as the cause, otherwise the alarm
stays a probable root. A graph without a model (an expert's adjacency matrix) names
the strongest edge's candidate, then the nearest in time, as before.
"""

from __future__ import annotations

import math
from collections import deque

from allo.noc.causal import CausalGraph
from allo.noc.pipeline import Flow, PipelineConfig
from allo.noc.topology import Topology

THRESHOLD = 0.5  # posterior share of the causes needed to fold an alarm as caused


class CausalCorrelation:
    name = "correlate"

    def __init__(
        self,
        graph: CausalGraph | None,
        topology: Topology | None,
        config: PipelineConfig,
        threshold: float = THRESHOLD,
    ) -> None:
        self.config = config
        self.topology = topology
        self.threshold = threshold
        self._parents = graph.parents() if graph is not None else {}
        self._alphas: dict[tuple[str, str], tuple[float, ...]] = {}
        self._self: dict[str, tuple[float, ...]] = {}
        self._background: dict[str, float] = {}
        self._decay = 1.0
        self._window = config.cause_seconds
        self._same_second = True
        weighed = (graph.excitations or graph.edges) if graph is not None else ()
        if graph is not None and graph.has_model and all(e.alphas for e in weighed):
            self._parents = {}
            for edge in weighed:
                self._parents.setdefault(edge.effect, {})[edge.cause] = edge.strength
            self._alphas = {(e.cause, e.effect): e.alphas for e in weighed}
            self._self = dict(graph.self_excitation)
            self._background = dict(graph.background)
            self._decay = graph.parameters["decay_seconds"]
            self._window = max(graph.parameters.get("window_seconds", 0.0), self._window)
            self._same_second = graph.parameters.get("simultaneous", 1.0) > 0
        self._tracked = {cause for parents in self._parents.values() for cause in parents}
        if self._background:
            self._tracked |= set(self._self)
        self._recent: dict[tuple[str, str], deque[Flow]] = {}
        self._newest = float("-inf")

    def process(self, batch: list[Flow]) -> list[Flow]:
        if not self._parents:
            return batch
        for flow in batch:
            if flow.alarm.alarm_type in self._tracked:
                self._recent.setdefault(flow.key, deque()).append(flow)
                self._newest = max(self._newest, flow.alarm.raised_at)
        for flow in batch:
            parents = self._parents.get(flow.alarm.alarm_type)
            if not parents:
                continue
            if self._background:
                self._posterior(flow, parents)
            else:
                self._strongest(flow, parents)
        self._prune()
        return batch

    def _near(self, device: str, hops: int) -> dict[str, int]:
        if self.topology is None or device not in self.topology:
            return {device: 0}
        return self.topology.ball(device, hops)

    def _strongest(self, flow: Flow, parents: dict[str, float]) -> None:
        moment = flow.alarm.raised_at
        earliest = moment - self.config.cause_seconds
        best: tuple[float, float] | None = None
        for device, hops in self._near(flow.alarm.device, self.config.cause_hops).items():
            for cause_type, strength in parents.items():
                for candidate in reversed(self._recent.get((device, cause_type), ())):
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

    def _posterior(self, flow: Flow, parents: dict[str, float]) -> None:
        alarm = flow.alarm
        kind = alarm.alarm_type
        own = self._self.get(kind, ())
        total = self._background.get(kind, 0.0)
        caused = 0.0
        best: tuple[float, Flow, int] | None = None
        model_hops = max((len(a) for a in self._alphas.values()), default=1)
        for device, hops in self._near(alarm.device, model_hops - 1).items():
            total += self._excitation(flow, (device, kind), own, hops)[0]
            for cause_type in parents:
                alphas = self._alphas.get((cause_type, kind), ())
                part, near, top, top_weight = self._excitation(
                    flow, (device, cause_type), alphas, hops
                )
                total += part
                if top is None or hops > self.config.cause_hops:
                    continue
                caused += near
                if best is None or top_weight > best[0]:
                    best = (top_weight, top, hops)
        if best is None or total <= 0 or caused / total < self.threshold:
            return
        flow.cause, flow.cause_hops, flow.cause_strength = best[1], best[2], caused / total

    def _excitation(
        self, flow: Flow, key: tuple[str, str], alphas: tuple[float, ...], hops: int
    ) -> tuple[float, float, Flow | None, float]:
        """Excitation of ``flow`` by the recent alarms of ``key``: in all, within the cause
        window, and the heaviest alarm there with its weight."""
        if hops >= len(alphas) or alphas[hops] <= 0:
            return 0.0, 0.0, None, 0.0
        moment = flow.alarm.raised_at
        part, near, top, top_weight = 0.0, 0.0, None, 0.0
        for candidate in reversed(self._recent.get(key, ())):
            raised = candidate.alarm.raised_at
            if candidate is flow or raised > moment or (raised == moment and not self._same_second):
                continue
            age = moment - raised
            if age > self._window:
                break
            weight = alphas[hops] * math.exp(-age / self._decay)
            part += weight
            if age <= self.config.cause_seconds:
                near += weight
                if weight > top_weight:
                    top, top_weight = candidate, weight
        return part, near, top, top_weight

    def _prune(self) -> None:
        oldest = self._newest - self._window - self.config.late_seconds
        empty = []
        for key, recent in self._recent.items():
            while recent and recent[0].alarm.raised_at < oldest:
                recent.popleft()
            if not recent:
                empty.append(key)
        for key in empty:
            del self._recent[key]
