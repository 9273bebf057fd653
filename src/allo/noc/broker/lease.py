"""One consumer per partition: a lease held in Redis, with a time to live, kept renewed.

Two engines fed from the same partition would each keep their own memory of open
incidents and write competing versions of them into the same engine stream. Alarm ids
would still be stored once, but the incidents would be wrong. So a consumer holds the
partition's lease (``<prefix>:owner:<p>``: its holder name, set with ``NX`` and a time to
live) before it reads anything, and renews it before every batch.

- A second consumer started on a held partition waits for the lease; if its holder keeps
  renewing, it stops with an error naming the holder.
- A consumer killed with ``kill -9`` cannot release its lease: it expires by itself, so
  the restarted consumer waits at most one time to live before it takes over.
- A consumer stalled for longer than the time to live (a frozen machine) may find, when it
  wakes up, that another has taken the partition: renewal says so and it stops before its
  next batch. (It cannot stop a batch already being committed; keep the time to live well
  above the time of one batch, which is milliseconds.)

Renewal, take-over and release are Lua scripts, so each is one atomic step in Redis.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any

from allo.errors import BrokerError
from allo.noc.broker.streams import text

DEFAULT_TTL_SECONDS = 10.0

# KEYS[1] the lease, ARGV[1] the holder, ARGV[2] the time to live in ms.
# 1: renewed; 2: it had expired and nobody held it, so it is taken again; 0: another holds it.
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
elseif not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def holder_name() -> str:
    """This process, recognisably: host, pid and a random tag (a pid is reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class PartitionLease:
    """The lease of one partition, as held (or wanted) by one consumer process."""

    def __init__(
        self,
        client: Any,
        key: str,
        *,
        holder: str | None = None,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if ttl_seconds < 0.5:
            raise ValueError("a lease shorter than half a second would expire between batches")
        self.client = client
        self.key = key
        self.holder = holder or holder_name()
        self.ttl_ms = int(ttl_seconds * 1000)
        self._now = now
        self._sleep = sleep
        self._renewed_at: float | None = None

    @property
    def held(self) -> bool:
        """Whether this process believes it holds the lease (it renewed it in time)."""
        return self._renewed_at is not None and (
            self._now() - self._renewed_at < self.ttl_ms / 1000.0
        )

    def acquire(self, wait_seconds: float) -> None:
        """Take the lease, waiting up to ``wait_seconds`` for another holder's to expire.

        Raises a non-retryable :class:`BrokerError` naming the holder when it is still held.
        """
        deadline = self._now() + wait_seconds
        while True:
            started = self._now()
            if self._call(lambda: self.client.set(self.key, self.holder, nx=True, px=self.ttl_ms)):
                self._renewed_at = started
                return
            holder, left_ms = self._call(self._holder_and_ttl)
            if holder == self.holder:  # ours already (a second acquire): renew it
                self.renew()
                return
            if self._now() >= deadline:
                raise BrokerError(
                    f"{self.key} is held by another consumer ({holder}, lease renewed, "
                    f"{max(left_ms, 0) / 1000:.1f} s left): run exactly one consumer per "
                    "partition; if that process is dead, its lease expires by itself, so "
                    "start this one again in a few seconds",
                    retryable=False,
                )
            self._sleep(min(max(left_ms, 50) / 1000.0, 0.5, max(deadline - self._now(), 0.01)))

    def renew(self) -> None:
        """Extend the lease; raises a non-retryable :class:`BrokerError` if another
        consumer took it meanwhile (this process was stalled past the time to live)."""
        started = self._now()
        outcome = self._call(
            lambda: self.client.eval(_RENEW, 1, self.key, self.holder, self.ttl_ms)
        )
        if int(outcome) == 0:
            self._renewed_at = None
            holder, _ = self._call(self._holder_and_ttl)
            raise BrokerError(
                f"{self.key} was taken over by {holder} while this consumer was stalled past "
                f"its {self.ttl_ms / 1000:.1f} s lease: stopping so that one engine owns the "
                "partition (the other one carries on from the unacknowledged entries)",
                retryable=False,
            )
        self._renewed_at = started

    def keep(self) -> None:
        """Renew when a third of the time to live has passed since the last renewal."""
        if self._renewed_at is None or self._now() - self._renewed_at >= self.ttl_ms / 3000.0:
            self.renew()

    def release(self) -> None:
        """Give the lease back (a clean stop), so a successor need not wait for it."""
        self._renewed_at = None
        self._call(lambda: self.client.eval(_RELEASE, 1, self.key, self.holder))

    def _holder_and_ttl(self) -> tuple[str | None, int]:
        pipe = self.client.pipeline(transaction=True)
        pipe.get(self.key)
        pipe.pttl(self.key)
        holder, left = pipe.execute()
        return (None if holder is None else text(holder)), int(left)

    def _call(self, action: Callable[[], Any]) -> Any:
        import redis

        try:
            return action()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise BrokerError(
                f"lost Redis while keeping the lease {self.key} ({type(exc).__name__}): "
                "the consumer waits for Redis, then renews or takes the lease again",
                retryable=True,
            ) from exc
