"""Structure search over the whole graph: the skeleton from pairwise tests, the directions
from a DAG hill-climb.

Why two steps. On real alarm data the two halves of the problem want different tools:

- *Which types are linked.* Testing each cause alone against an effect's self-excitation
  (:func:`pairwise_gains`) finds most linked pairs, but it cannot tell a direction: an
  alarm storm makes both ``a -> b`` and ``b -> a`` pay, and 24V alarms often share their
  second, so their order carries little information.
- *Which way each link points.* THP's hill-climbing over whole graphs (Cai et al. 2022:
  add, delete and reverse moves scored by the BIC-penalised likelihood, the graph kept
  acyclic, :func:`hill_climb`) orients better, because one orientation must be
  consistent with all the others, but its conditional tests explain many real links
  away (a sibling or a grandparent already accounts for the effect), so it keeps few.

:func:`orient` joins them: every pair the pairwise tests link is added to the
hill-climbed DAG, pointing the way that DAG orders the two types when it orders them (one
reaches the other), otherwise the way its pairwise gain is larger; pairs are placed
strongest first and a pair that would close a cycle either way is left out. Nothing here
reads a truth graph: the kernel and the penalty are chosen by held-out likelihood
(:class:`allo.noc.causal.HawkesLearner`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from allo.noc.causal_fit import MIN_EVENTS, em


@dataclass(slots=True)
class FamilyScores:
    """BIC score of one effect type's model for a given set of parent types, cached.

    ``rows[e]`` are the feature rows of the type-``e`` alarms (columns ``type * hops +
    hop``), ``comp`` and ``exposure`` their compensator and exposure. Self-excitation is
    always in the model. A parent costs ``penalty * hops * log(n_e) / 2`` nats.
    """

    rows: dict[int, np.ndarray]
    comp: np.ndarray
    exposure: float
    n_types: int
    hops: int
    penalty: float
    iterations: int
    _cache: dict[tuple[int, frozenset[int]], float] = field(default_factory=dict)

    def fitted(self, effect: int) -> bool:
        """Whether ``effect`` has enough alarms to be modelled (else it takes no parent)."""
        return len(self.rows.get(effect, ())) >= MIN_EVENTS

    def cost(self, effect: int) -> float:
        """BIC price of one parent of ``effect`` (all its hops)."""
        return self.penalty * self.hops * float(np.log(max(len(self.rows[effect]), 2))) / 2

    def can_cause(self, cause: int, effect: int) -> bool:
        """Whether any ``cause`` alarm ever precedes an ``effect`` alarm within the kernel."""
        if not self.fitted(effect):
            return False
        block = self.rows[effect][:, cause * self.hops : (cause + 1) * self.hops]
        return bool(block.any())

    def loglik(self, effect: int, parents: frozenset[int]) -> float:
        """Log-likelihood of ``effect``'s alarms with self-excitation and ``parents``."""
        key = (effect, parents)
        if key not in self._cache:
            mask = np.zeros(self.n_types * self.hops, dtype=bool)
            for t in (effect, *parents):
                mask[t * self.hops : (t + 1) * self.hops] = True
            rows = self.rows[effect]
            self._cache[key] = em(rows[:, mask], self.comp[mask], self.exposure, self.iterations)[2]
        return self._cache[key]

    def score(self, effect: int, parents: frozenset[int]) -> float:
        """Penalised log-likelihood (0 for a type too rare to model, which takes no parent)."""
        if not self.fitted(effect):
            return 0.0 if not parents else -np.inf
        return self.loglik(effect, parents) - self.cost(effect) * len(parents)


def pairwise_gains(scores: FamilyScores) -> np.ndarray:
    """``G[c, e]``: nats ``c`` alone adds to ``e``'s model beyond its BIC price (0: none)."""
    n = scores.n_types
    gains = np.zeros((n, n))
    for effect in range(n):
        if not scores.fitted(effect):
            continue
        base = scores.loglik(effect, frozenset())
        for cause in range(n):
            if cause != effect and scores.can_cause(cause, effect):
                gain = scores.loglik(effect, frozenset({cause})) - base
                if gain > scores.cost(effect):
                    gains[cause, effect] = gain
    return gains


def reachability(adjacency: np.ndarray) -> np.ndarray:
    """``R[a, b]``: a directed path leads from ``a`` to ``b`` (every node reaches itself)."""
    reach = adjacency.astype(bool) | np.eye(len(adjacency), dtype=bool)
    for k in range(len(reach)):
        reach |= np.outer(reach[:, k], reach[k, :])
    return reach


@dataclass(frozen=True, slots=True)
class Move:
    """One hill-climb step: ``add``, ``delete`` or ``reverse`` the edge ``cause -> effect``."""

    kind: str
    cause: int
    effect: int
    gain: float


def hill_climb(scores: FamilyScores, max_steps: int = 10_000) -> np.ndarray:
    """THP's greedy search: from the empty graph, apply the best-scoring add, delete or
    reverse move while it raises the total BIC score; the graph stays acyclic.

    The score is a sum over effect types, so a move only re-scores the one or two families
    it touches (and the family scores are cached).
    """
    n = scores.n_types
    adjacency = np.zeros((n, n), dtype=bool)
    parents: list[frozenset[int]] = [frozenset() for _ in range(n)]
    family = [scores.score(e, parents[e]) for e in range(n)]
    for _ in range(max_steps):
        move = _best_move(scores, adjacency, parents, family)
        if move is None:
            break
        c, e = move.cause, move.effect
        if move.kind == "add":
            adjacency[c, e] = True
            parents[e] = parents[e] | {c}
        elif move.kind == "delete":
            adjacency[c, e] = False
            parents[e] = parents[e] - {c}
        else:
            adjacency[c, e], adjacency[e, c] = False, True
            parents[e], parents[c] = parents[e] - {c}, parents[c] | {e}
            family[c] = scores.score(c, parents[c])
        family[e] = scores.score(e, parents[e])
    return adjacency


def _best_move(
    scores: FamilyScores,
    adjacency: np.ndarray,
    parents: list[frozenset[int]],
    family: list[float],
) -> Move | None:
    n = scores.n_types
    reach = reachability(adjacency)
    best: Move | None = None

    def consider(kind: str, c: int, e: int, gain: float) -> None:
        nonlocal best
        if gain > 1e-9 and (best is None or gain > best.gain):
            best = Move(kind, c, e, gain)

    for e in range(n):
        if not scores.fitted(e):
            continue
        for c in range(n):
            if c == e:
                continue
            if adjacency[c, e]:
                drop = scores.score(e, parents[e] - {c}) - family[e]
                consider("delete", c, e, drop)
                if scores.fitted(c) and scores.can_cause(e, c):
                    without = adjacency.copy()
                    without[c, e] = False
                    if not reachability(without)[c, e]:
                        added = scores.score(c, parents[c] | {e}) - family[c]
                        consider("reverse", c, e, drop + added)
            elif not reach[e, c] and scores.can_cause(c, e):
                consider("add", c, e, scores.score(e, parents[e] | {c}) - family[e])
    return best


def orient(gains: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The DAG ``order`` plus every pair ``gains`` links, pointed the way ``order`` ranks it.

    Pairs are placed by decreasing gain (the larger of the two directions). A pair points
    ``a -> b`` when the edges placed so far (``order``'s first) already lead from ``a`` to
    ``b``, else the way its pairwise gain is larger; a pair whose both directions would
    close a cycle is dropped. The result is acyclic.
    """
    n = len(gains)
    linked = (gains > 0) | (gains.T > 0)
    pairs = sorted(
        ((a, b) for a in range(n) for b in range(a + 1, n) if linked[a, b]),
        key=lambda p: (-max(gains[p], gains[p[::-1]]), p),
    )
    adjacency = order.astype(bool).copy()
    reach = reachability(adjacency)
    for a, b in pairs:
        if adjacency[a, b] or adjacency[b, a]:
            continue
        if reach[a, b] != reach[b, a]:
            first = (a, b) if reach[a, b] else (b, a)
        else:
            first = (a, b) if gains[a, b] >= gains[b, a] else (b, a)
        for cause, effect in (first, first[::-1]):
            if not reach[effect, cause]:
                adjacency[cause, effect] = True
                reach |= np.outer(reach[:, cause], reach[effect, :])
                break
    return adjacency


def search_graph(scores: FamilyScores, *, skeleton: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The learned DAG (``M[c, e]``: ``c`` causes ``e``) and the pairwise gains.

    With ``skeleton`` (the default) the DAG is :func:`orient` of the pairwise links by the
    hill-climbed DAG; without, the hill-climbed DAG alone (THP's search as published).
    """
    gains = pairwise_gains(scores)
    climbed = hill_climb(scores)
    return (orient(gains, climbed) if skeleton else climbed), gains
