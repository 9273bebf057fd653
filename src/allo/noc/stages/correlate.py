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

Alarms of the same second come in no known order: when the model links two types both
ways, a learned graph (``ordered_same_second``) lets a same-second pair fold one way only,
the way of the larger excitation (:meth:`CausalCorrelation._first`).

An alarm raised far in the future (flagged by normalisation) is left out: it is nobody's
cause and has none, and it does not move the stage's clock, which would otherwise forget
every recent alarm at once and leave the next ones without their causes.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterator

from allo.noc.causal import CausalGraph
from allo.noc.causal_kernel import ScaledPosterior
from allo.noc.pipeline import FAR_FUTURE, Flow, PipelineConfig
from allo.noc.topology import Topology

THRESHOLD = 0.5  # posterior share of the causes needed to fold an alarm as caused


_BALLS_KEPT = 100_000  # devices whose neighbourhood the correlation stage keeps at hand
_MAX_EXPONENT = 600.0  # exp(600) ~ 1e260: rebase a track's sums before they overflow


class _Track:
    """Recent alarms of one type on one device, oldest first, with running kernel sums.

    ``cum[i]`` is the sum of ``exp((times[k] - base) / decay)`` over ``k < i``, so the
    excitation of a later alarm by any contiguous run of them is one subtraction times
    ``exp(-(t - base) / decay)`` instead of one exponential per alarm: the correlation
    stage's hot loop. This holds while the times are in order; an alarm that arrives out
    of order (or a time too far from ``base`` to keep the sums finite) turns the track
    *slow* until it empties: it is then scanned one alarm at a time exactly as before.
    """

    __slots__ = ("base", "cum", "decay", "fast", "flows", "start", "times")

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self.times: list[float] = []
        self.flows: list[Flow] = []
        self.cum: list[float] = [0.0]
        self.start = 0  # times[:start] are pruned
        self.base = 0.0
        self.fast = True

    def __len__(self) -> int:
        return len(self.times) - self.start

    def append(self, moment: float, flow: Flow) -> None:
        times = self.times
        if len(times) == self.start:
            self._reset()
            self.base = moment
        elif moment < times[-1]:
            self.fast = False
        times.append(moment)
        self.flows.append(flow)
        if self.fast:
            exponent = (moment - self.base) / self.decay
            if not -_MAX_EXPONENT < exponent < _MAX_EXPONENT:  # NaN lands here too
                self.fast = False
            else:
                self.cum.append(self.cum[-1] + math.exp(exponent))

    def prune(self, oldest: float) -> None:
        """Forget the alarms at the front raised before ``oldest`` (as a deque would)."""
        times = self.times
        start, end = self.start, len(times)
        while start < end and times[start] < oldest:
            start += 1
        self.start = start
        if start == end:
            self._reset()
        elif start > 64 and 2 * start > end:
            self._compact()

    def newest_first(self) -> Iterator[tuple[float, Flow]]:
        times, flows = self.times, self.flows
        for i in range(len(times) - 1, self.start - 1, -1):
            yield times[i], flows[i]

    def _reset(self) -> None:
        self.times.clear()
        self.flows.clear()
        self.cum = [0.0]
        self.start = 0
        self.fast = True

    def _compact(self) -> None:
        """Drop the pruned front and rebase the sums on the oldest alarm kept."""
        self.times = self.times[self.start :]
        self.flows = self.flows[self.start :]
        self.start = 0
        if not self.fast:
            return
        self.base = self.times[0]
        cum = [0.0]
        total = 0.0
        exp, base, decay = math.exp, self.base, self.decay
        for moment in self.times:
            total += exp((moment - base) / decay)
            cum.append(total)
        self.cum = cum


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
        # a kernel with several time constants is weighed by its own posterior
        self._scaled = (
            ScaledPosterior(graph, topology, config, threshold)
            if graph is not None and graph.has_model and len(graph.decays) > 1
            else None
        )
        self._parents = graph.parents() if graph is not None else {}
        self._alphas: dict[tuple[str, str], tuple[float, ...]] = {}
        self._self: dict[str, tuple[float, ...]] = {}
        self._background: dict[str, float] = {}
        self._decay = 1.0
        self._window = config.cause_seconds
        self._same_second = True
        self._ordered = False
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
            self._ordered = graph.parameters.get("ordered_same_second", 0.0) > 0
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
        # each effect type's causes with their place in the graph's order and kernels
        self._causes = {
            kind: {cause: (i, alphas) for i, (cause, alphas) in enumerate(plan)}
            for kind, (_, plan) in self._plans.items()
        }
        # for each effect type and each hop count up to the kernels' reach: the height of
        # its own kernel there (0.0 where it does not reach or is not positive) and its
        # causes with their rank, kernel height there (those whose height is not <= 0) and
        # whether an alarm of that cause raised at the very same second may count
        self._reach: dict[str, tuple[tuple[float, dict[str, tuple[int, float, bool]]], ...]] = {
            kind: tuple(
                (
                    own[h] if h < len(own) and own[h] > 0 else 0.0,
                    {
                        cause: (rank, alphas[h], self._same_second and self._first(cause, kind, h))
                        for cause, (rank, alphas) in self._causes[kind].items()
                        if h < len(alphas) and not alphas[h] <= 0
                    },
                )
                for h in range(self._model_hops)
            )
            for kind, (own, _) in self._plans.items()
        }
        self._cause_hops = config.cause_hops
        self._cause_seconds = config.cause_seconds
        # each device's ball of radius ``_model_hops - 1`` (the topology is fixed): two
        # calls fewer per alarm; bounded, as a stream may name any number of devices
        self._balls: dict[str, dict[str, int]] = {}
        # the same, one look-up per track in the hot loop: for each effect type and hop
        # count, the types that weigh there, with the height of the effect's own kernel
        # (0.0 unless the type is the effect's own) and the cause's entry (or ``None``)
        self._specs: dict[str, tuple[dict[str, tuple[float, tuple[int, float, bool] | None]], ...]]
        self._specs = {
            kind: tuple(
                {
                    cause: (own if cause == kind else 0.0, table.get(cause))
                    for cause in (*table, *((kind,) if own != 0.0 else ()))
                }
                for own, table in hops
            )
            for kind, hops in self._reach.items()
        }
        # recent alarms of tracked types, by device then type, oldest first
        self._recent: dict[str, dict[str, _Track]] = {}
        self._newest = float("-inf")
        # (front time, device, type) of every track: pruning visits only the tracks whose
        # oldest alarm has aged out, not every device at every batch (a stream's cost)
        self._fronts: list[tuple[float, str, str]] = []

    def _first(self, cause: str, effect: str, hop: int) -> bool:
        """Whether a ``cause`` alarm raised at the same second as an ``effect`` alarm, ``hop``
        devices away, may be named as its cause.

        Sources stamp alarms to the second, so the order of a same-second pair is unknown,
        and the fitted model keeps both directions of a linked pair (a 2-cycle). Weighing
        both would fold each alarm of the pair under the other: a cycle, in which the alarm
        that came first is lost. Only one of the two can have come first, and the
        likelihood does not say which (both orders fit almost equally well; see
        docs/noc.md). With ``ordered_same_second`` in the graph's parameters (a learned
        graph has it), a same-second 2-cycle keeps the direction with the larger
        excitation per cause alarm at that hop: the type whose alarms are more often
        followed by the other is taken as the cause (a specific fault before the generic
        symptom that many faults raise). A tie keeps both; earlier seconds keep both (the
        order is then observed); a graph without the parameter keeps both, as before.
        """
        if not self._ordered or cause == effect:
            return True
        backward = self._alphas.get((effect, cause), ())
        behind = backward[hop] if hop < len(backward) else 0.0
        if not behind > 0:
            return True
        forward = self._alphas.get((cause, effect), ())
        ahead = forward[hop] if hop < len(forward) else 0.0
        return ahead >= behind

    def process(self, batch: list[Flow]) -> list[Flow]:
        if self._scaled is not None:
            return self._scaled.process(batch)
        if not self._parents:
            return batch
        tracked = self._tracked
        recent = self._recent
        newest = self._newest
        far = False
        for flow in batch:
            issues = flow.issues
            if issues and FAR_FUTURE in issues:  # see the module docstring
                far = True
                continue
            kind = flow.alarm_type
            if kind in tracked:
                moment = flow.raised_at
                device = flow.device
                by_type = recent.get(device)
                if by_type is None:
                    by_type = recent[device] = {}
                track = by_type.get(kind)
                if track is None:
                    track = by_type[kind] = _Track(self._decay)
                    _push_front(self._fronts, moment, device, kind)
                track.append(moment, flow)
                if moment > newest:  # as ``max``: a NaN neither replaces nor is replaced
                    newest = moment
        self._newest = newest
        parents_of = self._parents
        weighed = [f for f in batch if not (f.issues and FAR_FUTURE in f.issues)] if far else batch
        if self._background:
            posterior = self._posterior
            for flow in weighed:
                if parents_of.get(flow.alarm_type):
                    posterior(flow)
        else:
            for flow in weighed:
                parents = parents_of.get(flow.alarm_type)
                if parents:
                    self._strongest(flow, parents)
        self._prune()
        return batch

    def _near(self, device: str, hops: int) -> dict[str, int]:
        if self.topology is None or device not in self.topology:
            return {device: 0}
        return self.topology.ball(device, hops)

    def _strongest(self, flow: Flow, parents: dict[str, float]) -> None:
        moment = flow.raised_at
        earliest = moment - self.config.cause_seconds
        best: tuple[float, float] | None = None
        for device, hops in self._near(flow.device, self.config.cause_hops).items():
            by_type = self._recent.get(device)
            if by_type is None:
                continue
            for cause_type, strength in parents.items():
                track = by_type.get(cause_type)
                if track is None:
                    continue
                for raised, candidate in track.newest_first():
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
        candidate causes. The parts are added with ``math.fsum`` (correctly rounded, so the
        same whatever the order the tracks are met in) and ties between candidates go to
        the nearest device in the ball's order, then the graph's order: the result does
        not depend on how the alarms are indexed.

        This is the hot loop of a replay, so the scan of a track is written out here rather
        than called: with its running sums, a track gives the excitation of any run of its
        alarms in one subtraction (bisect the window, then ``cum[hi] - cum[lo]``); the
        window is located once and serves both kernels when the type is listed as its own
        cause. The newest alarm in the cause window is the heaviest (the kernel decreases
        with age); the flow itself, in its own track, is left out. A part that is exactly
        zero is left out of the sums, which does not change them."""
        kind = flow.alarm_type
        moment = flow.raised_at
        reach = self._specs[kind]
        parts = [self._background.get(kind, 0.0)]
        nears: list[float] = []
        best: Flow | None = None
        best_weight, best_hops, best_device, best_rank = 0.0, 0, "", 0
        cause_hops = self._cause_hops
        same_second = self._same_second
        earliest = moment - self._window
        earliest_near = moment - self._cause_seconds
        decay = self._decay
        exp = math.exp
        recent = self._recent
        device = flow.device
        ball = self._balls.get(device)
        if ball is None:
            ball = self._near(device, self._model_hops - 1)
            if len(self._balls) < _BALLS_KEPT:
                self._balls[device] = ball
        for device, hops in ball.items():
            by_type = recent.get(device)
            if by_type is None:  # nothing recent there: every part below would be 0
                continue
            specs = reach[hops]
            for cause_type, track in by_type.items():
                spec = specs.get(cause_type)
                if spec is None:
                    continue
                self_alpha, entry = spec
                if not track.fast:
                    if self_alpha > 0:
                        parts.append(self._scan_slowly(flow, track, self_alpha, same_second)[0])
                    if entry is None:
                        continue
                    rank, alpha, same = entry
                    part, near, top, top_weight = self._scan_slowly(flow, track, alpha, same)
                    parts.append(part)
                    if top is None or hops > cause_hops:
                        continue
                else:
                    times = track.times
                    start = track.start
                    # the common cases without a bisection: every alarm of the track at or
                    # before ``moment``, none of them older than the window
                    if same_second:
                        hi = (
                            len(times)
                            if times[-1] <= moment
                            else bisect_right(times, moment, start)
                        )
                    else:
                        hi = bisect_left(times, moment, start)
                    if hi <= start:
                        continue
                    lo = (
                        start
                        if times[start] >= earliest
                        else bisect_left(times, earliest, start, hi)
                    )
                    if lo >= hi:
                        continue
                    if same_second and entry is not None and not entry[2]:
                        # a cause not counted at the same second: its window ends before it
                        hi = bisect_left(times, moment, lo, hi)
                        if lo >= hi:
                            continue
                    factor = exp((track.base - moment) / decay)  # track.decay is decay
                    cum = track.cum
                    top_index = hi - 1
                    own = -1
                    if hops == 0 and cause_type == kind and same_second:  # the flow's own track
                        own = track.flows.index(flow, bisect_left(times, moment, lo, hi), hi)
                        if own == top_index:
                            top_index -= 1
                        span = (cum[own] - cum[lo]) + (cum[hi] - cum[own + 1])
                    else:
                        span = cum[hi] - cum[lo]
                    if self_alpha > 0:
                        parts.append(self_alpha * factor * span)
                    if entry is None:
                        continue
                    rank, alpha, _ = entry
                    scale = alpha * factor
                    parts.append(scale * span)
                    if hops > cause_hops:
                        continue
                    # the cause window, located only for a cause that may be named
                    lo_near = bisect_left(times, earliest_near, lo, hi)
                    if top_index < lo_near:
                        continue
                    top_weight = alpha * exp(-(moment - times[top_index]) / decay)
                    if top_weight <= 0.0:
                        continue
                    if own >= lo_near:
                        span_near = (cum[own] - cum[lo_near]) + (cum[hi] - cum[own + 1])
                    else:
                        span_near = cum[hi] - cum[lo_near]
                    near = scale * span_near
                    top = track.flows[top_index]
                nears.append(near)
                if top_weight > best_weight or (
                    top_weight == best_weight and device == best_device and rank < best_rank
                ):
                    best, best_weight, best_hops, best_device, best_rank = (
                        top,
                        top_weight,
                        hops,
                        device,
                        rank,
                    )
        if best is None:
            return
        total = math.fsum(parts)
        caused = math.fsum(nears)
        if total <= 0 or caused / total < self.threshold:
            return
        flow.cause, flow.cause_hops, flow.cause_strength = best, best_hops, caused / total

    def _scan_slowly(
        self, flow: Flow, track: _Track, alpha: float, same_second: bool
    ) -> tuple[float, float, Flow | None, float]:
        """The excitation of ``flow`` by ``track``: in all, within the cause window, and the
        heaviest alarm there with its weight; one alarm at a time, newest first, for a track
        out of order (``same_second``: an alarm of the same second counts)."""
        moment = flow.raised_at
        window = self._window
        decay = self._decay
        cause_seconds = self.config.cause_seconds
        exp = math.exp
        part, near, top, top_weight = 0.0, 0.0, None, 0.0
        for raised, candidate in track.newest_first():
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
        """Forget alarms raised before the window of any alarm still to come (and the
        tracks left empty), visiting only the tracks whose front has aged out."""
        oldest = self._newest - self._window - self.config.late_seconds
        fronts = self._fronts
        recent = self._recent
        while fronts and fronts[0][0] < oldest:
            _, device, kind = heapq.heappop(fronts)
            by_type = recent.get(device)
            track = by_type.get(kind) if by_type is not None else None
            if by_type is None or track is None:
                continue
            track.prune(oldest)
            if track:
                _push_front(fronts, track.times[track.start], device, kind)
                continue
            del by_type[kind]
            if not by_type:
                del recent[device]


def _push_front(
    fronts: list[tuple[float, str, str]], moment: float, device: str, kind: str
) -> None:
    """A track's front on the heap; one that can never age out (NaN) is parked at +inf."""
    key = moment if not math.isnan(moment) else math.inf
    heapq.heappush(fronts, (key, device, kind))
