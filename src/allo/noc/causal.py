"""Learning which alarm types cause which, from alarm history alone.

The model is a topological Hawkes process, the family THP belongs to (Cai et al., KDD
2022); the numerics (features, EM, the held-out score, the per-type parent searches) are
in :mod:`allo.noc.causal_fit`, the search over whole graphs in
:mod:`allo.noc.causal_search`. Self-excitation (``i == j``) is always in the model: it
absorbs the burstiness of each device so that it is not mistaken for a cause.

The default search (``hybrid``) keeps every pair of types that a pairwise BIC test links
and points each the way a THP-style hill-climb over whole DAGs (add, delete, reverse)
orders them; the per-type searches (``pairwise``, ``forward``, ``conditional``) make their
kept edges acyclic strongest first instead.

The graph keeps the fitted model (background rate of each type, excitation per hop of
each edge and of each type by itself, the kernel's time constant) so that the correlation
stage can ask, for one alarm, how probable it is that a given earlier alarm triggered it.

The kernel is one exponential by default. ``HawkesConfig.scale_candidates`` adds kernels
made of several exponentials (one height per cause, hop and time constant) to the
held-out selection: they fit the PCIC sets far better (docs/noc.md) but fold more
near-simultaneous alarms, which costs root recall, so they are not the default. Such a
graph lists its time constants in ``CausalGraph.decays`` and is weighed by
:class:`allo.noc.causal_kernel.ScaledPosterior`.
Only numpy is needed and nothing is downloaded.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from allo.domain.alarms import Alarm
from allo.errors import CorruptFileError, InvalidInputError
from allo.files import write_whole
from allo.noc import causal_fit as fit
from allo.noc.causal_fit import Events
from allo.noc.causal_search import FamilyScores, search_graph
from allo.noc.sources.base import InputReport, shown
from allo.noc.topology import Topology, adjacency_matrix


@dataclass(frozen=True, slots=True)
class CausalEdge:
    """``cause`` alarms tend to be followed by ``effect`` alarms nearby; ``strength`` in nats."""

    cause: str
    effect: str
    strength: float
    excitation: float  # expected effect alarms triggered by one cause alarm
    alphas: tuple[float, ...] = ()  # kernel height per hop (same device, adjacent), 1/s


@dataclass(frozen=True, slots=True)
class CausalGraph:
    """A directed acyclic graph between alarm types, as learned (or written by an expert)."""

    types: tuple[str, ...]
    edges: tuple[CausalEdge, ...]
    method: str = "topological-hawkes-em"
    parameters: dict[str, float] = field(default_factory=dict)
    background: dict[str, float] = field(default_factory=dict)  # per device, alarms/s
    self_excitation: dict[str, tuple[float, ...]] = field(default_factory=dict)  # per hop
    # every excitation the fitted model kept, 2-cycles included (``edges`` is its acyclic
    # summary, the causal graph proper); the correlation stage weighs alarms with these
    excitations: tuple[CausalEdge, ...] = ()
    # time constants of a kernel that is a sum of exponentials (empty: one exponential,
    # ``parameters["decay_seconds"]``); with K of them an edge's ``alphas`` hold
    # ``K * hops`` heights, ``alphas[k * hops + hop]`` (``parameters["kernel_scales"]``)
    decays: tuple[float, ...] = ()

    @property
    def has_model(self) -> bool:
        """Whether the fitted Hawkes model came with the graph (not just its edges)."""
        return bool(self.background) and self.parameters.get("decay_seconds", 0.0) > 0

    def parents(self) -> dict[str, dict[str, float]]:
        """For each effect type, its cause types and their strength."""
        result: dict[str, dict[str, float]] = {}
        for edge in self.edges:
            result.setdefault(edge.effect, {})[edge.cause] = edge.strength
        return result

    def cycle(self) -> list[str] | None:
        """Types whose edges lead back to the first (``[a, b, a]``), or ``None``.

        Learned graphs have none; an expert's matrix may. Such a graph still works (any
        parent alarm in the window names a cause), but alarms of a loop fold under each
        other in either order, so a root can be named the effect of its own effect: the
        sources of a graph say so to the operator (``graph_cycle``)."""
        children: dict[str, list[str]] = {}
        for edge in self.edges:
            if edge.cause != edge.effect:  # a type after itself is a repeat: deduplication's
                children.setdefault(edge.cause, []).append(edge.effect)
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        for start in children:
            if start in state:
                continue
            path, stack = [start], [iter(children.get(start, ()))]
            state[start] = 1
            while stack:
                following = next(stack[-1], None)
                if following is None:
                    state[path.pop()] = 2
                    stack.pop()
                elif state.get(following) == 1:
                    return [*path[path.index(following) :], following]
                elif following not in state:
                    state[following] = 1
                    path.append(following)
                    stack.append(iter(children.get(following, ())))
        return None

    def cycle_warning(self, name: str) -> str | None:
        """What to tell the operator about :meth:`cycle` (``name``: where the graph came
        from), or ``None`` when there is no cycle."""
        loop = self.cycle()
        if loop is None:
            return None
        names = " -> ".join(shown(t, 40) for t in loop[:8]) + (" -> ..." if len(loop) > 8 else "")
        return (
            f"{name} has a cycle ({names}): alarms of these types fold under each other in "
            "either order; remove an edge to name their root"
        )

    def report_cycle(self, name: str, report: InputReport) -> None:
        """Count :meth:`cycle_warning` in ``report`` as ``graph_cycle``, when there is one."""
        warning = self.cycle_warning(name)
        if warning is not None:
            report.add("graph_cycle", -1, warning)

    def matrix(self, order: Sequence[str]) -> np.ndarray:
        """``M[i, j] == 1`` when ``order[i]`` causes ``order[j]`` (the PCIC DAG layout)."""
        index = {name: i for i, name in enumerate(order)}
        out = np.zeros((len(order), len(order)), dtype=np.int64)
        for edge in self.edges:
            if edge.cause in index and edge.effect in index:
                out[index[edge.cause], index[edge.effect]] = 1
        return out

    @classmethod
    def from_matrix(cls, matrix: np.ndarray, types: Sequence[str] | None = None) -> CausalGraph:
        """A graph from an adjacency matrix (``matrix[i, j]`` non-zero: ``i`` causes ``j``)."""
        names = tuple(types or (str(i) for i in range(matrix.shape[0])))
        rows, cols = np.nonzero(matrix)
        edges = tuple(
            CausalEdge(names[r], names[c], 1.0, 0.0) for r, c in zip(rows, cols, strict=True)
        )
        return cls(names, edges, method="matrix")

    def to_json(self) -> dict[str, object]:
        """The graph as JSON. A multi-scale kernel's heights go under ``kernel_heights``
        (and the self-excitation's under ``self_kernel_heights``), not ``alphas``: an engine
        that predates them finds no heights, so it falls back to the edges alone instead
        of misreading ``K * hops`` heights as ``hops`` of them."""
        scaled = len(self.decays) > 1
        heights = "kernel_heights" if scaled else "alphas"
        return {
            **self._edges_json("edges", self.edges, heights),
            "method": self.method,
            "parameters": self.parameters,
            "types": list(self.types),
            "background": {t: float(f"{v:.6g}") for t, v in self.background.items()},
            "self_kernel_heights" if scaled else "self_excitation": {
                t: [float(f"{a:.6g}") for a in v] for t, v in self.self_excitation.items()
            },
            **self._edges_json("excitations", self.excitations, heights),
            **({"decays": list(self.decays)} if self.decays else {}),
        }

    @staticmethod
    def _edges_json(key: str, edges: Sequence[CausalEdge], heights: str) -> dict[str, object]:
        return {
            key: [
                {
                    "cause": e.cause,
                    "effect": e.effect,
                    "strength": round(e.strength, 3),
                    "excitation": round(e.excitation, 5),
                    heights: [float(f"{a:.6g}") for a in e.alphas],
                }
                for e in edges
            ]
        }

    def _indexed_types(self) -> list[str]:
        """Row ``i`` of a bare matrix is type ``str(i)`` (the PCIC layout, and what
        :meth:`from_matrix` reads back): types ``0 1 5`` get a 6 x 6 matrix, not a 3 x 3
        one whose rows would come back as types ``0 1 2``. Named types cannot be kept."""
        if not all(t.isascii() and t.isdigit() for t in self.types):
            raise InvalidInputError(
                "a .npy graph keeps no type names, and these types are not 0, 1, 2...: "
                "write the graph as .json"
            )
        size = max((int(t) + 1 for t in self.types), default=0)
        if size > _MAX_MATRIX_TYPES:
            raise InvalidInputError(
                f"type {size - 1} would make a {size} x {size} matrix: write the graph as .json"
            )
        return [str(i) for i in range(size)]

    def save(self, path: Path) -> None:
        """Write the graph as JSON (``.npy`` writes the bare adjacency matrix instead)."""
        if path.suffix.lower() == ".npy":
            buffer = io.BytesIO()
            np.save(buffer, self.matrix(self._indexed_types()))
            write_whole(path, buffer.getvalue())
            return
        try:
            text = json.dumps(self.to_json(), indent=1, allow_nan=False)
        except ValueError as exc:  # NaN is not JSON: say so rather than write it
            raise InvalidInputError(
                f"the graph holds a number that is not finite ({exc}): check the alarms' "
                "raise times for absurd values"
            ) from exc
        write_whole(path, text + "\n")

    @classmethod
    def load(cls, path: Path) -> CausalGraph:
        """Read a graph written by :meth:`save` (JSON) or an adjacency matrix (``.npy``)."""
        if not path.is_file():
            raise InvalidInputError(f"causal graph {path} not found: run `allo noc learn` first")
        try:
            if path.suffix.lower() == ".npy":
                loaded = np.load(path, allow_pickle=False)
                return cls.from_matrix(adjacency_matrix(loaded, f"causal graph {path}"))
            data = json.loads(path.read_text(encoding="utf-8"))

            def edges(key: str) -> tuple[CausalEdge, ...]:
                return tuple(
                    CausalEdge(
                        str(e["cause"]),
                        str(e["effect"]),
                        float(e.get("strength", 1.0)),
                        float(e.get("excitation", 0.0)),
                        tuple(float(a) for a in e.get("alphas") or e.get("kernel_heights", ())),
                    )
                    for e in data.get(key, [])
                )

            if "edges" not in data:
                raise KeyError("edges")
            graph = cls(
                tuple(str(t) for t in data.get("types", [])),
                edges("edges"),
                str(data.get("method", "file")),
                {str(k): float(v) for k, v in data.get("parameters", {}).items()},
                {str(t): float(v) for t, v in data.get("background", {}).items()},
                {
                    str(t): tuple(float(a) for a in v)
                    for t, v in (
                        data.get("self_excitation") or data.get("self_kernel_heights", {})
                    ).items()
                },
                edges("excitations"),
                tuple(float(d) for d in data.get("decays", [])),
            )
        except (ValueError, KeyError, TypeError, AttributeError, OSError, RecursionError) as exc:
            raise CorruptFileError(f"cannot read causal graph {path}: {exc}") from exc
        problem = graph.model_problem()
        if problem is not None:
            raise CorruptFileError(f"causal graph {path}: {problem}; learn it again")
        return graph

    def model_problem(self) -> str | None:
        """What makes the fitted model unusable, or ``None``: a number that is not finite
        or is negative (a negative height silently turned correlation off), a time
        constant that is not positive, or heights that do not match the time constants."""
        for name, value in self.parameters.items():
            if not math.isfinite(value):
                return f"parameter {name} is {value}"
        for name in ("decay_seconds", "window_seconds"):
            if name in self.parameters and not self.parameters[name] > 0:
                return f"parameter {name} must be > 0 seconds"
        if any(not (math.isfinite(d) and d > 0) for d in self.decays):
            return "every time constant in decays must be > 0 seconds"
        numbers = [
            *self.background.values(),
            *(a for heights in self.self_excitation.values() for a in heights),
            *(a for edge in (*self.edges, *self.excitations) for a in edge.alphas),
        ]
        if any(not 0 <= n <= _MAX_RATE for n in numbers):  # NaN fails both
            return (
                "a background rate or kernel height is negative, not finite or over "
                f"{_MAX_RATE:.0e} per second"
            )
        kernels = len(self.decays) or 1
        heights = [
            *self.self_excitation.values(),
            *(e.alphas for e in (*self.edges, *self.excitations) if e.alphas),
        ]
        if any(len(h) % kernels for h in heights):
            return f"kernel heights do not come in groups of {kernels} (one per time constant)"
        return None


#: the largest bare matrix a graph is saved as (types are its row numbers)
_MAX_MATRIX_TYPES = 10_000
#: no fitted rate comes near this (alarms per second); far larger ones overflow the sums
_MAX_RATE = 1e9


def _numeric_order(types: Sequence[str]) -> list[str]:
    try:
        return [str(v) for v in sorted(int(t) for t in types)]
    except ValueError:
        return sorted(types)


GRAPH_SEARCHES = ("hybrid", "dag")  # searches over whole graphs (allo.noc.causal_search)


@dataclass(frozen=True, slots=True)
class HawkesConfig:
    """Settings of the learner (see docs/noc.md for how the defaults were chosen)."""

    decay_seconds: float = 300.0  # kernel time constant (1 / beta)
    window_seconds: float = 1800.0  # kernel truncation, about 6 time constants
    # a kernel that is a sum of exponentials with these time constants (each truncated at
    # 6 of them), one height per (cause, hop, time constant); empty: one exponential
    scales: tuple[float, ...] = ()
    penalty: float = 1.0  # BIC multiplier: keep a cause if it gains > penalty*log(n)/2 per param
    iterations: int = 150
    refit_iterations: int = 40
    simultaneous: bool = True  # alarms of the same second may excite each other
    # ... counting this much (1/2, the chance that one came first when both times were
    # rounded down, has the lower held-out likelihood on both PCIC sets: docs/noc.md)
    same_second_weight: float = 1.0
    # graph search: hybrid (pairwise links oriented by a DAG hill-climb), dag (the
    # hill-climb alone, as THP), or a per-type parent search: pairwise, forward, conditional
    search: str = "hybrid"
    select: bool = True  # choose decay and penalty among the candidates by held-out fit
    decay_candidates: tuple[float, ...] = (100.0, 300.0, 1000.0, 3000.0)
    # sums of exponentials also scored by the held-out selection (empty: none)
    scale_candidates: tuple[tuple[float, ...], ...] = ()
    penalty_candidates: tuple[float, ...] = (1.0, 2.0)
    train_share: float = 0.7  # held-out fit: train on this first share of the time span

    def kernel(self) -> tuple[tuple[float, float], ...]:
        """(time constant, truncation) of each exponential of the kernel."""
        if self.scales:
            return tuple((d, 6 * d) for d in self.scales)
        return ((self.decay_seconds, self.window_seconds),)

    def same_second(self) -> tuple[bool, float]:
        """Whether same-second alarms excite each other, and with what weight."""
        return self.simultaneous, self.same_second_weight

    def candidates(self) -> list[HawkesConfig]:
        """The kernels the held-out selection scores (before the penalties)."""
        single = [
            replace(self, decay_seconds=d, window_seconds=6 * d, scales=())
            for d in self.decay_candidates
        ]
        ladders = [
            replace(self, decay_seconds=max(s), window_seconds=6 * max(s), scales=tuple(s))
            for s in self.scale_candidates
        ]
        return single + ladders


class HawkesLearner:
    """Learns a :class:`CausalGraph` from alarms with a topological Hawkes process."""

    def __init__(self, config: HawkesConfig | None = None) -> None:
        self.config = config or HawkesConfig()
        self.seconds = 0.0
        # (time constants of the kernel, penalty, held-out nats per alarm) of every candidate
        self.selection: list[tuple[tuple[float, ...], float, float]] = []
        # seconds spent in each phase of the last learn: "selection" (features and
        # held-out fits of every candidate), "search" (the graph search and final fit)
        self.phases: dict[str, float] = {}

    def learn(self, alarms: Sequence[Alarm], topology: Topology | None = None) -> CausalGraph:
        """Fit on ``alarms`` (any order); ``topology`` adds the adjacent-device kernel.

        With ``config.select``, the kernel's time constant and the penalty are first
        chosen among the candidates by held-out log-likelihood (:attr:`selection` keeps
        every score), then the chosen model is fitted on all the alarms.
        """
        started = time.perf_counter()
        if not alarms:
            raise InvalidInputError(
                "no usable alarm to learn from: the input holds none, or only unreadable rows"
            )
        events, types = _events(alarms, topology)
        cfg = self.config
        if cfg.search not in GRAPH_SEARCHES + fit.SEARCHES:
            known = ", ".join(GRAPH_SEARCHES + fit.SEARCHES)
            raise InvalidInputError(f"unknown causal search {cfg.search!r}: use one of {known}")
        kernels = [cfg.kernel(), *(c.kernel() for c in cfg.candidates() if cfg.select)]
        if any(d <= 0 or w <= 0 for kernel in kernels for d, w in kernel):
            raise InvalidInputError(
                "kernel time constants and windows must be > 0 seconds: check "
                "decay_seconds, window_seconds, scales and their candidates"
            )
        self.selection = []
        kept: fit.Features | None = None  # the best candidate's features, reused by the final fit
        if cfg.select and len(events.times):
            best: tuple[float, HawkesConfig] | None = None
            for candidate in cfg.candidates():
                x = fit.kernel_features(events, candidate.kernel(), *candidate.same_second())
                fitted = fit.FitMemo()  # shared by the penalties
                for penalty in cfg.penalty_candidates:
                    trial = replace(candidate, penalty=penalty)
                    score = _heldout(events, trial, x, cfg.train_share, fitted)
                    if best is None or score > best[0]:
                        best, kept = (score, trial), x
                    self.selection.append((_decays(trial), penalty, score))
            assert best is not None
            cfg = best[1]
        if kept is None:
            kept = fit.kernel_features(events, cfg.kernel(), *cfg.same_second())
        x = kept
        chosen = time.perf_counter()
        self.phases = {"selection": chosen - started}
        if cfg.search in GRAPH_SEARCHES and len(events.times):
            fits, dag = _search_events(events, cfg, x)
            graph = _graph(fits, events, types, cfg, dag)
        else:
            graph = _graph(_fit_events(events, cfg, x), events, types, cfg)
        self.seconds = time.perf_counter() - started
        self.phases["search"] = self.seconds - self.phases["selection"]
        return graph

    def heldout_loglik(self, alarms: Sequence[Alarm], topology: Topology | None = None) -> float:
        """Nats per held-out alarm of the configured model (no selection): fitted on the
        first ``train_share`` of the time span, scored on the rest."""
        events, _ = _events(alarms, topology)
        if len(events.times) == 0:
            return 0.0
        cfg = self.config
        x = fit.kernel_features(events, cfg.kernel(), *cfg.same_second())
        return _heldout(events, cfg, x, cfg.train_share)


def _decays(cfg: HawkesConfig) -> tuple[float, ...]:
    return tuple(d for d, _ in cfg.kernel())


def _width(events: Events, cfg: HawkesConfig) -> int:
    """Feature columns per cause type: one per hop and time constant."""
    return events.hops * len(cfg.kernel())


def _heldout(
    events: Events,
    cfg: HawkesConfig,
    x: fit.Features,
    share: float,
    fitted: fit.FitMemo | None = None,
) -> float:
    """Fit on the first ``share`` of the span; nats per alarm of the rest (``fitted``: the
    fits of an earlier call on the same ``x`` and ``share``, reused)."""
    first, last = float(events.times[0]), float(events.times[-1])
    cut = first + share * (last - first)
    fits = _fit_events(events, cfg, x, end=cut, strengths=False, fitted=fitted)
    test = events.times > cut
    comp = fit.kernel_compensator(events, cfg.kernel(), cut, last)
    exposure = max(last - cut, 1.0) * events.n_devices
    seen = events.times <= cut
    rates = np.bincount(events.kinds[seen], minlength=events.n_types) / (
        max(cut - first, 1.0) * events.n_devices
    )
    score = fit.heldout_score(fits, events, x, test, comp, exposure, rates)
    return score / max(int(test.sum()), 1)


def _fit_events(
    events: Events,
    cfg: HawkesConfig,
    x: fit.Features,
    end: float | None = None,
    strengths: bool = True,
    fitted: fit.FitMemo | None = None,
) -> dict[int, fit.EffectFit]:
    """The model of every effect type with enough alarms, fitted on times ``<= end``
    (``strengths`` and ``fitted``: see :func:`allo.noc.causal_fit.fit_effect`)."""
    start = float(events.times[0])
    stop = float(events.times[-1]) if end is None else end
    comp = fit.kernel_compensator(events, cfg.kernel(), start, stop)
    exposure = max(stop - start, 1.0) * events.n_devices
    inside = events.times <= stop
    fits: dict[int, fit.EffectFit] = {}
    for effect in range(events.n_types):
        rows = x[inside & (events.kinds == effect)]
        if rows.shape[0] < fit.MIN_EVENTS:
            continue
        fits[effect] = fit.fit_effect(
            rows,
            comp,
            exposure,
            effect,
            events.n_types,
            _width(events, cfg),
            # a whole-graph search is scored, for the held-out selection, by the pairwise
            # model it starts from (the same links, without the orientation)
            search=cfg.search if cfg.search in fit.SEARCHES else "pairwise",
            penalty=cfg.penalty,
            iterations=cfg.iterations,
            refit_iterations=cfg.refit_iterations,
            strengths=strengths,
            fitted=fitted,
        )
    return fits


def _search_events(
    events: Events, cfg: HawkesConfig, x: fit.Features, end: float | None = None
) -> tuple[dict[int, fit.EffectFit], np.ndarray]:
    """The whole-graph search, then each effect's model refitted with every type linked
    to it (either direction: the correlation stage weighs alarms with the fitted model),
    on the alarms raised up to ``end`` (all by default: the held-out score of the final
    model fits it on the first part of the span)."""
    start = float(events.times[0])
    stop = float(events.times[-1]) if end is None else end
    comp = fit.kernel_compensator(events, cfg.kernel(), start, stop)
    exposure = max(stop - start, 1.0) * events.n_devices
    n, hops = events.n_types, _width(events, cfg)
    inside = events.times <= stop
    scores = FamilyScores(
        {e: x[inside & (events.kinds == e)] for e in range(n)},
        comp,
        exposure,
        n,
        hops,
        cfg.penalty,
        cfg.refit_iterations,
    )
    dag, gains = search_graph(scores, skeleton=cfg.search == "hybrid")
    linked = dag | (gains > 0) if cfg.search == "hybrid" else dag
    strength = np.maximum(gains, gains.T)
    fits: dict[int, fit.EffectFit] = {}
    for effect in range(n):
        if not scores.fitted(effect):
            continue
        causes = [int(c) for c in np.flatnonzero(linked[:, effect])]
        mask = fit.type_columns((effect, *causes), n, hops)
        mu, alpha, loglik = fit.em(
            fit.dense(scores.rows[effect], mask), comp[mask], exposure, cfg.iterations
        )
        full = np.zeros(n * hops)
        full[mask] = alpha
        parents = {c: max(float(strength[c, effect]), 1e-6) for c in causes}
        fits[effect] = fit.EffectFit(parents, mu, full, loglik)
    return fits, dag


def _graph(
    fits: dict[int, fit.EffectFit],
    events: Events,
    types: list[str],
    cfg: HawkesConfig,
    dag: np.ndarray | None = None,
) -> CausalGraph:
    """The graph of ``fits``: ``dag``'s edges, or the fits' parents made acyclic."""
    n, hops = events.n_types, _width(events, cfg)
    strengths = np.zeros((n, n))
    alphas = np.zeros((n, n, hops))
    for effect, model in fits.items():
        alphas[:, effect, :] = model.alpha.reshape(n, hops)
        for cause, strength in model.parents.items():
            strengths[cause, effect] = strength
    # the expected effect alarms one cause alarm triggers, per kernel height
    mass = np.repeat([d for d, _ in cfg.kernel()], events.hops)
    if dag is None:
        edges = _acyclic(strengths, alphas, types, mass)
    else:
        edges = [
            _edge(types, c, e, strengths, alphas, mass)
            for c, e in sorted(zip(*np.nonzero(dag), strict=True), key=lambda p: -strengths[p])
        ]
    return CausalGraph(
        tuple(types),
        tuple(edges),
        method="topological-hawkes-em" if dag is None else f"topological-hawkes-{cfg.search}",
        parameters={
            "decay_seconds": cfg.decay_seconds,
            "window_seconds": cfg.window_seconds,
            "penalty": cfg.penalty,
            "hops": float(events.hops - 1),
            "kernel_scales": float(len(cfg.kernel())),
            "simultaneous": float(cfg.simultaneous),
            **(
                {"same_second_weight": cfg.same_second_weight}
                if cfg.same_second_weight != 1
                else {}
            ),
            # a same-second 2-cycle folds one way only (allo.noc.stages.correlate)
            "ordered_same_second": 1.0,
        },
        background={types[e]: m.mu for e, m in fits.items()},
        self_excitation={types[e]: tuple(float(a) for a in alphas[e, e]) for e in fits},
        excitations=tuple(
            _edge(types, cause, effect, strengths, alphas, mass)
            for cause, effect in zip(*np.nonzero(strengths), strict=True)
        ),
        decays=tuple(cfg.scales),
    )


def _events(alarms: Sequence[Alarm], topology: Topology | None) -> tuple[Events, list[str]]:
    types = _numeric_order(sorted({a.alarm_type for a in alarms}))
    devices = sorted({a.device for a in alarms} | set(topology.devices if topology else ()))
    type_index = {t: i for i, t in enumerate(types)}
    device_index = {d: i for i, d in enumerate(devices)}
    neighbours: list[np.ndarray] | None = None
    if topology is not None:
        neighbours = [
            np.array(sorted(device_index[n] for n in topology.neighbours(d)), dtype=np.int64)
            for d in devices
        ]
    events = Events.of(
        np.array([a.raised_at for a in alarms], dtype=np.float64),
        np.array([type_index[a.alarm_type] for a in alarms], dtype=np.int64),
        np.array([device_index[a.device] for a in alarms], dtype=np.int64),
        len(types),
        len(devices),
        neighbours,
    )
    return events, types


def _acyclic(
    strengths: np.ndarray, alphas: np.ndarray, types: list[str], mass: np.ndarray
) -> list[CausalEdge]:
    """Keep the strongest edges that leave the graph acyclic (a 2-cycle keeps its stronger)."""
    n = len(types)
    reach = np.eye(n, dtype=bool)  # reach[a, b]: a path a -> ... -> b exists
    kept: list[CausalEdge] = []
    pairs = sorted(zip(*np.nonzero(strengths), strict=True), key=lambda p: -strengths[p])
    for cause, effect in pairs:
        if reach[effect, cause]:
            continue
        kept.append(_edge(types, cause, effect, strengths, alphas, mass))
        reach |= np.outer(reach[:, cause], reach[effect, :])
    return kept


def _edge(
    types: list[str],
    cause: int,
    effect: int,
    strengths: np.ndarray,
    alphas: np.ndarray,
    mass: np.ndarray,
) -> CausalEdge:
    return CausalEdge(
        types[cause],
        types[effect],
        float(strengths[cause, effect]),
        float(alphas[cause, effect] @ mass),
        tuple(float(a) for a in alphas[cause, effect]),
    )
