"""The posterior correlation for a learned model whose kernel is a sum of exponentials.

A graph learned with several time constants (``CausalGraph.decays``, chosen by held-out
likelihood among ``HawkesConfig.scale_candidates``) excites an effect ``age`` seconds
after a cause ``hop`` devices away with

    g(age) = sum_k alphas[k * hops + hop] * exp(-age / decays[k])   (for age <= 6 decays[k])

exactly as the learner's features (:func:`allo.noc.causal_fit.kernel_features`) do.
:class:`ScaledPosterior` applies the same rule as the correlation stage's posterior
(:mod:`allo.noc.stages.correlate`) with that kernel: the intensity of an alarm's type at
its raise time is split into background, repeats of its own type nearby and each
candidate cause; the alarm is folded under the heaviest candidate when the candidates'
share is at least the threshold. Same-second 2-cycles fold one way only, the way of the
larger expected number of effects within the first second per cause alarm (the one-second
reading of the stage's rule for a single exponential).

The running sums of the single-exponential stage do not carry over (a one-second time
constant overflows them within minutes), so each track is scanned alarm by alarm within
the kernel's reach; this costs more per alarm and is kept apart from the hot loop.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right

from allo.noc.causal import CausalGraph
from allo.noc.pipeline import FAR_FUTURE, Flow, PipelineConfig
from allo.noc.topology import Topology

_BALLS_KEPT = 100_000  # devices whose neighbourhood is kept at hand (a stream may name any)

# for an effect type, per hop: type -> (heights per time constant, is it the type's own
# kernel, whether an alarm of the same second counts)
_Spec = dict[str, tuple[tuple[float, ...], bool, bool]]


class ScaledPosterior:
    """Names each alarm's probable cause with a multi-scale learned model (see module doc)."""

    def __init__(
        self,
        graph: CausalGraph,
        topology: Topology | None,
        config: PipelineConfig,
        threshold: float,
    ) -> None:
        if not graph.has_model or not graph.decays:
            raise ValueError("ScaledPosterior needs a learned graph with its kernel's decays")
        weighed = graph.excitations or graph.edges
        self.decays = tuple(graph.decays)
        scales = len(self.decays)
        widths = {len(e.alphas) for e in weighed} | {len(v) for v in graph.self_excitation.values()}
        if any(w == 0 or w % scales for w in widths):
            raise ValueError(f"kernel heights do not match the {scales} time constants")
        self.hops = max(widths) // scales
        self.config = config
        self.topology = topology
        self.threshold = threshold
        self.reach = tuple(6 * d for d in self.decays)
        self.window = max(self.reach)
        self.same_second = graph.parameters.get("simultaneous", 1.0) > 0
        self.ordered = graph.parameters.get("ordered_same_second", 0.0) > 0
        self.background = dict(graph.background)
        alphas = {(e.cause, e.effect): e.alphas for e in weighed}
        causes: dict[str, list[str]] = {}
        for edge in weighed:
            causes.setdefault(edge.effect, []).append(edge.cause)
        self.specs: dict[str, tuple[_Spec, ...]] = {}
        for kind, listed in causes.items():
            per_hop: list[_Spec] = []
            for hop in range(self.hops):
                spec: _Spec = {}
                own = self._heights(graph.self_excitation.get(kind, ()), hop)
                if any(a > 0 for a in own):
                    spec[kind] = (own, True, self.same_second)
                for cause in listed:
                    heights = self._heights(alphas[(cause, kind)], hop)
                    if any(a > 0 for a in heights):
                        first = self._first(alphas, cause, kind, hop)
                        spec[cause] = (heights, False, self.same_second and first)
                per_hop.append(spec)
            self.specs[kind] = tuple(per_hop)
        self.tracked = set(causes) | {c for listed in causes.values() for c in listed}
        self.tracked |= set(graph.self_excitation)
        # recent alarms of tracked types, by device then type: times and flows, oldest first
        self.recent: dict[str, dict[str, tuple[list[float], list[Flow]]]] = {}
        self.balls: dict[str, dict[str, int]] = {}
        self.newest = -math.inf
        self.pruned = -math.inf

    def _heights(self, alphas: tuple[float, ...], hop: int) -> tuple[float, ...]:
        """The kernel's height at ``hop`` for each time constant (0 where not fitted)."""
        hops = self.hops
        return tuple(
            alphas[k * hops + hop] if k * hops + hop < len(alphas) else 0.0
            for k in range(len(self.decays))
        )

    def _first_second(self, heights: tuple[float, ...]) -> float:
        """Expected effect alarms one cause alarm triggers within its first second."""
        return sum(a * d * -math.expm1(-1.0 / d) for a, d in zip(heights, self.decays, strict=True))

    def _first(
        self, alphas: dict[tuple[str, str], tuple[float, ...]], cause: str, effect: str, hop: int
    ) -> bool:
        """Whether a same-second ``cause`` alarm may be named as the cause of ``effect``:
        in a 2-cycle, only the direction with the larger first-second excitation (a tie
        keeps both; without ``ordered_same_second`` both are kept)."""
        if not self.ordered or (effect, cause) not in alphas:
            return True
        behind = self._first_second(self._heights(alphas[(effect, cause)], hop))
        if not behind > 0:
            return True
        return self._first_second(self._heights(alphas[(cause, effect)], hop)) >= behind

    def process(self, batch: list[Flow]) -> list[Flow]:
        """Record the batch's alarms (they see each other), then weigh each of them."""
        weighed = [f for f in batch if FAR_FUTURE not in f.issues]  # as CausalCorrelation
        for flow in weighed:
            alarm = flow.alarm
            if alarm.alarm_type in self.tracked:
                times, flows = self.recent.setdefault(alarm.device, {}).setdefault(
                    alarm.alarm_type, ([], [])
                )
                if times and alarm.raised_at < times[-1]:  # out of order: keep times sorted
                    at = bisect_right(times, alarm.raised_at)
                    times.insert(at, alarm.raised_at)
                    flows.insert(at, flow)
                else:
                    times.append(alarm.raised_at)
                    flows.append(flow)
                if alarm.raised_at > self.newest:
                    self.newest = alarm.raised_at
        for flow in weighed:
            if flow.alarm.alarm_type in self.specs:
                self._weigh(flow)
        if self.newest - self.pruned > self.window / 10:
            self._prune()
        return batch

    def _ball(self, device: str) -> dict[str, int]:
        ball = self.balls.get(device)
        if ball is None:
            if self.topology is None or device not in self.topology:
                ball = {device: 0}
            else:
                ball = self.topology.ball(device, self.hops - 1)
            if len(self.balls) < _BALLS_KEPT:
                self.balls[device] = ball
        return ball

    def _weigh(self, flow: Flow) -> None:
        """Split the intensity at the alarm's raise time; fold it when the causes weigh
        at least the threshold (sums with ``math.fsum``: independent of the visit order)."""
        alarm = flow.alarm
        moment = alarm.raised_at
        specs = self.specs[alarm.alarm_type]
        parts = [self.background.get(alarm.alarm_type, 0.0)]
        nears: list[float] = []
        best: Flow | None = None
        best_weight, best_hops = 0.0, 0
        cause_seconds, cause_hops = self.config.cause_seconds, self.config.cause_hops
        earliest = moment - self.window
        exp = math.exp
        for device, hops in self._ball(alarm.device).items():
            by_type = self.recent.get(device)
            if not by_type or hops >= len(specs):
                continue
            spec = specs[hops]
            for kind, (times, flows) in by_type.items():
                entry = spec.get(kind)
                if entry is None:
                    continue
                heights, own, same = entry
                hi = bisect_right(times, moment) if same else bisect_left(times, moment)
                lo = bisect_left(times, earliest, 0, hi)
                part = near = top_weight = 0.0
                top: Flow | None = None
                terms = [t for t in zip(heights, self.decays, self.reach, strict=True) if t[0] > 0]
                for i in range(hi - 1, lo - 1, -1):
                    if flows[i] is flow:
                        continue
                    age = moment - times[i]
                    weight = 0.0
                    for alpha, decay, reach in terms:
                        if age <= reach:
                            weight += alpha * exp(-age / decay)
                    part += weight
                    if not own and age <= cause_seconds and hops <= cause_hops:
                        near += weight
                        if weight > top_weight:
                            top, top_weight = flows[i], weight
                parts.append(part)
                if top is not None:
                    nears.append(near)
                    if top_weight > best_weight:
                        best, best_weight, best_hops = top, top_weight, hops
        if best is None:
            return
        total, caused = math.fsum(parts), math.fsum(nears)
        if total > 0 and caused / total >= self.threshold:
            flow.cause, flow.cause_hops, flow.cause_strength = best, best_hops, caused / total

    def _prune(self) -> None:
        """Forget alarms older than the window of any alarm still to come."""
        oldest = self.newest - self.window - self.config.late_seconds
        for device in list(self.recent):
            by_type = self.recent[device]
            for kind in list(by_type):
                times, flows = by_type[kind]
                cut = bisect_left(times, oldest)
                if cut:
                    del times[:cut], flows[:cut]
                if not times:
                    del by_type[kind]
            if not by_type:
                del self.recent[device]
        self.pruned = self.newest
