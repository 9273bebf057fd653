"""The whole-graph search: hill-climbing moves, orientation of pairwise links, acyclicity."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from allo.errors import InvalidInputError
from allo.noc.causal import HawkesConfig, HawkesLearner
from allo.noc.causal_fit import em, em_each
from allo.noc.causal_search import FamilyScores, hill_climb, orient, reachability
from tests.noc.test_causal import simulate


class ScriptedScores(FamilyScores):
    """Family scores read from a table (missing parent sets score like no parent at all)."""

    def __init__(self, n_types: int, table: dict[tuple[int, frozenset[int]], float]) -> None:
        super().__init__({}, np.zeros(n_types), 1.0, n_types, 1, 1.0, 1)
        self.table = table

    def fitted(self, effect: int) -> bool:
        return True

    def possible(self) -> np.ndarray:
        return ~np.eye(self.n_types, dtype=bool)

    def score(self, effect: int, parents: frozenset[int]) -> float:
        return self.table.get((effect, parents), -1.0 if parents else 0.0)

    def scores_adding(
        self, effect: int, parents: frozenset[int], candidates: np.ndarray
    ) -> np.ndarray:
        return np.array([self.score(effect, parents | {int(c)}) for c in candidates])


def acyclic(adjacency: np.ndarray) -> bool:
    reach = reachability(adjacency)
    return not (reach & reach.T & ~np.eye(len(reach), dtype=bool)).any()


def test_reachability_follows_paths_only_forward() -> None:
    chain = np.zeros((4, 4), dtype=bool)
    chain[0, 1] = chain[1, 2] = True
    reach = reachability(chain)
    assert reach[0, 2] and reach[0, 0] and not reach[2, 0] and not reach[0, 3]


def test_hill_climb_reverses_an_edge_when_the_whole_graph_gains() -> None:
    # 0 -> 1 pays most alone, but once 2 -> 0 is in, 1 -> 0 explains type 0 far better
    table = {
        (1, frozenset({0})): 5.0,
        (1, frozenset({0, 2})): 5.0,
        (0, frozenset({1})): 4.0,
        (0, frozenset({2})): 3.0,
        (0, frozenset({1, 2})): 10.0,
    }
    adjacency = hill_climb(ScriptedScores(3, table))
    assert {(int(c), int(e)) for c, e in zip(*np.nonzero(adjacency), strict=True)} == {
        (1, 0),
        (2, 0),
    }


def test_hill_climb_never_closes_a_cycle() -> None:
    # every edge pays on its own: a greedy search without the constraint would keep all six
    table = {
        (e, frozenset(p)): 2.0 * len(p) for e in range(3) for p in ({c} for c in range(3) if c != e)
    }
    table |= {(e, frozenset(set(range(3)) - {e})): 4.0 for e in range(3)}
    adjacency = hill_climb(ScriptedScores(3, table))
    assert acyclic(adjacency) and adjacency.sum() == 3


def test_orient_follows_the_climbed_order_then_the_gains() -> None:
    gains = np.zeros((4, 4))
    gains[0, 1], gains[1, 0] = 9.0, 2.0  # the pairwise gains prefer 0 -> 1 ...
    gains[2, 3] = 1.0  # ... and 2 -> 3, which nothing else orders
    order = np.zeros((4, 4), dtype=bool)
    order[1, 2] = order[2, 0] = True  # ... but the DAG ranks 1 before 0 (1 -> 2 -> 0)
    result = orient(gains, order)
    assert result[1, 0] and not result[0, 1]
    assert result[2, 3] and result[1, 2] and result[2, 0]
    assert result.sum() == 4 and acyclic(result)


@pytest.mark.parametrize("seed", range(5))
def test_orient_is_acyclic_on_dense_random_gains(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gains = np.where(rng.random((8, 8)) < 0.6, rng.random((8, 8)), 0.0)
    np.fill_diagonal(gains, 0.0)
    result = orient(gains, np.zeros((8, 8), dtype=bool))
    linked = (gains > 0) | (gains.T > 0)
    assert acyclic(result)
    assert not (result & ~linked).any()  # only linked pairs
    assert result.sum() >= 8 - 1  # a spanning order at least survives


def test_both_graph_searches_recover_the_simulated_chain() -> None:
    alarms = simulate(seed=13)
    chain = {("A", "B"), ("B", "C")}
    for search in ("hybrid", "dag"):
        learner = HawkesLearner(HawkesConfig(search=search, select=False, decay_seconds=60.0))
        graph = learner.learn(alarms)
        edges = {(e.cause, e.effect) for e in graph.edges}
        # the hill-climb explains A -> C away (B is in between); the pairwise links keep
        # it, pointed the right way, and nothing reaches the independent D
        assert edges == chain if search == "dag" else chain <= edges <= chain | {("A", "C")}
        assert graph.method == f"topological-hawkes-{search}" and graph.has_model
        ab = next(e for e in graph.edges if e.cause == "A")
        assert 0.5 < ab.excitation < 1.1  # 0.8 B per A in the simulation


def test_unknown_search_is_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="unknown causal search 'bogus'"):
        HawkesLearner(HawkesConfig(search="bogus", select=False)).learn(simulate(devices=2))


def test_rejects_a_kernel_without_a_positive_time_constant() -> None:
    for config in (
        HawkesConfig(scales=(0.0, 60.0), select=False),
        HawkesConfig(scale_candidates=((1.0, -5.0),)),
        HawkesConfig(decay_seconds=-1.0, select=False),
    ):
        with pytest.raises(InvalidInputError, match="time constants"):
            HawkesLearner(config).learn(simulate(devices=2))


def naive_hill_climb(scores: FamilyScores) -> np.ndarray:
    """The search as first written: every move re-scored and every cycle re-checked at
    each step, the reference the incremental :func:`hill_climb` must agree with."""
    n = scores.n_types
    adjacency = np.zeros((n, n), dtype=bool)
    while True:
        parents = [frozenset(np.flatnonzero(adjacency[:, e]).tolist()) for e in range(n)]
        family = [scores.score(e, parents[e]) for e in range(n)]
        reach = reachability(adjacency)
        best: tuple[float, str, int, int] | None = None
        for e in range(n):
            for c in range(n):
                if c == e:
                    continue
                moves: list[tuple[float, str]] = []
                if adjacency[c, e]:
                    drop = scores.score(e, parents[e] - {c}) - family[e]
                    moves.append((drop, "delete"))
                    without = adjacency.copy()
                    without[c, e] = False
                    if not reachability(without)[c, e]:
                        added = scores.score(c, parents[c] | {e}) - family[c]
                        moves.append((drop + added, "reverse"))
                elif not reach[e, c]:
                    moves.append((scores.score(e, parents[e] | {c}) - family[e], "add"))
                for gain, kind in moves:
                    if gain > 1e-9 and (best is None or gain > best[0]):
                        best = (gain, kind, c, e)
        if best is None:
            return adjacency
        _, kind, c, e = best
        adjacency[c, e] = kind == "add"
        if kind == "reverse":
            adjacency[e, c] = True


class RandomScores(ScriptedScores):
    """Scores of a random model: each parent adds its own value, pairs of parents interact;
    with ``ties``, whole numbers, so that many moves gain exactly as much (as two types
    that always fire together do)."""

    def __init__(self, n_types: int, seed: int, ties: bool = False) -> None:
        super().__init__(n_types, {})
        rng = np.random.default_rng(seed)
        self.single = rng.normal(0.0, 2.0, (n_types, n_types))
        self.pair = rng.normal(0.0, 1.0, (n_types, n_types, n_types))
        if ties:
            self.single, self.pair = self.single.round(), self.pair.round()

    def score(self, effect: int, parents: frozenset[int]) -> float:
        chosen = sorted(parents)
        value = sum(self.single[c, effect] for c in chosen) - 0.5 * len(chosen)
        value += sum(self.pair[a, b, effect] for a in chosen for b in chosen if a < b)
        return float(value)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(30))
def test_incremental_hill_climb_agrees_with_the_naive_search(seed: int, ties: bool) -> None:
    scores = RandomScores(7, seed, ties)
    climbed = hill_climb(scores)
    assert acyclic(climbed)
    assert (climbed == naive_hill_climb(scores)).all()


def test_fitting_every_candidate_at_once_matches_one_fit_each() -> None:
    rng = np.random.default_rng(4)
    hops, types = 2, 6
    rows = np.where(
        rng.random((300, types * hops)) < 0.3, rng.exponential(1.0, (300, types * hops)), 0.0
    )
    rows[:, 4 * hops :] = 0.0  # type 4 never precedes the effect, nor type 5 ...
    rows[:3, 5 * hops] = 0.5  # ... except at three alarms
    comp = rng.uniform(50.0, 200.0, types * hops)
    base = np.zeros(types * hops, dtype=bool)
    base[: 2 * hops] = True  # the effect (type 0) and one chosen parent (type 1)
    candidates = np.array([2, 3, 4, 5])
    together = em_each(sparse.csr_array(rows), base, candidates, hops, comp, 5_000.0, 40)
    for candidate, value in zip(candidates, together, strict=True):
        mask = base.copy()
        mask[candidate * hops : (candidate + 1) * hops] = True
        assert value == pytest.approx(em(rows[:, mask], comp[mask], 5_000.0, 40)[2], rel=1e-10)
