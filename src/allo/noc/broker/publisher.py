"""Routing alarms to the stream of their partition (``XADD <prefix>:<p>``).

Alarms are written in pipelined chunks (one round trip per chunk, not per alarm), each
stream capped with ``MAXLEN ~`` so that Redis memory stays bounded. Trimming drops the
oldest entries whether or not a consumer has read them, so the publisher never lets a
partition's unread backlog approach the cap: past half of it, it waits for the consumers
(back-pressure, reported in ``waited_seconds``) instead of letting alarms be trimmed away.

Source-generated ids (``row-N`` of a CSV file without an id column) are made unique to the
file with a prefix, so that two files published into the same streams never share ids,
while publishing the same file again resends the same ids (which the engines skip).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from allo.domain.alarms import Alarm
from allo.errors import BrokerError, InvalidInputError
from allo.noc.broker.codec import FIELD, encode_alarm
from allo.noc.broker.partition import Partitioning
from allo.noc.broker.pipelined import HeldConnection
from allo.noc.broker.streams import (
    GROUP,
    Layout,
    StreamKeys,
    claim_layout,
    ensure_group,
    partition_mismatch,
    text,
)

_GENERATED = re.compile(r"^row-\d+$")


def prefixed_ids(alarms: Iterable[Alarm], prefix: str) -> Iterable[Alarm]:
    """``row-N`` ids (made up by the source) become ``<prefix>:row-N``; others are kept."""
    for alarm in alarms:
        if prefix and _GENERATED.match(alarm.id):
            yield replace(alarm, id=f"{prefix}:{alarm.id}")
        else:
            yield alarm


@dataclass
class PublishReport:
    """What a :meth:`AlarmPublisher.publish` call sent, per partition."""

    per_partition: list[int]
    seconds: float = 0.0
    waited_seconds: float = 0.0
    first_sent: float | None = None  # wall-clock time of the first XADD round trip
    warnings: list[str] = field(default_factory=list)

    @property
    def published(self) -> int:
        return sum(self.per_partition)

    def to_json(self) -> dict[str, object]:
        return {
            "published": self.published,
            "per_partition": self.per_partition,
            "seconds": round(self.seconds, 3),
            "alarms_per_second": round(self.published / self.seconds, 1) if self.seconds else None,
            "waited_seconds": round(self.waited_seconds, 3),
            "warnings": self.warnings,
        }


class AlarmPublisher:
    """Sends alarms to their partition's stream (see the module docstring)."""

    def __init__(
        self,
        client: Any,
        partitioning: Partitioning,
        *,
        keys: StreamKeys | None = None,
        maxlen: int = 1_000_000,
        chunk: int = 500,
        tick: float = 0.001,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.monotonic,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        if maxlen < 1000:
            raise InvalidInputError(f"maxlen {maxlen}: keep at least 1000 entries per stream")
        if chunk < 1:
            raise InvalidInputError(f"chunk {chunk}: send at least one alarm per round trip")
        if not 0.0 <= tick <= 1.0:
            raise InvalidInputError(f"tick {tick}: give seconds between 0 and 1")
        self.client = client
        self.partitioning = partitioning
        self.keys = keys or StreamKeys()
        self.maxlen = maxlen
        self.chunk = chunk
        self.tick = tick
        self._sleep = sleep
        self._now = now
        self._notify = notify
        self._since_check = [0] * partitioning.partitions
        self._stream_keys = [self.keys.partition(p) for p in range(partitioning.partitions)]
        self._prepared = False

    @property
    def partitions(self) -> int:
        return self.partitioning.partitions

    def prepare(self) -> None:
        """Record the layout (refusing another partition count) and create every stream
        with its consumer group, so that nothing published before a consumer starts is
        skipped."""
        found = claim_layout(
            self.client, self.keys, Layout(self.partitions, self.partitioning.digest())
        )
        if found is not None and found.partitions != self.partitions:
            raise InvalidInputError(partition_mismatch(found, self.partitions, self.keys))
        for partition in range(self.partitions):
            ensure_group(self.client, self.keys.partition(partition))
        self._prepared = True

    def publish(self, alarms: Iterable[Alarm], *, rate: float | None = None) -> PublishReport:
        """Send every alarm to its partition, ``chunk`` per round trip; with ``rate``,
        paced at that many alarms per second (a load generator)."""
        if rate is not None and rate <= 0:
            raise InvalidInputError(f"rate {rate}: give alarms per second above 0")
        if not self._prepared:
            self.prepare()
        report = PublishReport([0] * self.partitions)
        started = self._now()
        batch: list[Alarm] = []
        sent = 0
        link = HeldConnection(self.client)  # the XADDs' connection (pipelined.py)
        try:
            for alarm in alarms:
                batch.append(alarm)
                due = self.chunk if rate is None else self._due(rate, started, sent)
                if len(batch) >= due:
                    self._send(link, batch, report)
                    sent += len(batch)
                    batch = []
                    if rate is not None:
                        self._pace(rate, started, sent)
            if batch:
                self._send(link, batch, report)
        finally:
            link.release()
        report.seconds = self._now() - started
        return report

    def _due(self, rate: float, started: float, sent: int) -> int:
        """How many alarms are due now at ``rate`` (at least one, at most a chunk)."""
        # (a millionth of an alarm: a sleep until exactly n alarms are due must find n)
        behind = int((self._now() - started) * rate + 1e-6) - sent
        return max(1, min(self.chunk, behind))

    def _pace(self, rate: float, started: float, sent: int) -> None:
        """Sleep until the next ``tick`` of alarms is due (at least one, at most a chunk).

        Sending each alarm as soon as it is due made one round trip per alarm at 10,000
        alarms/s (what was due while the previous one went out): the publisher then
        used more CPU than a consumer, and Redis served one ``XADD`` at a time, on the
        very cores that the consumers needed. An alarm now leaves at most ``tick`` after
        it is due (the stream's latency is counted from its ``XADD``, not from then)."""
        quantum = max(1, min(self.chunk, int(rate * self.tick)))
        ahead = (sent + quantum) / rate - (self._now() - started)
        if ahead > 0:
            self._sleep(min(ahead, 0.05))

    def _send(self, link: HeldConnection, batch: list[Alarm], report: PublishReport) -> None:
        import redis

        counts = [0] * self.partitions
        # ``XADD key MAXLEN ~ n * alarm <json>``, spelled out: redis-py's ``xadd`` checks
        # and rebuilds these same arguments for every alarm
        commands = []
        keys = self._stream_keys
        partition_of = self.partitioning.partition_of
        maxlen = self.maxlen
        for alarm in batch:
            partition = partition_of(alarm.device)
            commands.append(
                ("XADD", keys[partition], "MAXLEN", "~", maxlen, "*", FIELD, encode_alarm(alarm))
            )
            counts[partition] += 1
        try:
            self._wait_for_room(counts, report)
            if report.first_sent is None:
                report.first_sent = time.time()
            link.send(commands)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise BrokerError(
                f"lost the connection to Redis while publishing ({type(exc).__name__}) after "
                f"{report.published} alarms: publish the file again (alarms already sent "
                "keep their ids and are not counted twice)",
                retryable=True,
            ) from exc
        for partition, count in enumerate(counts):
            report.per_partition[partition] += count
            self._since_check[partition] += count

    def _wait_for_room(self, counts: list[int], report: PublishReport) -> None:
        """Wait while a partition's unread backlog would pass half of ``maxlen``."""
        limit = self.maxlen // 2
        for partition, count in enumerate(counts):
            if not count or self._since_check[partition] + count < limit // 4:
                continue
            self._since_check[partition] = 0
            key = self.keys.partition(partition)
            waited_from = self._now()
            warned = False
            while True:
                unread = self.unread(partition)
                if unread is None or unread + count <= limit:
                    break
                if not warned:
                    message = (
                        f"partition {partition}: {unread} alarms not yet read in {key}; "
                        "waiting for its consumer (is `allo noc consume` running?)"
                    )
                    report.warnings.append(message)
                    if self._notify is not None:
                        self._notify(message)
                    warned = True
                self._sleep(0.05)
            report.waited_seconds += self._now() - waited_from

    def unread(self, partition: int) -> int | None:
        """Entries of the partition's stream not yet delivered to the consumer group
        (``None`` when Redis cannot tell)."""
        for group in self.client.xinfo_groups(self.keys.partition(partition)):
            name = group.get("name")
            if text(name) == GROUP:
                lag = group.get("lag")
                return int(lag) if lag is not None else None
        return None
