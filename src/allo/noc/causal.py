"""Learning which alarm types cause which, from alarm history alone.

The model is a topological Hawkes process, the family THP belongs to (Cai et al., KDD
2022): an alarm of type ``j`` on device ``d`` arrives with intensity

    lambda_j(d, t) = mu_j + sum_i sum_h alpha_ijh * sum_{s: type i, hop(d_s, d) = h, t_s <= t}
                                                     exp(-beta (t - t_s))

where ``h`` is 0 (same device) or 1 (adjacent device, when a topology is given). The
likelihood of each target type separates from the others, so each type is fitted on its
own with the classic EM for Hawkes processes (the branching structure is the latent
variable), its parents being chosen by a likelihood-ratio test with a BIC penalty: a
type ``i`` is kept as a cause of ``j`` when dropping its ``alpha_ij*`` costs more than
``penalty * log(n_j)`` nats per parameter. By default each candidate cause is tested
alone against the self-exciting model of ``j`` (``pairwise``); the conditional test (all
causes in the model, drop one) explains away too much when, as in real networks, many
types fire together, and found fewer true edges on both PCIC sets (see docs/noc.md).
Self-excitation (``i == j``) is always in the model: it absorbs the burstiness of each
device so that it is not mistaken for a cause.
The kept edges are finally made acyclic, strongest first.

Why not THP's own search: hill-climbing over whole graphs refits every candidate graph;
the per-target decomposition gives the same kind of answer in seconds on CPU. Only numpy
is needed and nothing is downloaded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from allo.domain.alarms import Alarm
from allo.errors import CorruptFileError, InvalidInputError
from allo.noc.topology import Topology


@dataclass(frozen=True, slots=True)
class CausalEdge:
    """``cause`` alarms tend to be followed by ``effect`` alarms nearby; ``strength`` in nats."""

    cause: str
    effect: str
    strength: float
    excitation: float  # expected effect alarms triggered by one cause alarm


@dataclass(frozen=True, slots=True)
class CausalGraph:
    """A directed acyclic graph between alarm types, as learned (or written by an expert)."""

    types: tuple[str, ...]
    edges: tuple[CausalEdge, ...]
    method: str = "topological-hawkes-em"
    parameters: dict[str, float] = field(default_factory=dict)

    def parents(self) -> dict[str, dict[str, float]]:
        """For each effect type, its cause types and their strength."""
        result: dict[str, dict[str, float]] = {}
        for edge in self.edges:
            result.setdefault(edge.effect, {})[edge.cause] = edge.strength
        return result

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
        return {
            "method": self.method,
            "parameters": self.parameters,
            "types": list(self.types),
            "edges": [
                {
                    "cause": e.cause,
                    "effect": e.effect,
                    "strength": round(e.strength, 3),
                    "excitation": round(e.excitation, 5),
                }
                for e in self.edges
            ],
        }

    def save(self, path: Path) -> None:
        """Write the graph as JSON (``.npy`` writes the bare adjacency matrix instead)."""
        if path.suffix.lower() == ".npy":
            np.save(path, self.matrix(_numeric_order(self.types)))
            return
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> CausalGraph:
        """Read a graph written by :meth:`save` (JSON) or an adjacency matrix (``.npy``)."""
        if not path.is_file():
            raise InvalidInputError(f"causal graph {path} not found: run `allo noc learn` first")
        try:
            if path.suffix.lower() == ".npy":
                return cls.from_matrix(np.load(path, allow_pickle=False))
            data = json.loads(path.read_text(encoding="utf-8"))
            edges = tuple(
                CausalEdge(
                    str(e["cause"]),
                    str(e["effect"]),
                    float(e.get("strength", 1.0)),
                    float(e.get("excitation", 0.0)),
                )
                for e in data["edges"]
            )
            return cls(
                tuple(str(t) for t in data.get("types", [])),
                edges,
                str(data.get("method", "file")),
                dict(data.get("parameters", {})),
            )
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise CorruptFileError(f"cannot read causal graph {path}: {exc}") from exc


def _numeric_order(types: Sequence[str]) -> list[str]:
    try:
        return [str(v) for v in sorted(int(t) for t in types)]
    except ValueError:
        return sorted(types)


@dataclass(frozen=True, slots=True)
class HawkesConfig:
    """Settings of the learner; defaults were set once from the model, not from any truth."""

    decay_seconds: float = 300.0  # kernel time constant (1 / beta)
    window_seconds: float = 1800.0  # kernel truncation, about 6 time constants
    penalty: float = 1.0  # BIC multiplier: keep an edge if LR/2 > penalty * log(n) * params
    iterations: int = 150
    refit_iterations: int = 40
    simultaneous: bool = True
    pairwise: bool = True  # test each cause alone against self-excitation (see module doc)


class HawkesLearner:
    """Learns a :class:`CausalGraph` from alarms with a topological Hawkes process."""

    def __init__(self, config: HawkesConfig | None = None) -> None:
        self.config = config or HawkesConfig()
        self.seconds = 0.0

    def learn(self, alarms: Sequence[Alarm], topology: Topology | None = None) -> CausalGraph:
        """Fit on ``alarms`` (any order); ``topology`` adds the adjacent-device kernel."""
        started = time.perf_counter()
        types = _numeric_order(sorted({a.alarm_type for a in alarms}))
        devices = sorted({a.device for a in alarms} | set(topology.devices if topology else ()))
        type_index = {t: i for i, t in enumerate(types)}
        device_index = {d: i for i, d in enumerate(devices)}
        times = np.array([a.raised_at for a in alarms], dtype=np.float64)
        kinds = np.array([type_index[a.alarm_type] for a in alarms], dtype=np.int64)
        where = np.array([device_index[a.device] for a in alarms], dtype=np.int64)
        neighbours: list[np.ndarray] | None = None
        if topology is not None:
            neighbours = [
                np.array(sorted(device_index[n] for n in topology.neighbours(d)), dtype=np.int64)
                for d in devices
            ]
        strengths, excitation = self.fit_arrays(
            times, kinds, where, len(types), len(devices), neighbours
        )
        edges = _acyclic(strengths, excitation, types)
        self.seconds = time.perf_counter() - started
        cfg = self.config
        return CausalGraph(
            tuple(types),
            tuple(edges),
            parameters={
                "decay_seconds": cfg.decay_seconds,
                "window_seconds": cfg.window_seconds,
                "penalty": cfg.penalty,
                "hops": 1.0 if topology is not None else 0.0,
            },
        )

    # --- numerics ------------------------------------------------------------------------

    def fit_arrays(
        self,
        times: np.ndarray,
        kinds: np.ndarray,
        where: np.ndarray,
        n_types: int,
        n_devices: int,
        neighbours: list[np.ndarray] | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Likelihood-ratio strength and excitation of every (cause, effect) pair."""
        if len(times) == 0:
            return np.zeros((n_types, n_types)), np.zeros((n_types, n_types))
        order = np.argsort(times, kind="stable")
        times, kinds, where = times[order], kinds[order], where[order]
        hops = 1 if neighbours is None else 2
        features = self._features(times, kinds, where, n_types, n_devices, neighbours, hops)
        compensator = self._compensator(times, kinds, where, n_types, neighbours, hops)
        span = max(float(times[-1] - times[0]), 1.0)
        exposure = span * n_devices
        strengths = np.zeros((n_types, n_types))
        excitation = np.zeros((n_types, n_types))
        for effect in range(n_types):
            rows = features[kinds == effect]
            count = len(rows)
            if count < 5:
                continue
            mu, alpha, full = self._em(
                rows, compensator, exposure, None, None, self.config.iterations
            )
            threshold = self.config.penalty * np.log(count) * hops
            for cause in range(n_types):
                if cause == effect:
                    continue
                if self.config.pairwise:
                    own = np.zeros(len(alpha), dtype=bool)
                    own[effect * hops : (effect + 1) * hops] = True
                    both = own.copy()
                    both[cause * hops : (cause + 1) * hops] = True
                    _, a2, l2 = self._em(
                        rows[:, both],
                        compensator[both],
                        exposure,
                        None,
                        None,
                        self.config.refit_iterations,
                    )
                    _, _, l1 = self._em(
                        rows[:, own],
                        compensator[own],
                        exposure,
                        None,
                        None,
                        self.config.refit_iterations,
                    )
                    if l2 - l1 > threshold:
                        strengths[cause, effect] = l2 - l1
                        excitation[cause, effect] = float(a2.sum())
                    continue
                keep = np.ones(len(alpha), dtype=bool)
                keep[cause * hops : (cause + 1) * hops] = False
                if not alpha[~keep].any():
                    continue
                _, _, reduced = self._em(
                    rows[:, keep],
                    compensator[keep],
                    exposure,
                    mu,
                    alpha[keep],
                    self.config.refit_iterations,
                )
                gain = full - reduced  # half the likelihood-ratio statistic
                if gain > threshold:
                    strengths[cause, effect] = gain
                    excitation[cause, effect] = float(
                        alpha[cause * hops : (cause + 1) * hops].sum()
                    )
        return strengths, excitation

    def _features(
        self,
        times: np.ndarray,
        kinds: np.ndarray,
        where: np.ndarray,
        n_types: int,
        n_devices: int,
        neighbours: list[np.ndarray] | None,
        hops: int,
    ) -> np.ndarray:
        """``X[e, i*hops + h]``: decayed sum of earlier type-``i`` alarms at hop ``h`` of ``e``."""
        beta = 1.0 / self.config.decay_seconds
        window = self.config.window_seconds
        n = len(times)
        width = n_types * hops
        flat = np.zeros(n * width)
        by_device = [np.flatnonzero(where == d) for d in range(n_devices)]
        for device in range(n_devices):
            targets = by_device[device]
            if len(targets) == 0:
                continue
            groups = [by_device[device]]
            if neighbours is not None:
                near = neighbours[device]
                groups.append(
                    np.concatenate([by_device[d] for d in near])
                    if len(near)
                    else np.zeros(0, dtype=np.int64)
                )
            for hop, sources in enumerate(groups):
                if len(sources) == 0:
                    continue
                sources = np.sort(sources)  # indices are in time order
                source_times = times[sources]
                lo = np.searchsorted(source_times, times[targets] - window, side="left")
                hi = np.searchsorted(
                    source_times,
                    times[targets],
                    side="right" if self.config.simultaneous else "left",
                )
                counts = hi - lo
                total = int(counts.sum())
                if total == 0:
                    continue
                starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
                picked = sources[np.arange(total) + starts]
                target = np.repeat(targets, counts)
                if hop == 0:
                    mask = picked != target
                    picked, target = picked[mask], target[mask]
                weight = np.exp(-beta * (times[target] - times[picked]))
                index = target * width + kinds[picked] * hops + hop
                flat += np.bincount(index, weights=weight, minlength=n * width)
        return flat.reshape(n, width)

    def _compensator(
        self,
        times: np.ndarray,
        kinds: np.ndarray,
        where: np.ndarray,
        n_types: int,
        neighbours: list[np.ndarray] | None,
        hops: int,
    ) -> np.ndarray:
        """Integral of each feature over all devices and the whole span."""
        beta = 1.0 / self.config.decay_seconds
        horizon = np.minimum(self.config.window_seconds, times[-1] - times)
        mass = (1.0 - np.exp(-beta * horizon)) / beta
        out = np.zeros(n_types * hops)
        out[0::hops] = np.bincount(kinds, weights=mass, minlength=n_types)
        if neighbours is not None:
            degree = np.array([len(n) for n in neighbours], dtype=np.float64)[where]
            out[1::hops] = np.bincount(kinds, weights=mass * degree, minlength=n_types)
        return np.maximum(out, 1e-9)

    @staticmethod
    def _em(
        rows: np.ndarray,
        compensator: np.ndarray,
        exposure: float,
        mu0: float | None,
        alpha0: np.ndarray | None,
        iterations: int,
    ) -> tuple[float, np.ndarray, float]:
        """EM for one target type: background rate, excitations and the log-likelihood."""
        count = len(rows)
        mu = mu0 if mu0 is not None else 0.5 * count / exposure
        alpha = (
            alpha0.copy()
            if alpha0 is not None
            else np.where(rows.any(axis=0), 0.5 * count / (compensator * rows.shape[1]), 0.0)
        )
        for _ in range(iterations):
            intensity = mu + rows @ alpha
            inverse = 1.0 / intensity
            mu = max(mu * inverse.sum() / exposure, 1e-12)
            alpha = alpha * (rows.T @ inverse) / compensator
        intensity = mu + rows @ alpha
        loglik = float(np.log(intensity).sum() - mu * exposure - alpha @ compensator)
        return mu, alpha, loglik


def _acyclic(strengths: np.ndarray, excitation: np.ndarray, types: list[str]) -> list[CausalEdge]:
    """Keep the strongest edges that leave the graph acyclic (a 2-cycle keeps its stronger)."""
    n = len(types)
    reach = np.eye(n, dtype=bool)  # reach[a, b]: a path a -> ... -> b exists
    kept: list[CausalEdge] = []
    pairs = sorted(zip(*np.nonzero(strengths), strict=True), key=lambda p: -strengths[p])
    for cause, effect in pairs:
        if reach[effect, cause]:
            continue
        kept.append(
            CausalEdge(
                types[cause],
                types[effect],
                float(strengths[cause, effect]),
                float(excitation[cause, effect]),
            )
        )
        reach |= np.outer(reach[:, cause], reach[effect, :])
    return kept
