"""The streaming engine: same pipeline as a replay, persisted, restartable, observable."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from allo.domain.alarms import Alarm
from allo.errors import InvalidInputError, NotFoundError
from allo.noc.causal import CausalGraph
from allo.noc.engine import NocEngine
from allo.noc.pipeline import build_pipeline
from allo.noc.replay import replay
from allo.noc.silences import Matcher
from allo.noc.store import IncidentQuery, SqlNocStore
from allo.noc.topology import Topology
from allo.testing.clock import ScriptedClock
from tests.noc.helpers import alarm

CHAIN = Topology([("0", "1"), ("1", "2"), ("2", "3")])
GRAPH = CausalGraph.from_matrix(np.array([[0, 1], [0, 0]]))


def many(count: int = 400, seed: int = 1) -> list[Alarm]:
    rng = np.random.default_rng(seed)
    times = np.sort(rng.integers(0, 30_000, count))
    return [
        alarm(i, str(rng.integers(0, 2)), str(rng.integers(0, 4)), float(t))
        for i, t in enumerate(times)
    ]


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path / 'noc.db'}"


# test_stream_postgres.py points this at a PostgreSQL database to run the same tests there.
DATABASE_URL: Callable[[Path], str] = sqlite_url


def engine(path: Path, clock: ScriptedClock, stream: str = "t") -> NocEngine:
    noc = NocEngine(
        SqlNocStore(DATABASE_URL(path)),
        clock,
        stream=stream,
        topology=CHAIN,
        graph=GRAPH,
    )
    noc.warm_up()
    return noc


def partition(noc: NocEngine) -> Counter[str]:
    """How many incidents each alarm is in, read from the store (must be exactly one)."""
    _, items = noc.incidents(IncidentQuery(stream=noc.stream), 0, 500)
    seen: Counter[str] = Counter()
    for item in items:
        members = noc.incident(item["id"], 0, 5000)["members"]
        assert len(members) == item["size"]
        seen.update(m["id"] for m in members)
    return seen


def test_streaming_one_by_one_gives_the_replay_incidents(tmp_path: Path) -> None:
    alarms = many()
    clock = ScriptedClock(1e9)
    batch = replay(alarms, build_pipeline(clock, topology=CHAIN, graph=GRAPH), clock, batch_size=1)
    noc = engine(tmp_path, clock)
    for one in alarms:
        noc.ingest([one])
    noc.flush()
    counts = noc.store.counts("t")
    assert counts["alarms"] == counts["final_alarms"] == counts["incident_alarms"] == 400
    assert counts["incidents"] == len(batch.incidents) and counts["open_incidents"] == 0
    expected = sorted(sorted(i.rows()) for i in batch.incidents)
    _, items = noc.incidents(IncidentQuery(), 0, 500)
    stored = sorted(
        sorted(m["row"] for m in noc.incident(i["id"], 0, 5000)["members"]) for i in items
    )
    assert stored == expected
    assert set(partition(noc).values()) == {1}


def test_restart_rebuilds_open_incidents_and_skips_known_ids(tmp_path: Path) -> None:
    alarms = many()
    clock = ScriptedClock(1e9)
    first = engine(tmp_path, clock)
    for start in range(0, 250, 10):
        first.ingest(alarms[start : start + 10])
    before = first.store.counts("t")
    assert before["open_incidents"] > 0 and before["final_alarms"] < 250
    open_ids = {i["id"] for i in first.incidents(IncidentQuery(state="open"), 0, 500)[1]}
    acked = sorted(open_ids)[0]
    first.set_status(acked, "acknowledged", "nina")
    first.close()  # as after a kill: nothing flushed

    second = engine(tmp_path, clock)
    assert second.recovered == 250 - before["final_alarms"]
    assert {i["id"] for i in second.incidents(IncidentQuery(state="open"), 0, 500)[1]} == open_ids
    assert second.incident(acked)["status"] == "acknowledged"
    result = second.ingest(alarms)  # the whole file again
    assert result.accepted == 150 and result.already_stored == 250
    second.flush()
    counts = second.store.counts("t")
    assert counts["alarms"] == counts["final_alarms"] == counts["incident_alarms"] == 400
    assert set(partition(second).values()) == {1}


def test_repeated_id_only_brings_its_clear_time(tmp_path: Path) -> None:
    clock = ScriptedClock(1e9)
    noc = engine(tmp_path, clock)
    raised = Alarm("fp@1", "0", "0", 100.0)
    noc.ingest([raised])
    result = noc.ingest([Alarm("fp@1", "0", "0", 100.0, cleared_at=160.0)])
    assert result.accepted == 0 and result.already_stored == 1 and result.cleared == 1
    incident = noc.incidents(IncidentQuery(), 0, 10)[1][0]
    member = noc.incident(incident["id"])["members"][0]
    assert member["cleared_at"] == 160.0 and noc.store.counts("t")["alarms"] == 1


def test_maintenance_folds_alarms_of_the_window(tmp_path: Path) -> None:
    clock = ScriptedClock(1e9)
    noc = engine(tmp_path, clock)
    window = noc.add_window(["2", "3"], 1000.0, 2000.0, "ops", "fibre swap")
    inside = [alarm(0, "0", "2", 1100), alarm(1, "1", "3", 1200), alarm(2, "0", "2", 1900)]
    outside = [alarm(3, "0", "2", 2500), alarm(4, "0", "1", 1500)]
    result = noc.ingest(inside + outside)
    assert result.maintenance == 3
    detail = noc.incident(f"t-mw-{window.id}")
    assert detail["kind"] == "maintenance" and detail["size"] == 3
    assert [m["reason"] for m in detail["members"]] == ["head", "maintenance", "maintenance"]
    assert "maintenance" in detail["explanation"]["fr"]
    noc.flush()
    assert noc.store.counts("t")["incident_alarms"] == 5
    noc.delete_window(window.id)
    with pytest.raises(NotFoundError):
        noc.delete_window(window.id)


def test_silence_marks_matching_incidents_while_active(tmp_path: Path) -> None:
    clock = ScriptedClock(1000.0)
    noc = engine(tmp_path, clock)
    noc.ingest([alarm(0, "0", "0", 900), alarm(1, "0", "3", 950)])  # 3 hops apart
    silence = noc.add_silence([Matcher("device", "0")], None, 1600.0, "ops")
    by_device = {i["head"]["device"]: i for i in noc.incidents(IncidentQuery(), 0, 10)[1]}
    assert by_device["0"]["silenced_by"] == [silence.id] and by_device["3"]["silenced_by"] == []
    clock.advance(700)  # past its end
    assert all(not i["silenced_by"] for i in noc.incidents(IncidentQuery(), 0, 10)[1])
    assert noc.silences()[0]["state"] == "expired"
    with pytest.raises(InvalidInputError):
        noc.add_silence([Matcher("device", "0")], None, 1200.0)  # already over
    with pytest.raises(InvalidInputError):
        noc.add_silence([Matcher("device", "(", "=~")], None, 5000.0)


def test_events_are_versioned_and_replayable(tmp_path: Path) -> None:
    clock = ScriptedClock(1e9)
    noc = engine(tmp_path, clock)
    seen: list[tuple[int, dict[str, object]]] = []
    token = noc.subscribe(lambda v, e: seen.append((v, e)))
    noc.ingest([alarm(0, "0", "0", 10), alarm(1, "1", "0", 20)])
    incident_id = seen[-1][1]["incident"]["id"]  # type: ignore[index]
    noc.set_status(str(incident_id), "resolved", "nina")
    noc.ingest([alarm(2, "1", "1", 30)])  # grows again: needs attention again
    noc.unsubscribe(token)
    statuses = [e["incident"]["status"] for _, e in seen if e["type"] == "incident"]  # type: ignore[index]
    assert statuses[-2:] == ["resolved", "new"]
    late: list[int] = []
    noc.subscribe(lambda v, e: late.append(v), since=seen[0][0])
    assert late == [v for v, _ in seen[1:]]


def test_a_client_the_history_cannot_catch_up_is_told_to_read_again(tmp_path: Path) -> None:
    clock = ScriptedClock(1e9)
    noc = NocEngine(SqlNocStore(DATABASE_URL(tmp_path)), clock, graph=GRAPH, history=3)
    noc.warm_up()
    for i in range(6):  # six incidents on six devices: six events, the history keeps three
        noc.ingest([alarm(i, "0", str(i * 10), 10.0 * i)])
    assert noc.version == 6

    def events(since: int | None, epoch: str | None = None) -> list[tuple[int, str]]:
        got: list[tuple[int, str]] = []
        noc.unsubscribe(noc.subscribe(lambda v, e: got.append((v, str(e["type"]))), since, epoch))
        return got

    assert events(3) == [(4, "incident"), (5, "incident"), (6, "incident")]  # all still held
    assert events(6) == [] and events(None) == []
    assert events(2) == [(6, "resync")]  # event 3 was dropped: a gap nobody would see
    assert events(7) == [(6, "resync")]  # a version this engine never gave (a restart)
    assert events(5, epoch="0badcafe") == [(6, "resync")]  # another engine's version 5
    assert events(5, epoch=noc.epoch) == [(6, "incident")]
    other = NocEngine(SqlNocStore(DATABASE_URL(tmp_path)), clock, stream="other")
    assert other.epoch != noc.epoch


def test_stream_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        NocEngine(SqlNocStore("sqlite://"), ScriptedClock(), stream="a/b")


def test_events_made_while_nobody_listens_are_read_when_a_client_resumes(
    tmp_path: Path,
) -> None:
    clock = ScriptedClock(1e9)
    noc = engine(tmp_path, clock)
    start = noc.version
    noc.ingest([alarm(0, "0", "0", 10), alarm(1, "1", "0", 20)])  # nobody subscribed
    noc.ingest([alarm(2, "1", "1", 30)])
    resumed: list[tuple[int, dict[str, object]]] = []
    noc.subscribe(lambda v, e: resumed.append((v, e)), since=start)
    assert [v for v, _ in resumed] == list(range(start + 1, noc.version + 1))
    ids = {e["incident"]["id"] for _, e in resumed}  # type: ignore[index]
    stored = {i["id"]: i for i in noc.incidents(IncidentQuery(), 0, 50)[1]}
    assert ids == set(stored)
    for _, event in resumed:  # each as it is now, with its operator status
        incident = event["incident"]
        assert incident["size"] == stored[incident["id"]]["size"]  # type: ignore[index]
        assert incident["status"] == "new" and "silenced_by" in incident  # type: ignore[operator,index]


def _stored(noc: NocEngine) -> list[dict[str, object]]:
    """Every stored incident with its members, as the API shows them (times of writing
    left out: the two engines wrote at different moments)."""
    _, items = noc.incidents(IncidentQuery(stream=noc.stream), 0, 500)
    out = []
    for item in sorted(items, key=lambda i: str(i["id"])):
        data = noc.incident(item["id"], 0, 5000)
        data.pop("updated_at")
        for member in data["members"]:
            member.pop("received_at")
        out.append(data)
    return out


def test_a_replay_through_the_engine_stores_what_ingest_stores(tmp_path: Path) -> None:
    """``push`` (the replay protocol, which skips the per-alarm answer) writes exactly the
    rows, places and incidents that ``ingest`` writes for the same batches."""
    alarms = many(600, seed=4)
    clock = ScriptedClock(1e9)
    by_ingest = engine(tmp_path / "ingest", clock)
    by_push = engine(tmp_path / "push", clock)
    closed = []
    for start in range(0, len(alarms), 50):
        by_ingest.ingest(alarms[start : start + 50])
        closed += by_push.push(alarms[start : start + 50])
    middle = by_push.store.counts("t")
    assert middle == by_ingest.store.counts("t") and middle["open_incidents"] > 0
    assert _stored(by_push) == _stored(by_ingest)  # open incidents, provisional places
    closed += by_push.flush()
    by_ingest.flush()
    counts = by_push.store.counts("t")
    assert counts["final_alarms"] == 600 and counts["incidents"] == len(closed)
    assert _stored(by_push) == _stored(by_ingest)


def test_history_is_what_was_stored_by_stream_and_window(tmp_path: Path) -> None:
    """What ``allo noc learn --from-store`` reads: stored alarms by stream (partitions
    included), the last days before the newest, never a stand-in or a future alarm."""
    clock = ScriptedClock(1e9)
    north = engine(tmp_path, clock, stream="north.0")
    north.ingest(many(300, seed=2))
    north.ingest([alarm(900, "0", "1", 2e9)])  # far beyond the newest real one
    north.ingest([Alarm("bad", "unknown", "malformed-input", 100.0, row=901)])
    north.flush()
    south = NocEngine(SqlNocStore(DATABASE_URL(tmp_path)), clock, stream="south", graph=GRAPH)
    south.warm_up()
    south.ingest(many(50, seed=3))
    south.flush()
    for name in ("North.1", "north.east"):  # another stream, by case or by its name
        other = NocEngine(SqlNocStore(DATABASE_URL(tmp_path)), clock, stream=name, graph=GRAPH)
        other.warm_up()
        other.ingest(many(5, seed=4))
        other.flush()
    store = north.store
    assert store.devices_by_stream("north").keys() == {"north.0"}
    everything = store.history(until=1e9 + 86_400)
    assert len(everything) == 360 and everything[-1].raised_at <= 30_000
    assert all(a.alarm_type != "malformed-input" for a in everything)
    assert [a.raised_at for a in everything] == sorted(a.raised_at for a in everything)
    assert len(store.history("north", until=1e9)) == 300  # the stream's partitions
    assert len(store.history("north.0", until=1e9)) == 300
    assert store.history("nor", until=1e9) == []  # a name, not a prefix
    assert len(store.history()) == 361  # no bound: the future alarm too
    assert len(store.history("North", until=1e9)) == 5
    last = store.history("north", days=10_000 / 86_400, until=1e9)
    newest = max(a.raised_at for a in last)
    assert 0 < len(last) < 300 and min(a.raised_at for a in last) >= newest - 10_000
    assert store.history("south", days=1.0, until=-1.0) == []
