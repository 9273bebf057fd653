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

from dataclasses import dataclass

import numpy as np

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
) -> np.ndarray:
    """``X[e, i*hops + h]``: decayed sum of earlier type-``i`` alarms at hop ``h`` of ``e``.

    With ``simultaneous``, an alarm stamped at the same second as ``e`` counts with
    ``same_second_weight`` (1: as if it came first; 1/2: the chance that it did when
    both times were rounded down from uniform positions within the second)."""
    times, kinds, where = events.times, events.kinds, events.where
    hops, beta = events.hops, 1.0 / decay
    n = len(times)
    width = events.n_types * hops
    flat = np.zeros(n * width)
    # (index, weight) pairs are pooled and added in a few large bincounts: one bincount
    # per device would sweep the whole ``n * width`` array each time
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
                flat += _pooled_sum(pending, n * width)
                pending, pooled = [], 0
    if pending:
        flat += _pooled_sum(pending, n * width)
    return flat.reshape(n, width)


_POOL = 4_000_000  # pairs held before they are added up (about 100 MB)


def _pooled_sum(pending: list[tuple[np.ndarray, np.ndarray]], size: int) -> np.ndarray:
    index = np.concatenate([i for i, _ in pending])
    weights = np.concatenate([w for _, w in pending])
    return np.bincount(index, weights=weights, minlength=size)


def kernel_features(
    events: Events,
    kernel: tuple[tuple[float, float], ...],
    simultaneous: bool,
    same_second_weight: float = 1.0,
) -> np.ndarray:
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
    return _interleave(blocks, events.n_types, events.hops)


def kernel_compensator(
    events: Events, kernel: tuple[tuple[float, float], ...], start: float, end: float
) -> np.ndarray:
    """:func:`compensator` of :func:`kernel_features`' columns."""
    blocks = [compensator(events, decay, window, start, end) for decay, window in kernel]
    return _interleave(blocks, events.n_types, events.hops)


def _interleave(blocks: list[np.ndarray], n_types: int, hops: int) -> np.ndarray:
    if len(blocks) == 1:
        return blocks[0]
    parts = [b[..., t * hops : (t + 1) * hops] for t in range(n_types) for b in blocks]
    return np.concatenate(parts, axis=-1)


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


def em_each(
    rows: np.ndarray,
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
    block = max(1, _EACH_CELLS // max(len(rows) * hops, 1))
    for start in range(0, len(candidates), block):
        chunk = candidates[start : start + block]
        out[start : start + len(chunk)] = _em_block(
            rows, base, chunk, hops, comp, exposure, iterations
        )
    return out


_EACH_CELLS = 2_000_000  # feature cells of one em_each block (about 16 MB each array)


def _em_block(
    rows: np.ndarray,
    base: np.ndarray,
    candidates: np.ndarray,
    hops: int,
    comp: np.ndarray,
    exposure: float,
    iterations: int,
) -> np.ndarray:
    count = len(rows)
    shared = rows[:, base]  # n x b: the columns every model has
    columns = candidates[:, None] * hops + np.arange(hops)  # m x hops
    own = [rows[:, columns[:, h]] for h in range(hops)]  # hops arrays of n x m
    comp_shared, comp_own = comp[base], comp[columns]
    start = 0.5 * count / (comp_shared.size + hops)
    mu = np.full(len(candidates), 0.5 * count / exposure)
    alpha_shared = np.repeat(
        np.where(shared.any(axis=0), start / comp_shared, 0.0)[:, None], len(candidates), axis=1
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


def fit_effect(
    rows: np.ndarray,
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
) -> EffectFit:
    """Choose the parents of ``effect`` and fit its model with them (self always in).

    Without ``strengths`` each parent's strength is NaN instead of what the model loses
    without it (one more fit per parent): the held-out selection reads only the model."""
    threshold = penalty * np.log(max(len(rows), 2)) / 2 * hops

    def columns(types: set[int]) -> np.ndarray:
        mask = np.zeros(n_types * hops, dtype=bool)
        for t in types:
            mask[t * hops : (t + 1) * hops] = True
        return mask

    def fit(types: set[int], steps: int) -> tuple[float, np.ndarray, float]:
        mask = columns(types)
        mu, alpha, loglik = em(rows[:, mask], comp[mask], exposure, steps)
        full = np.zeros(n_types * hops)
        full[mask] = alpha
        return mu, full, loglik

    present = rows.reshape(len(rows), n_types, hops).any(axis=(0, 2))
    others = [c for c in np.flatnonzero(present).tolist() if c != effect]
    chosen: set[int] = set()
    if search == "pairwise":
        base = fit({effect}, refit_iterations)[2]
        alone = em_each(
            rows,
            columns({effect}),
            np.array(others, dtype=np.int64),
            hops,
            comp,
            exposure,
            refit_iterations,
        )
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
    x: np.ndarray,
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
            total += len(rows) * np.log(rate) - rate * exposure
            continue
        intensity = np.maximum(model.mu + rows @ model.alpha, 1e-300)
        total += float(np.log(intensity).sum() - model.mu * exposure - model.alpha @ comp)
    return total
