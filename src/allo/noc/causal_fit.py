"""The numerics of the topological Hawkes learner: features, EM, parent search, held-out fit.

An alarm of type ``j`` on device ``d`` arrives with intensity

    lambda_j(d, t) = mu_j + sum_i sum_h alpha_ijh * sum_{s: type i, hop(d_s, d) = h, t_s <= t}
                                                     exp(-(t - t_s) / decay)

where ``h`` is 0 (same device) or 1 (adjacent device, when a topology is given). The
log-likelihood separates by effect type, so each type's parents can be searched on their
own (THP's hill-climbing, Cai et al. 2022, restricted to one target at a time, which is
exact when no acyclicity constraint couples the targets; the search over whole acyclic
graphs is in :mod:`allo.noc.causal_search`). Three per-type searches are offered:

- ``forward``: hill-climbing on BIC, starting from self-excitation alone,
  adding the cause that gains most log-likelihood and dropping any that no longer pays
  for its parameters, until nothing changes; each kept parent is then scored by what the
  final model loses without it.
- ``pairwise``: each cause alone against self-excitation.
- ``conditional``: all causes in, drop one.

A cause is worth keeping when it gains more than ``penalty * log(n_j) / 2`` nats per
parameter (BIC with ``penalty == 1``). :func:`heldout_loglik` fits on the first part of
the span and scores the rest, which is how variants are compared without any truth.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np
from scipy import sparse

Features: TypeAlias = sparse.csr_array  # rows: alarms; columns: cause type * hops + hop
MIN_EVENTS = 5  # fewer alarms of a type: no excitation fitted (a Poisson rate only)
SEARCHES = ("pairwise", "forward", "conditional")  # the per-type parent searches


@dataclass(frozen=True, slots=True)
class Events:
    """Alarms as sorted arrays: time, type index and device index of each."""

    times: np.ndarray
    kinds: np.ndarray
    where: np.ndarray
    n_types: int
    n_devices: int
    neighbours: list[np.ndarray] | None

    @property
    def hops(self) -> int:
        return 1 if self.neighbours is None else 2

    @classmethod
    def of(
        cls,
        times: np.ndarray,
        kinds: np.ndarray,
        where: np.ndarray,
        n_types: int,
        n_devices: int,
        neighbours: list[np.ndarray] | None,
    ) -> Events:
        order = np.argsort(times, kind="stable")
        return cls(times[order], kinds[order], where[order], n_types, n_devices, neighbours)


@dataclass(slots=True)
class EffectFit:
    """The fitted model of one effect type: ``alpha`` has ``n_types * hops`` entries."""

    parents: dict[int, float]  # cause type -> strength (nats the model loses without it)
    mu: float
    alpha: np.ndarray
    loglik: float


def features(
    events: Events,
    decay: float,
    window: float,
    simultaneous: bool,
    same_second_weight: float = 1.0,
) -> Features:
    """``X[e, i*hops + h]``: decayed sum of earlier type-``i`` alarms at hop ``h`` of ``e``.

    With ``simultaneous``, an alarm stamped at the same second as ``e`` counts with
    ``same_second_weight`` (1: as if it came first; 1/2: the chance that it did when
    both times were rounded down from uniform positions within the second).

    Sparse: an alarm has earlier alarms of only a few types within the window near it,
    and a dense matrix of every alarm by every type would need gigabytes once a network
    has hundreds of types."""
    times, kinds, where = events.times, events.kinds, events.where
    hops, beta = events.hops, 1.0 / decay
    n = len(times)
    width = events.n_types * hops
    sums = _CellSums(n, width)
    # (index, weight) pairs are pooled and summed a few million at a time
    pending: list[tuple[np.ndarray, np.ndarray]] = []
    pooled = 0
    by_device = [np.flatnonzero(where == d) for d in range(events.n_devices)]
    for device in range(events.n_devices):
        targets = by_device[device]
        if len(targets) == 0:
            continue
        groups = [targets]
        if events.neighbours is not None:
            near = events.neighbours[device]
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
                source_times, times[targets], side="right" if simultaneous else "left"
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
            if same_second_weight != 1.0:
                weight[times[target] == times[picked]] *= same_second_weight
            pending.append((target * width + kinds[picked] * hops + hop, weight))
            pooled += len(weight)
            if pooled > _POOL:
                sums.add(pending)
                pending, pooled = [], 0
    if pending:
        sums.add(pending)
    return sums.matrix()


_POOL = 4_000_000  # pairs held before they are summed (about 100 MB)
_DENSE_CELLS = 16_000_000  # feature matrices this small are summed densely (128 MB)


class _CellSums:
    """Adds up (cell, weight) pairs into an ``n x width`` feature matrix.

    While the matrix is small, in a dense buffer (one bincount per pool: the fastest);
    beyond, sparse (sorting each pool's cells), since a dense matrix of every alarm by
    every type would need gigabytes on a network with hundreds of types. Either way the
    weights of a cell are added in the order they came, so both give the same values."""

    def __init__(self, n: int, width: int) -> None:
        self.n, self.width = n, width
        self.flat = np.zeros(n * width) if n * width <= _DENSE_CELLS else None
        self.sparse = sparse.csr_array((n, width))

    def add(self, pending: list[tuple[np.ndarray, np.ndarray]]) -> None:
        index = np.concatenate([i for i, _ in pending])
        weights = np.concatenate([w for _, w in pending])
        if self.flat is not None:
            self.flat += np.bincount(index, weights=weights, minlength=len(self.flat))
            return
        cells, slot = np.unique(index, return_inverse=True)
        sums = np.bincount(slot, weights=weights, minlength=len(cells))
        indptr = np.searchsorted(cells // self.width, np.arange(self.n + 1), side="left")
        part = sparse.csr_array((sums, cells % self.width, indptr), shape=(self.n, self.width))
        self.sparse = self.sparse + part

    def matrix(self) -> Features:
        if self.flat is not None:
            return sparse.csr_array(self.flat.reshape(self.n, self.width))
        return self.sparse  # sums of sparse matrices keep no zero (a same-second weight of 0)


def dense(rows: Features, columns: np.ndarray) -> np.ndarray:
    """The ``columns`` (a mask or indices) of feature ``rows`` as a dense array: the few
    columns of one model, which its EM sweeps many times."""
    picked: np.ndarray = rows[:, columns].toarray()
    return picked


def present(rows: Features) -> np.ndarray:
    """Which columns of ``rows`` hold any nonzero value."""
    return np.bincount(rows.indices, minlength=rows.shape[1]) > 0


def kernel_features(
    events: Events,
    kernel: tuple[tuple[float, float], ...],
    simultaneous: bool,
    same_second_weight: float = 1.0,
) -> Features:
    """:func:`features` for a sum of exponentials (``kernel``: time constant and truncation
    of each), laid out so that a type keeps its columns together: column
    ``type * K * hops + k * hops + hop`` (one exponential: the layout of :func:`features`).

    Why several time constants: alarm lags span seconds to an hour (on 24V a third of
    the alarms follow another type on the same device within 2 s, most of the rest
    within 10 minutes); one exponential must average them, a ladder of time constants
    fits each pair's own mix (see docs/noc.md, held-out likelihood)."""
    blocks = [
        features(events, decay, window, simultaneous, same_second_weight)
        for decay, window in kernel
    ]
    if len(blocks) == 1:
        return blocks[0]
    order = _interleaved(len(blocks), events.n_types, events.hops)
    stacked: Features = sparse.hstack(blocks, format="csr")[:, order]
    return stacked


def kernel_compensator(
    events: Events, kernel: tuple[tuple[float, float], ...], start: float, end: float
) -> np.ndarray:
    """:func:`compensator` of :func:`kernel_features`' columns."""
    blocks = [compensator(events, decay, window, start, end) for decay, window in kernel]
    laid: np.ndarray = np.concatenate(blocks)[
        _interleaved(len(blocks), events.n_types, events.hops)
    ]
    return laid


def _interleaved(scales: int, n_types: int, hops: int) -> np.ndarray:
    """Where each column of the interleaved layout sits in the blocks laid side by side."""
    width = n_types * hops
    return np.array(
        [
            block * width + kind * hops + hop
            for kind in range(n_types)
            for block in range(scales)
            for hop in range(hops)
        ],
        dtype=np.int64,
    )


def compensator(
    events: Events, decay: float, window: float, start: float, end: float
) -> np.ndarray:
    """Integral over ``[start, end]`` and all devices of each feature column."""
    beta = 1.0 / decay
    hops = events.hops
    lo = np.clip(start - events.times, 0.0, window)
    hi = np.clip(end - events.times, 0.0, window)
    mass = (np.exp(-beta * lo) - np.exp(-beta * hi)) / beta
    out = np.zeros(events.n_types * hops)
    out[0::hops] = np.bincount(events.kinds, weights=mass, minlength=events.n_types)
    if events.neighbours is not None:
        degree = np.array([len(n) for n in events.neighbours], dtype=np.float64)[events.where]
        out[1::hops] = np.bincount(events.kinds, weights=mass * degree, minlength=events.n_types)
    return np.maximum(out, 1e-9)


def em(
    rows: np.ndarray,
    comp: np.ndarray,
    exposure: float,
    iterations: int,
    mu0: float | None = None,
    alpha0: np.ndarray | None = None,
) -> tuple[float, np.ndarray, float]:
    """EM for one effect type: background rate, excitations and the log-likelihood."""
    count = len(rows)
    mu = mu0 if mu0 is not None else 0.5 * count / exposure
    alpha = (
        alpha0.copy()
        if alpha0 is not None
        else np.where(rows.any(axis=0), 0.5 * count / (comp * max(rows.shape[1], 1)), 0.0)
    )
    for _ in range(iterations):
        inverse = 1.0 / (mu + rows @ alpha)
        mu = max(mu * inverse.sum() / exposure, 1e-12)
        alpha = alpha * (rows.T @ inverse) / comp
    loglik = float(np.log(mu + rows @ alpha).sum() - mu * exposure - alpha @ comp)
    return mu, alpha, loglik


def type_columns(types: Iterable[int], n_types: int, hops: int) -> np.ndarray:
    """The feature columns of ``types`` (all their hops and time constants), as a mask."""
    mask = np.zeros(n_types * hops, dtype=bool)
    for t in types:
        mask[t * hops : (t + 1) * hops] = True
    return mask


def em_each(
    rows: Features,
    base: np.ndarray,
    candidates: np.ndarray,
    hops: int,
    comp: np.ndarray,
    exposure: float,
    iterations: int,
) -> np.ndarray:
    """Log-likelihood of the model ``base`` columns plus each candidate cause, fitted at once.

    Entry ``k`` equals ``em(rows[:, base | columns of candidates[k]], ...)[2]`` up to
    rounding. Why: the pairwise tests and the hill-climb's add moves fit one such model per
    candidate cause, hundreds per effect type when a network has hundreds of alarm types;
    one :func:`em` call each is mostly Python overhead (it made learning grow with the
    square of the number of types). Here every candidate's EM runs in the same numpy
    sweep, in blocks that bound the memory.
    """
    out = np.empty(len(candidates))
    block = max(1, _EACH_CELLS // max(rows.shape[0] * hops, 1))
    shared = dense(rows, base)  # n x b: the columns every model has
    for start in range(0, len(candidates), block):
        chunk = candidates[start : start + block]
        columns = chunk[:, None] * hops + np.arange(hops)  # m x hops
        own = [dense(rows, columns[:, h]) for h in range(hops)]  # hops arrays of n x m
        out[start : start + len(chunk)] = _em_block(
            shared, own, comp[base], comp[columns], exposure, iterations
        )
    return out


_EACH_CELLS = 2_000_000  # feature cells of one em_each block (about 16 MB each array)


def _em_block(
    shared: np.ndarray,
    own: list[np.ndarray],
    comp_shared: np.ndarray,
    comp_own: np.ndarray,
    exposure: float,
    iterations: int,
) -> np.ndarray:
    """:func:`em` of ``m`` models at once: columns ``shared`` (n x b) in all of them, and
    model ``k``'s own column ``own[h][:, k]`` per hop ``h``; one log-likelihood each."""
    count, hops = len(shared), len(own)
    start = 0.5 * count / (comp_shared.size + hops)
    mu = np.full(len(comp_own), 0.5 * count / exposure)
    alpha_shared = np.repeat(
        np.where(shared.any(axis=0), start / comp_shared, 0.0)[:, None], len(comp_own), axis=1
    )  # b x m
    alpha_own = np.where(
        np.stack([o.any(axis=0) for o in own], axis=1), start / comp_own, 0.0
    )  # m x hops

    def intensity() -> np.ndarray:
        total: np.ndarray = mu + shared @ alpha_shared
        for h in range(hops):
            total += own[h] * alpha_own[:, h]
        return total

    for _ in range(iterations):
        inverse = 1.0 / intensity()
        mu = np.maximum(mu * inverse.sum(axis=0) / exposure, 1e-12)
        alpha_shared = alpha_shared * (shared.T @ inverse) / comp_shared[:, None]
        alpha_own = (
            alpha_own
            * np.stack([(own[h] * inverse).sum(axis=0) for h in range(hops)], axis=1)
            / comp_own
        )
    loglik: np.ndarray = (
        np.log(intensity()).sum(axis=0)
        - mu * exposure
        - comp_shared @ alpha_shared
        - (alpha_own * comp_own).sum(axis=1)
    )
    return loglik


@dataclass(slots=True)
class FitMemo:
    """Models already fitted by :func:`fit_effect`, by effect type, kept for later calls on
    the same feature rows and iterations (only the penalty may differ)."""

    models: dict[tuple[int, frozenset[int], int], tuple[float, np.ndarray, float]] = field(
        default_factory=dict
    )
    alone: dict[int, np.ndarray] = field(default_factory=dict)  # each cause with self


def fit_effect(
    rows: Features,
    comp: np.ndarray,
    exposure: float,
    effect: int,
    n_types: int,
    hops: int,
    *,
    search: str,
    penalty: float,
    iterations: int,
    refit_iterations: int,
    strengths: bool = True,
    fitted: FitMemo | None = None,
) -> EffectFit:
    """Choose the parents of ``effect`` and fit its model with them (self always in).

    Without ``strengths`` each parent's strength is NaN instead of what the model loses
    without it (one more fit per parent): the held-out selection reads only the model.
    ``fitted`` keeps the fits of calls on the same rows: the held-out selection fits each
    kernel once per penalty, and only the threshold differs."""
    memo = FitMemo() if fitted is None else fitted
    threshold = penalty * np.log(max(rows.shape[0], 2)) / 2 * hops

    def columns(types: set[int]) -> np.ndarray:
        return type_columns(types, n_types, hops)

    def fit(types: set[int], steps: int) -> tuple[float, np.ndarray, float]:
        key = (effect, frozenset(types), steps)
        if key not in memo.models:
            mask = columns(types)
            mu, alpha, loglik = em(dense(rows, mask), comp[mask], exposure, steps)
            full = np.zeros(n_types * hops)
            full[mask] = alpha
            memo.models[key] = (mu, full, loglik)
        return memo.models[key]

    seen = present(rows).reshape(n_types, hops).any(axis=1)
    others = [c for c in np.flatnonzero(seen).tolist() if c != effect]
    chosen: set[int] = set()
    if search == "pairwise":
        base = fit({effect}, refit_iterations)[2]
        if effect not in memo.alone:
            memo.alone[effect] = em_each(
                rows,
                columns({effect}),
                np.array(others, dtype=np.int64),
                hops,
                comp,
                exposure,
                refit_iterations,
            )
        alone = memo.alone[effect]
        chosen = {c for c, value in zip(others, alone, strict=True) if value - base > threshold}
    elif search == "conditional":
        full = fit({effect, *others}, iterations)[2]
        chosen = {
            c
            for c in others
            if full - fit({effect, *others} - {c}, refit_iterations)[2] > threshold
        }
    elif search == "forward":
        current = fit({effect}, refit_iterations)[2]
        while True:
            candidates = [c for c in others if c not in chosen]
            added = em_each(
                rows,
                columns({effect, *chosen}),
                np.array(candidates, dtype=np.int64),
                hops,
                comp,
                exposure,
                refit_iterations,
            )
            gains = {c: value - current for c, value in zip(candidates, added, strict=True)}
            best = max(gains, key=gains.__getitem__, default=None)
            if best is None or gains[best] <= threshold:
                break
            chosen.add(best)
            current += gains[best]
            for c in sorted(chosen - {best}):  # backward step: drop what no longer pays
                reduced = fit({effect, *chosen} - {c}, refit_iterations)[2]
                if current - reduced <= threshold:
                    chosen.discard(c)
                    current = reduced
    else:
        raise ValueError(f"unknown parent search {search!r}: pairwise, conditional or forward")
    mu, alpha, loglik = fit({effect, *chosen}, iterations)
    parents = dict.fromkeys(chosen, float("nan"))
    for c in chosen if strengths else ():
        drop = loglik - fit({effect, *chosen} - {c}, refit_iterations)[2]
        parents[c] = max(drop, 1e-6)
    return EffectFit(parents, mu, alpha, loglik)


def heldout_score(
    fits: dict[int, EffectFit],
    events: Events,
    x: Features,
    test: np.ndarray,
    comp: np.ndarray,
    exposure: float,
    rates: np.ndarray,
) -> float:
    """Log-likelihood of the ``test`` alarms under ``fits`` (a Poisson ``rates`` otherwise)."""
    total = 0.0
    for effect in range(events.n_types):
        rows = x[test & (events.kinds == effect)]
        model = fits.get(effect)
        if model is None:
            rate = max(float(rates[effect]), 1e-12)
            total += rows.shape[0] * np.log(rate) - rate * exposure
            continue
        intensity = np.maximum(model.mu + rows @ model.alpha, 1e-300)
        total += float(np.log(intensity).sum() - model.mu * exposure - model.alpha @ comp)
    return total
