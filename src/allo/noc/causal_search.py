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

from allo.noc.causal_fit import (
    MIN_EVENTS,
    Features,
    dense,
    em,
    em_each,
    present,
    type_columns,
)


@dataclass(slots=True)
class FamilyScores:
    """BIC score of one effect type's model for a given set of parent types, cached.

    ``rows[e]`` are the feature rows of the type-``e`` alarms (columns ``type * hops +
    hop``), ``comp`` and ``exposure`` their compensator and exposure. Self-excitation is
    always in the model. A parent costs ``penalty * hops * log(n_e) / 2`` nats.
    """

    rows: dict[int, Features]
    comp: np.ndarray
    exposure: float
    n_types: int
    hops: int
    penalty: float
    iterations: int
    _cache: dict[tuple[int, frozenset[int]], float] = field(default_factory=dict)

    def fitted(self, effect: int) -> bool:
        """Whether ``effect`` has enough alarms to be modelled (else it takes no parent)."""
        return effect in self.rows and self.rows[effect].shape[0] >= MIN_EVENTS

    def cost(self, effect: int) -> float:
        """BIC price of one parent of ``effect`` (all its hops)."""
        return self.penalty * self.hops * float(np.log(max(self.rows[effect].shape[0], 2))) / 2

    def loglik(self, effect: int, parents: frozenset[int]) -> float:
        """Log-likelihood of ``effect``'s alarms with self-excitation and ``parents``."""
        key = (effect, parents)
        if key not in self._cache:
            mask = self._mask(effect, parents)
            rows = self.rows[effect]
            self._cache[key] = em(
                dense(rows, mask), self.comp[mask], self.exposure, self.iterations
            )[2]
        return self._cache[key]

    def score(self, effect: int, parents: frozenset[int]) -> float:
        """Penalised log-likelihood (0 for a type too rare to model, which takes no parent)."""
        if not self.fitted(effect):
            return 0.0 if not parents else -np.inf
        return self.loglik(effect, parents) - self.cost(effect) * len(parents)

    def scores_adding(
        self, effect: int, parents: frozenset[int], candidates: np.ndarray
    ) -> np.ndarray:
        """:meth:`score` of ``parents`` plus each candidate cause in turn, fitted together
        (:func:`allo.noc.causal_fit.em_each`): the searches ask for every candidate of a
        family at once, and one fit each would cost mostly Python overhead."""
        if not self.fitted(effect):
            return np.full(len(candidates), -np.inf)
        keys = [(effect, parents | {int(c)}) for c in candidates]
        missing = np.array(
            [c for c, key in zip(candidates, keys, strict=True) if key not in self._cache],
            dtype=np.int64,
        )
        if len(missing):
            fitted = em_each(
                self.rows[effect],
                self._mask(effect, parents),
                missing,
                self.hops,
                self.comp,
                self.exposure,
                self.iterations,
            )
            for c, value in zip(missing.tolist(), fitted.tolist(), strict=True):
                self._cache[(effect, parents | {c})] = value
        price = self.cost(effect) * (len(parents) + 1)
        return np.array([self._cache[key] for key in keys]) - price

    def possible(self) -> np.ndarray:
        """``P[c, e]``: some ``c`` alarm precedes an ``e`` alarm within the kernel (so ``c``
        can enter ``e``'s model) and ``e`` has enough alarms to be modelled; ``c != e``."""
        n = self.n_types
        table = np.zeros((n, n), dtype=bool)
        for effect, rows in self.rows.items():
            if self.fitted(effect):
                table[:, effect] = present(rows).reshape(n, self.hops).any(axis=1)
        np.fill_diagonal(table, False)
        return table

    def _mask(self, effect: int, parents: frozenset[int]) -> np.ndarray:
        return type_columns((effect, *parents), self.n_types, self.hops)


def pairwise_gains(scores: FamilyScores) -> np.ndarray:
    """``G[c, e]``: nats ``c`` alone adds to ``e``'s model beyond its BIC price (0: none)."""
    n = scores.n_types
    gains = np.zeros((n, n))
    possible = scores.possible()
    for effect in range(n):
        causes = np.flatnonzero(possible[:, effect])
        if not scores.fitted(effect) or not len(causes):
            continue
        gain = scores.scores_adding(effect, frozenset(), causes) - scores.score(effect, frozenset())
        gains[causes, effect] = np.where(gain > 0, gain + scores.cost(effect), 0.0)
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

    The score is a sum over effect types, so a move changes the gains of the moves into
    the one or two families it touches only: the gains are kept in matrices and only
    those families' columns are fitted again (all their candidates at once), and the
    acyclicity of every move is read from the reachability matrix.
    """
    n = scores.n_types
    adjacency = np.zeros((n, n), dtype=bool)
    parents: list[frozenset[int]] = [frozenset() for _ in range(n)]
    family = [scores.score(e, parents[e]) for e in range(n)]
    possible = scores.possible()
    gains = _MoveGains(np.full((n, n), -np.inf), np.full((n, n), -np.inf))
    for effect in range(n):
        gains.refresh(scores, effect, parents, family, possible, adjacency)
    reach = reachability(adjacency)
    for _ in range(max_steps):
        move = gains.best(adjacency, reach)
        if move is None:
            break
        c, e = move.cause, move.effect
        if move.kind == "add":
            adjacency[c, e] = True
            parents[e] = parents[e] | {c}
            reach |= np.outer(reach[:, c], reach[e, :])
        else:
            adjacency[c, e] = False
            parents[e] = parents[e] - {c}
            if move.kind == "reverse":
                adjacency[e, c] = True
                parents[c] = parents[c] | {e}
                family[c] = scores.score(c, parents[c])
                gains.refresh(scores, c, parents, family, possible, adjacency)
            reach = reachability(adjacency)
        family[e] = scores.score(e, parents[e])
        gains.refresh(scores, e, parents, family, possible, adjacency)
    return adjacency


@dataclass(slots=True)
class _MoveGains:
    """``add[c, e]``: what adding ``c`` to family ``e`` gains (for a pair not linked
    ``c -> e``); ``delete[c, e]``: what removing the edge ``c -> e`` gains."""

    add: np.ndarray
    delete: np.ndarray

    def refresh(
        self,
        scores: FamilyScores,
        effect: int,
        parents: list[frozenset[int]],
        family: list[float],
        possible: np.ndarray,
        adjacency: np.ndarray,
    ) -> None:
        """Recompute family ``effect``'s column after its parents changed."""
        self.add[:, effect] = -np.inf
        self.delete[:, effect] = -np.inf
        if not scores.fitted(effect):
            return
        candidates = np.flatnonzero(possible[:, effect] & ~adjacency[:, effect])
        if len(candidates):
            self.add[candidates, effect] = (
                scores.scores_adding(effect, parents[effect], candidates) - family[effect]
            )
        for cause in parents[effect]:
            self.delete[cause, effect] = (
                scores.score(effect, parents[effect] - {cause}) - family[effect]
            )

    def best(self, adjacency: np.ndarray, reach: np.ndarray) -> Move | None:
        """The move that gains most (more than 1e-9 nats), or None.

        Equal gains are common (two types that always fire together gain the same either
        way), so ties are broken as a scan would meet the moves: by effect, then cause,
        a delete before the reverse of the same edge; the result does not depend on how
        the gains are laid out."""
        options: list[tuple[float, int, int, int, str]] = []  # gain, effect, cause, rank, kind

        def consider(
            kind: str, rank: int, gains: np.ndarray, effects: np.ndarray, causes: np.ndarray
        ) -> None:
            if len(gains):
                top = int(np.argmax(gains))  # the first of the largest, effect-major
                options.append((float(gains[top]), int(effects[top]), int(causes[top]), rank, kind))

        effects, causes = np.nonzero(adjacency.T)  # every edge, effect-major
        consider("delete", 0, self.delete[causes, effects], effects, causes)
        # reversing c -> e closes a cycle when another path still leads from c to e:
        # through a child of c other than e that reaches e
        through = adjacency[causes] & reach[:, effects].T
        through[np.arange(len(causes)), effects] = False
        reverse = self.delete[causes, effects] + self.add[effects, causes]
        consider("reverse", 1, np.where(through.any(axis=1), -np.inf, reverse), effects, causes)
        # adding c -> e closes a cycle when e already reaches c; laid out [e, c]
        add = np.where(~adjacency.T & ~reach, self.add.T, -np.inf)
        first = int(np.argmax(add))
        options.append((float(add.flat[first]), *divmod(first, len(add)), 2, "add"))
        top = max(options, key=lambda o: (o[0], -o[1], -o[2], -o[3]), default=None)
        if top is None or not top[0] > 1e-9:
            return None
        gain, effect, cause, _, kind = top
        return Move(kind, cause, effect, gain)


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
