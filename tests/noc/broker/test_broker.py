"""Publisher and consumers on a real Redis, in this process (engines on a scripted clock)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from allo.domain.alarms import Alarm
from allo.errors import InvalidInputError
from allo.noc.broker import (
    AlarmPublisher,
    BrokerError,
    PartitionConsumer,
    StreamKeys,
    connect,
    decode_alarm,
    engine_stream,
    partition_topology,
    prefixed_ids,
)
from allo.noc.broker import consumer as consumer_module
from allo.noc.broker.streams import GROUP
from allo.noc.engine import NocEngine
from allo.noc.pipeline import build_pipeline
from allo.noc.replay import replay
from allo.noc.store import SqlNocStore
from allo.testing.clock import ScriptedClock
from allo.testing.redis import REDIS_MARKS, RedisServer, free_port
from tests.noc.broker.helpers import GRAPH, TOPOLOGY, alarms

pytestmark = REDIS_MARKS


def engine(database: str, partition: int, clock: ScriptedClock) -> NocEngine:
    return NocEngine(
        SqlNocStore(database),
        clock,
        stream=engine_stream(partition),
        topology=TOPOLOGY,
        graph=GRAPH,
        history=0,
    )


def consumers(client: Any, database: str, partitions: int = 2) -> list[PartitionConsumer]:
    clock = ScriptedClock(2e6)
    made = [
        PartitionConsumer(
            client, engine(database, p, clock), p, partitions, count=200, lease_seconds=1.0
        )
        for p in range(partitions)
    ]
    for consumer in made:
        consumer.start()
    return made


def drain(made: list[PartitionConsumer]) -> None:
    while sum(c.poll(block=False) for c in made):
        pass


def stored(database: str) -> list[tuple[str, str, str, str]]:
    """(alarm id, stream, device, incident id) of every stored alarm."""
    engine_ = create_engine(database)
    with engine_.connect() as c:
        rows = c.execute(text("SELECT alarm_id, stream, device, incident_id FROM noc_alarms"))
        out = [tuple(str(v) for v in row) for row in rows]
    engine_.dispose()
    return out  # type: ignore[return-value]


def close(made: list[PartitionConsumer]) -> None:
    for consumer in made:
        consumer.engine.close()


def test_each_alarm_lands_once_in_its_region_and_incidents_match_one_engine(
    client: Any, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'noc.db'}"
    sent = alarms()
    split = partition_topology(TOPOLOGY, 2)
    report = AlarmPublisher(client, split).publish(sent)
    assert report.published == len(sent) and min(report.per_partition) > 0
    made = consumers(client, database)
    drain(made)
    rows = stored(database)
    assert Counter(r[0] for r in rows) == Counter(a.id for a in sent)  # each exactly once
    for _, stream, device, incident in rows:
        assert stream == engine_stream(split.partition_of(device))
        assert incident.startswith(stream + "-")
    # no link is cut, so the regions' engines group exactly as one engine would
    for consumer in made:
        consumer.engine.flush()
    close(made)
    clock = ScriptedClock(2e6)
    single = replay(sent, build_pipeline(clock, topology=TOPOLOGY, graph=GRAPH), clock)
    by_incident: dict[str, set[str]] = {}
    for alarm_id, _, _, incident in stored(database):
        by_incident.setdefault(incident, set()).add(alarm_id)
    expected = {frozenset([i.head.id, *(m.alarm.id for m in i.members)]) for i in single.incidents}
    assert {frozenset(v) for v in by_incident.values()} == expected
    assert any(len({d for d in i.devices}) > 1 for i in single.incidents)
    assert client.xpending(StreamKeys().partition(0), "allo-noc")["pending"] == 0


def test_a_crash_between_commit_and_ack_replays_the_batch_without_counting_twice(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = f"sqlite:///{tmp_path / 'noc.db'}"
    sent = alarms(600)
    AlarmPublisher(client, partition_topology(TOPOLOGY, 2)).publish(sent)
    first = consumers(client, database)[0]

    class Crash(BaseException):
        """Stands for kill -9: nothing after it runs."""

    original_pipeline, original_xack = client.pipeline, client.xack

    def crashing_pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = original_pipeline(*args, **kwargs)

        def execute() -> None:
            raise Crash

        pipe.execute = execute
        return pipe

    def crashing_xack(*args: Any, **kwargs: Any) -> None:
        raise Crash

    # the acknowledgement goes alone, with the next read, or with dead letters in a
    # MULTI: every way crashes
    client.pipeline, client.xack = crashing_pipeline, crashing_xack
    with monkeypatch.context() as patched:
        patched.setattr("allo.noc.broker.consumer.ack_and_read", crashing_xack)
        with pytest.raises(Crash):
            first.poll(block=False)
    client.pipeline, client.xack = original_pipeline, original_xack
    committed = first.report.accepted
    assert committed == 200  # the whole batch reached the engine's store, none acked
    first.engine.close()

    again = consumers(client, database)[0]  # same consumer name: its pending list first
    assert again.report.recovered_entries == 200
    assert again.report.already_stored == 200 and again.report.accepted == 0
    drain([again])
    ids = [r[0] for r in stored(database) if r[1] == engine_stream(0)]
    assert len(ids) == len(set(ids)) == again.report.accepted + committed
    again.engine.close()


def test_entries_that_are_not_alarms_go_to_the_dead_letter_stream(
    client: Any, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'noc.db'}"
    keys = StreamKeys()
    AlarmPublisher(client, partition_topology(TOPOLOGY, 2)).publish(alarms(10))
    key = keys.partition(0)
    client.xadd(key, {"alarm": b"\xff{oops"})
    client.xadd(key, {"note": "no alarm here"})
    client.xadd(key, {"alarm": '{"device": "c0-1", "raised_at": 5}'})
    client.xadd(key, {"alarm": '{"device": "c0-1", "type": "7", "raised_at": 1e6}'})
    made = consumers(client, database)
    drain(made)
    report = made[0].report
    assert report.dead_letters == 3 and report.accepted == report.entries - 3
    letters = client.xrange(keys.dead)
    assert len(letters) == 3
    reasons = [fields[b"reason"].decode() for _, fields in letters]
    assert any("not JSON" in r for r in reasons) and any("missing alarm_type" in r for r in reasons)
    assert all(fields[b"stream"] == key.encode() for _, fields in letters)
    assert b"no alarm here" in letters[1][1][b"fields"]
    assert client.xpending(key, "allo-noc")["pending"] == 0  # handled, not stuck
    # the entry without an id got one from its entry id, stable if it is read again
    generated = [r for r in stored(database) if r[0].startswith(key + ":")]
    assert len(generated) == 1
    close(made)


def test_the_publisher_waits_for_slow_consumers_instead_of_letting_alarms_be_trimmed(
    client: Any, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'noc.db'}"
    split = partition_topology(TOPOLOGY, 2)
    made = consumers(client, database)
    waits: list[str] = []

    def sleep(_seconds: float) -> None:  # what the consumers do while the publisher waits
        for consumer in made:
            consumer.poll(block=False)

    publisher = AlarmPublisher(
        client, split, maxlen=1000, chunk=100, sleep=sleep, notify=waits.append
    )
    sent = alarms(5000)
    report = publisher.publish(sent)
    drain(made)
    assert waits and report.warnings  # it had to wait, and said so
    assert sum(c.report.accepted for c in made) == len(sent)
    assert sum(c.report.dead_letters for c in made) == 0
    close(made)


def test_a_different_partition_count_is_refused_with_a_way_out(client: Any) -> None:
    AlarmPublisher(client, partition_topology(TOPOLOGY, 2)).prepare()
    with pytest.raises(InvalidInputError, match="published for 2 partition"):
        AlarmPublisher(client, partition_topology(TOPOLOGY, 3)).prepare()
    AlarmPublisher(client, partition_topology(TOPOLOGY, 3), keys=StreamKeys("other")).prepare()


def test_file_ids_are_made_unique_to_the_file_but_stable() -> None:
    rows = [Alarm("row-1", "d", "t", 1.0), Alarm("ticket-9", "d", "t", 2.0)]
    assert [a.id for a in prefixed_ids(rows, "A.1234")] == ["A.1234:row-1", "ticket-9"]
    assert [a.id for a in prefixed_ids(rows, "")] == ["row-1", "ticket-9"]


def test_unreachable_redis_is_a_clear_error_without_the_password(redis: RedisServer) -> None:
    url = f"redis://alice:s3cret@127.0.0.1:{free_port()}/0"
    with pytest.raises(BrokerError, match="cannot reach Redis") as caught:
        connect(url, timeout=1)
    assert "s3cret" not in str(caught.value) and "alice:***@127.0.0.1" in str(caught.value)
    assert caught.value.retryable
    with pytest.raises(BrokerError, match="refused the credentials") as wrong:
        connect(f"redis://alice:s3cret@127.0.0.1:{redis.port}/0", timeout=1)
    assert "s3cret" not in str(wrong.value)
    with pytest.raises(InvalidInputError, match="expected redis://"):
        connect("http://127.0.0.1:6379")


def test_redis_lost_while_publishing_is_a_retryable_error_naming_the_way_out(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        client = connect(server.url)
        publisher = AlarmPublisher(client, partition_topology(TOPOLOGY, 2))
        publisher.prepare()
        server.kill()
        with pytest.raises(BrokerError, match="publish the file again") as caught:
            publisher.publish(alarms(50))
        assert caught.value.retryable
        client.close()
    finally:
        server.stop()


def test_redis_killed_between_commit_and_ack_then_restarted_loses_nothing(
    tmp_path: Path,
) -> None:
    database = f"sqlite:///{tmp_path / 'noc.db'}"
    server = RedisServer(tmp_path / "redis", appendonly=True)  # every write fsynced
    server.start()
    try:
        client = connect(server.url)
        sent = alarms(900)
        published = AlarmPublisher(client, partition_topology(TOPOLOGY, 2)).publish(sent)
        first = consumers(client, database)[0]
        ingest = first.engine.ingest
        batches = 0

        def ingest_then_kill_redis(*args: Any, **kwargs: Any) -> Any:
            nonlocal batches
            result = ingest(*args, **kwargs)  # committed...
            batches += 1
            if batches == 2:
                server.kill()  # ...but Redis dies before the acknowledgement
            return result

        first.engine.ingest = ingest_then_kill_redis  # type: ignore[method-assign]
        restarts: list[float] = []

        def sleep(seconds: float) -> None:  # the outage ends while the consumer waits
            restarts.append(seconds)
            if server.process is not None and server.process.poll() is not None:
                server.start()

        target = published.per_partition[0]
        report = first.run(lambda: first.report.accepted >= target, sleep=sleep)
        assert restarts and report.broker_outages == 1
        assert report.already_stored == 200  # the batch whose ack was lost, read again
        assert report.accepted == target and report.dead_letters == 0
        ids = [r[0] for r in stored(database) if r[1] == engine_stream(0)]
        assert len(ids) == len(set(ids)) == target
        assert client.xpending(StreamKeys().partition(0), "allo-noc")["pending"] == 0
        first.engine.close()
        client.close()
    finally:
        server.stop()


def test_the_acknowledgement_reads_the_next_batch_ahead_and_a_crash_loses_none(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = f"sqlite:///{tmp_path / 'noc.db'}"
    published = AlarmPublisher(client, partition_topology(TOPOLOGY, 2)).publish(alarms(1200))
    first = consumers(client, database)[0]
    reads: list[str] = []
    original = consumer_module.read_group

    def counted_read(*args: Any, **kwargs: Any) -> Any:
        reads.append("read")
        return original(*args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(consumer_module, "read_group", counted_read)
        assert first.poll(block=False) == 200
        assert first.poll(block=False) == 200
    # one read of its own: the second batch came with the first one's acknowledgement
    assert reads == ["read"]
    key = StreamKeys().partition(0)
    ahead = min(200, published.per_partition[0] - 400)
    assert ahead > 0
    assert client.xpending(key, "allo-noc")["pending"] == ahead  # read ahead, not handled
    assert first.report.accepted == 400
    first.engine.close()  # as after kill -9: the batch read ahead was never handled

    again = consumers(client, database)[0]
    assert again.report.recovered_entries == ahead
    assert again.report.already_stored == 0  # never committed, so not counted twice
    drain([again])
    ids = [r[0] for r in stored(database) if r[1] == engine_stream(0)]
    assert len(ids) == len(set(ids)) == published.per_partition[0]
    assert client.xpending(key, "allo-noc")["pending"] == 0
    again.engine.close()


def test_a_clean_stop_handles_the_batch_it_read_ahead(client: Any, tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'noc.db'}"
    AlarmPublisher(client, partition_topology(TOPOLOGY, 2)).publish(alarms(1200))
    first = consumers(client, database)[0]
    report = first.run(lambda: first.report.batches >= 1)
    assert report.batches == 2 and report.accepted == 400  # the one read ahead too
    assert client.xpending(StreamKeys().partition(0), "allo-noc")["pending"] == 0
    first.release()
    first.engine.close()


def test_a_paced_publisher_sends_a_tick_of_alarms_per_round_trip(client: Any) -> None:
    moment = [0.0]

    def now() -> float:
        return moment[0]

    def sleep(seconds: float) -> None:
        moment[0] += seconds

    trips: list[int] = []
    publisher = AlarmPublisher(
        client, partition_topology(TOPOLOGY, 2), tick=0.002, now=now, sleep=sleep
    )
    send = publisher._send

    def counted_send(link: Any, batch: list[Alarm], report: Any) -> None:
        trips.append(len(batch))
        moment[0] += 0.0001  # a round trip takes time, as the alarms come due
        send(link, batch, report)

    publisher._send = counted_send  # type: ignore[method-assign]
    report = publisher.publish(alarms(1000), rate=10_000.0)
    assert report.published == sum(trips) == 1000
    # 20 alarms are due every 2 ms at 10,000/s: never one round trip per alarm
    assert min(trips[1:-1]) >= 20 and len(trips) <= 1000 / 20 + 2
    assert 0.098 <= report.seconds <= 0.1 + 0.002 + 0.0001 * len(trips)  # the rate, kept
    with pytest.raises(InvalidInputError, match="tick"):
        AlarmPublisher(client, partition_topology(TOPOLOGY, 2), tick=-1.0)


def test_each_stream_is_capped_near_maxlen(client: Any) -> None:
    """``MAXLEN ~``: Redis trims the oldest entries (read or not) in whole nodes, so a
    stream's length stays a little over the cap. A reader takes every chunk here only
    so that the publisher's own wait (half the cap unread) never fires."""
    keys = StreamKeys(prefix="capped")
    publisher = AlarmPublisher(client, partition_topology(TOPOLOGY, 1), keys=keys, maxlen=1000)
    sent = alarms(4000)
    for start in range(0, len(sent), 400):
        report = publisher.publish(sent[start : start + 400])
        assert not report.warnings
        client.xreadgroup(GROUP, "reader", {keys.partition(0): ">"}, count=1000)
    length = client.xlen(keys.partition(0))
    assert 1000 <= length < 1200, length
    newest = client.xrevrange(keys.partition(0), count=1)[0][1]
    assert decode_alarm(newest, "x").id == sent[-1].id  # the latest kept, in the JSON field
