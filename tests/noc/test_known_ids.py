"""``KnownIds``: a set of alarm ids split by hash, so that no part grows all at once."""

from __future__ import annotations

from allo.noc.known_ids import SHARDS, KnownIds


def test_it_answers_like_a_set() -> None:
    ids = KnownIds(["row-1", "row-2"])
    ids.update(["row-3", "row-2"])
    assert "row-1" in ids and "row-3" in ids
    assert "row-4" not in ids and 42 not in ids
    assert len(ids) == 3


def test_ids_spread_over_every_shard_so_none_grows_like_the_whole() -> None:
    ids = KnownIds(f"0-row-{i}" for i in range(100_000))
    sizes = [len(shard) for shard in ids._shards]
    mean = 100_000 / SHARDS
    assert len(sizes) == SHARDS and sum(sizes) == len(ids) == 100_000
    assert min(sizes) > 0.5 * mean and max(sizes) < 1.5 * mean
    assert max(sizes) < 0.01 * len(ids)  # each part grows alone, at a hundredth of the cost
