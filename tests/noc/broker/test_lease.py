"""The partition lease on a real Redis: one holder, expiry after a crash, take-over noticed."""

from __future__ import annotations

import time
from typing import Any

import pytest

from allo.errors import BrokerError
from allo.noc.broker import PartitionLease
from allo.testing.redis import REDIS_MARKS

pytestmark = REDIS_MARKS
KEY = "allo:alarms:owner:0"


def lease(client: Any, holder: str, ttl: float = 1.0) -> PartitionLease:
    return PartitionLease(client, KEY, holder=holder, ttl_seconds=ttl)


def test_a_held_partition_refuses_a_second_consumer_until_released(client: Any) -> None:
    first, second = lease(client, "machine-a:1:aa"), lease(client, "machine-b:2:bb")
    first.acquire(wait_seconds=0)
    assert first.held and client.get(KEY) == b"machine-a:1:aa"
    with pytest.raises(BrokerError) as refused:
        second.acquire(wait_seconds=0.3)
    assert "machine-a:1:aa" in str(refused.value) and not refused.value.retryable
    assert not second.held
    first.release()
    second.acquire(wait_seconds=0)
    assert client.get(KEY) == b"machine-b:2:bb"
    first.release()  # releasing a lease one no longer holds leaves the holder alone
    assert client.get(KEY) == b"machine-b:2:bb"


def test_renewal_keeps_the_lease_beyond_its_time_to_live(client: Any) -> None:
    holder, other = lease(client, "a"), lease(client, "b")
    holder.acquire(wait_seconds=0)
    for _ in range(6):  # 1.5 s, one and a half times the lease
        time.sleep(0.25)
        holder.keep()
    with pytest.raises(BrokerError):
        other.acquire(wait_seconds=0.2)
    assert client.get(KEY) == b"a"


def test_a_dead_holders_lease_expires_and_its_successor_takes_over(client: Any) -> None:
    dead, successor = lease(client, "killed"), lease(client, "restarted")
    dead.acquire(wait_seconds=0)  # then never renewed: kill -9
    started = time.monotonic()
    successor.acquire(wait_seconds=3.0)
    waited = time.monotonic() - started
    assert 0.5 < waited < 2.5 and client.get(KEY) == b"restarted"
    # the stalled holder wakes up: its renewal says another owns the partition
    with pytest.raises(BrokerError) as lost:
        dead.renew()
    assert "restarted" in str(lost.value) and not lost.value.retryable
    assert not dead.held and client.get(KEY) == b"restarted"


def test_an_expired_lease_nobody_took_is_taken_again_on_renewal(client: Any) -> None:
    holder = lease(client, "slow", ttl=0.5)
    holder.acquire(wait_seconds=0)
    time.sleep(0.8)
    assert client.get(KEY) is None
    holder.renew()
    assert client.get(KEY) == b"slow" and holder.held


def test_a_lease_too_short_to_survive_a_batch_is_refused(client: Any) -> None:
    with pytest.raises(ValueError, match="half a second"):
        PartitionLease(client, KEY, ttl_seconds=0.1)
