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
from collections.abc import Sequence

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
        # the most hops any kernel reaches, and for each effect type its own kernel and its
        # parents' kernels in the order the graph lists them (the order of the sums below)
        self._model_hops = max((len(a) for a in self._alphas.values()), default=1)
        self._plans: dict[str, tuple[tuple[float, ...], tuple[tuple[str, tuple[float, ...]], ...]]]
        self._plans = {
            kind: (
                self._self.get(kind, ()),
                tuple((cause, self._alphas.get((cause, kind), ())) for cause in parents),
            )
            for kind, parents in self._parents.items()
        }
        self._order = {
            kind: {cause: i for i, (cause, _) in enumerate(plan)}
            for kind, (_, plan) in self._plans.items()
        }
        # recent alarms of tracked types, by device then type: (raise time, flow), oldest first
        self._recent: dict[str, dict[str, deque[tuple[float, Flow]]]] = {}
        self._newest = float("-inf")

    def process(self, batch: list[Flow]) -> list[Flow]:
        if not self._parents:
            return batch
        tracked = self._tracked
        recent = self._recent
        newest = self._newest
        for flow in batch:
            alarm = flow.alarm
            if alarm.alarm_type in tracked:
                moment = alarm.raised_at
                by_type = recent.get(alarm.device)
                if by_type is None:
                    by_type = recent[alarm.device] = {}
                queue = by_type.get(alarm.alarm_type)
                if queue is None:
                    queue = by_type[alarm.alarm_type] = deque()
                queue.append((moment, flow))
                newest = max(newest, moment)
        self._newest = newest
        parents_of = self._parents
        for flow in batch:
            parents = parents_of.get(flow.alarm.alarm_type)
            if not parents:
                continue
            if self._background:
                self._posterior(flow)
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
            by_type = self._recent.get(device)
            if by_type is None:
                continue
            for cause_type, strength in parents.items():
                for raised, candidate in reversed(by_type.get(cause_type, ())):
                    if raised > moment:
                        continue
                    if raised < earliest:
                        break
                    rank = (strength, raised)
                    if best is None or rank > best:
                        best = rank
                        flow.cause, flow.cause_hops, flow.cause_strength = candidate, hops, strength
                    break

    def _posterior(self, flow: Flow) -> None:
        """Intensity of ``flow``'s type at its raise time, split into background, repeats and
        candidate causes; sums run in a fixed order (devices of the ball, then the graph's
        parents), so that the result does not depend on how the alarms are indexed."""
        alarm = flow.alarm
        kind = alarm.alarm_type
        own, plan = self._plans[kind]
        total = self._background.get(kind, 0.0)
        caused = 0.0
        best: tuple[float, Flow, int] | None = None
        cause_hops = self.config.cause_hops
        recent = self._recent
        scan = self._scan
        for device, hops in self._near(alarm.device, self._model_hops - 1).items():
            by_type = recent.get(device)
            if by_type is None:  # nothing recent there: every part below would be 0
                continue
            if hops < len(own) and own[hops] > 0:
                queue = by_type.get(kind)
                if queue:
                    total += scan(flow, queue, own[hops])[0]
            if len(by_type) < len(plan):  # few types there: visit them in the plan's order
                order = self._order[kind]
                steps = sorted(order[t] for t in by_type if t in order)
                present: Sequence[tuple[str, tuple[float, ...]]] = [plan[i] for i in steps]
            else:
                present = plan
            for cause_type, alphas in present:
                if hops >= len(alphas) or alphas[hops] <= 0:
                    continue
                queue = by_type.get(cause_type)
                if not queue:
                    continue
                part, near, top, top_weight = scan(flow, queue, alphas[hops])
                total += part
                if top is None or hops > cause_hops:
                    continue
                caused += near
                if best is None or top_weight > best[0]:
                    best = (top_weight, top, hops)
        if best is None or total <= 0 or caused / total < self.threshold:
            return
        flow.cause, flow.cause_hops, flow.cause_strength = best[1], best[2], caused / total

    def _scan(
        self, flow: Flow, queue: deque[tuple[float, Flow]], alpha: float
    ) -> tuple[float, float, Flow | None, float]:
        """Excitation of ``flow`` by the recent alarms of ``queue`` (kernel height
        ``alpha``): in all, within the cause window, and the heaviest alarm there with
        its weight."""
        moment = flow.alarm.raised_at
        window = self._window
        decay = self._decay
        cause_seconds = self.config.cause_seconds
        same_second = self._same_second
        exp = math.exp
        part, near, top, top_weight = 0.0, 0.0, None, 0.0
        for raised, candidate in reversed(queue):
            if candidate is flow or raised > moment or (raised == moment and not same_second):
                continue
            age = moment - raised
            if age > window:
                break
            weight = alpha * exp(-age / decay)
            part += weight
            if age <= cause_seconds:
                near += weight
                if weight > top_weight:
                    top, top_weight = candidate, weight
        return part, near, top, top_weight

    def _prune(self) -> None:
        oldest = self._newest - self._window - self.config.late_seconds
        for device in list(self._recent):
            by_type = self._recent[device]
            for kind in list(by_type):
                queue = by_type[kind]
                while queue and queue[0][0] < oldest:
                    queue.popleft()
                if not queue:
                    del by_type[kind]
            if not by_type:
                del self._recent[device]
