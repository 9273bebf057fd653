"""Team budgets and rate limits on a scripted timeline, counted from the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from allo.errors import BudgetExceededError, InvalidInputError, RateLimitedError
from allo.gateway.audit import AuditRecord, AuditStore, Outcome, utc_at
from allo.gateway.budget import BudgetGuard, TeamUsage, day_start
from allo.gateway.config import GatewaySettings, TeamBudget
from allo.testing.clock import ScriptedClock

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
MIDNIGHT = datetime(2026, 11, 27, tzinfo=UTC)


@pytest.fixture
def audit(db_url: str) -> Iterator[AuditStore]:
    store = AuditStore(db_url)
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def clock() -> ScriptedClock:
    return ScriptedClock(T0.timestamp())


def settings(**budgets: TeamBudget) -> GatewaySettings:
    default = budgets.pop("default", TeamBudget())
    return GatewaySettings(budgets=budgets, default_budget=default)


def spend(
    audit: AuditStore, clock: ScriptedClock, tokens: int, team: str = "support", **extra: Any
) -> None:
    """What the gateway does after a call: one audit record at the clock's time."""
    values: dict[str, Any] = {"model": "qwen-1.5b", "outcome": Outcome.OK}
    values.update(extra)
    audit.record(
        AuditRecord(
            user="agent-1",
            team=team,
            prompt_tokens=tokens,
            at=utc_at(clock.now()),
            **values,
        )
    )


# -- tokens per day ------------------------------------------------------------------------


def test_unlimited_when_no_budget_is_set(audit: AuditStore, clock: ScriptedClock) -> None:
    guard = BudgetGuard(settings(), audit, clock)
    for _ in range(5):
        spend(audit, clock, 10**9)
        guard.check("support", 10**9)
    assert guard.usage("support") == TeamUsage(
        tokens_today=5 * 10**9,
        limit=None,
        requests_last_minute=5,
        rpm_limit=None,
        resets_at=MIDNIGHT,
    )
    assert guard.usage("support").tokens_left is None


def test_budget_is_exceeded_exactly_at_the_limit(audit: AuditStore, clock: ScriptedClock) -> None:
    guard = BudgetGuard(settings(support=TeamBudget(tokens_per_day=1000)), audit, clock)
    spend(audit, clock, 600)
    guard.check("support", 400)  # lands exactly on the limit: allowed
    with pytest.raises(BudgetExceededError) as over:
        guard.check("support", 401)
    assert str(over.value) == (
        "team 'support' has used 600 of its 1,000 tokens today and this request needs about "
        "401; the budget resets at 2026-11-27 00:00 UTC (in 14 h 0 min). Try again then, or "
        "raise tokens_per_day in the team's entry in ALLO_GATEWAY__BUDGETS ('support')"
    )
    clock.advance(1)
    spend(audit, clock, 400)
    assert guard.usage("support").tokens_left == 0
    for estimate in (1, 0):  # spent: not even a call estimated at nothing
        with pytest.raises(BudgetExceededError, match="has spent its 1,000 tokens for today"):
            guard.check("support", estimate)


def test_budget_resets_at_utc_midnight(audit: AuditStore, clock: ScriptedClock) -> None:
    guard = BudgetGuard(settings(support=TeamBudget(tokens_per_day=100)), audit, clock)
    clock.set((MIDNIGHT - timedelta(seconds=30)).timestamp())
    spend(audit, clock, 100)
    clock.set((MIDNIGHT - timedelta(microseconds=1)).timestamp())
    with pytest.raises(BudgetExceededError, match=r"resets at 2026-11-27 00:00 UTC \(in 0 s\)"):
        guard.check("support", 1)
    clock.set(MIDNIGHT.timestamp())
    guard.check("support", 100)
    usage = guard.usage("support")
    assert usage.tokens_today == 0 and usage.resets_at == MIDNIGHT + timedelta(days=1)


def test_each_team_has_its_own_budget_or_the_default(
    audit: AuditStore, clock: ScriptedClock
) -> None:
    guard = BudgetGuard(
        settings(
            vip=TeamBudget(tokens_per_day=10_000),
            default=TeamBudget(tokens_per_day=100, requests_per_minute=50),
        ),
        audit,
        clock,
    )
    spend(audit, clock, 500, team="vip")
    guard.check("vip", 500)
    with pytest.raises(BudgetExceededError) as caught:
        guard.check("sales", 500)
    assert "ALLO_GATEWAY__DEFAULT_BUDGET, or give 'sales' its own" in str(caught.value)
    # Teams under the default budget each have their own count.
    spend(audit, clock, 100, team="sales")
    with pytest.raises(BudgetExceededError):
        guard.check("sales", 1)
    guard.check("billing", 100)
    assert guard.usage("vip") == TeamUsage(500, 10_000, 1, None, MIDNIGHT)
    assert guard.usage("billing") == TeamUsage(0, 100, 0, 50, MIDNIGHT)


def test_failed_calls_count_their_tokens(audit: AuditStore, clock: ScriptedClock) -> None:
    guard = BudgetGuard(settings(support=TeamBudget(tokens_per_day=100)), audit, clock)
    spend(audit, clock, 90, outcome=Outcome.FAILED, error_type="ModelError")
    with pytest.raises(BudgetExceededError):
        guard.check("support", 20)


def test_negative_estimate_is_refused(audit: AuditStore, clock: ScriptedClock) -> None:
    with pytest.raises(InvalidInputError, match="estimated_tokens"):
        BudgetGuard(settings(), audit, clock).check("support", -1)


def test_day_start_is_utc_midnight() -> None:
    assert day_start(datetime(2026, 11, 26, 23, 59, 59, 999999, tzinfo=UTC)) == datetime(
        2026, 11, 26, tzinfo=UTC
    )


# -- requests per minute -------------------------------------------------------------------


def test_rate_limit_window_slides_and_says_when_to_retry(
    audit: AuditStore, clock: ScriptedClock
) -> None:
    guard = BudgetGuard(settings(support=TeamBudget(requests_per_minute=3)), audit, clock)
    for _ in range(3):  # at T0, T0+10, T0+20
        guard.check("support", 10)
        spend(audit, clock, 10)
        clock.advance(10)
    clock.set((T0 + timedelta(seconds=30)).timestamp())
    with pytest.raises(RateLimitedError) as limited:
        guard.check("support", 10)
    assert limited.value.retry_after == pytest.approx(30.0)
    assert limited.value.retryable
    assert str(limited.value) == (
        "team 'support' made 3 model calls in the last 60 s and may make 3 per minute; "
        "retry in 30.0 s, or raise requests_per_minute in the team's entry in "
        "ALLO_GATEWAY__BUDGETS ('support')"
    )
    clock.set((T0 + timedelta(seconds=59.5)).timestamp())
    with pytest.raises(RateLimitedError) as still:
        guard.check("support", 10)
    assert still.value.retry_after == pytest.approx(0.5)
    # Exactly 60 s after the first call it has left the window.
    clock.set((T0 + timedelta(seconds=60)).timestamp())
    assert guard.usage("support").requests_last_minute == 2
    guard.check("support", 10)
    spend(audit, clock, 10)
    with pytest.raises(RateLimitedError) as again:
        guard.check("support", 10)
    assert again.value.retry_after == pytest.approx(10.0)  # the call at T0+10 leaves next


def test_retry_after_waits_for_enough_calls_to_leave(
    audit: AuditStore, clock: ScriptedClock
) -> None:
    # Four calls in the window (made under a looser limit, or by several processes at
    # once) and a limit of two: the window must lose three of them, so wait for the third.
    for _ in range(4):
        spend(audit, clock, 1)
        clock.advance(1)
    clock.set((T0 + timedelta(seconds=5)).timestamp())
    guard = BudgetGuard(settings(support=TeamBudget(requests_per_minute=2)), audit, clock)
    with pytest.raises(RateLimitedError) as limited:
        guard.check("support", 1)
    assert limited.value.retry_after == pytest.approx(57.0)
    clock.set((T0 + timedelta(seconds=62)).timestamp())
    guard.check("support", 1)


def test_refused_calls_do_not_fill_the_window(audit: AuditStore, clock: ScriptedClock) -> None:
    guard = BudgetGuard(settings(support=TeamBudget(requests_per_minute=1)), audit, clock)
    spend(audit, clock, 5)
    clock.advance(1)
    for outcome in (Outcome.RATE_LIMITED, Outcome.BUDGET):
        with pytest.raises(RateLimitedError):
            guard.check("support", 5)
        spend(audit, clock, 0, model="", outcome=outcome)
    clock.set((T0 + timedelta(seconds=60)).timestamp())
    guard.check("support", 5)  # the rejections were not counted as calls


def test_zero_requests_per_minute_blocks_the_team(audit: AuditStore, clock: ScriptedClock) -> None:
    guard = BudgetGuard(settings(default=TeamBudget(requests_per_minute=0)), audit, clock)
    with pytest.raises(BudgetExceededError, match="may make no model calls"):
        guard.check("support", 1)


def test_token_budget_is_checked_before_the_rate(audit: AuditStore, clock: ScriptedClock) -> None:
    guard = BudgetGuard(
        settings(support=TeamBudget(tokens_per_day=10, requests_per_minute=1)), audit, clock
    )
    spend(audit, clock, 10)
    with pytest.raises(BudgetExceededError):  # waiting a minute would not help
        guard.check("support", 1)


# -- across processes and restarts ---------------------------------------------------------


def test_limits_hold_across_stores_and_restarts(db_url: str, clock: ScriptedClock) -> None:
    config = settings(support=TeamBudget(tokens_per_day=100, requests_per_minute=2))
    first, second = AuditStore(db_url), AuditStore(db_url)
    first.migrate()
    second.migrate()
    spend(first, clock, 40)  # one worker
    clock.advance(1)
    spend(second, clock, 40)  # another worker, same database
    with pytest.raises(RateLimitedError):
        BudgetGuard(config, first, clock).check("support", 10)
    first.close()
    second.close()

    restarted = AuditStore(db_url)
    restarted.migrate()
    guard = BudgetGuard(config, restarted, clock)
    assert guard.usage("support") == TeamUsage(80, 100, 2, 2, MIDNIGHT)
    clock.advance(60)
    guard.check("support", 20)
    with pytest.raises(BudgetExceededError, match="has used 80 of its 100 tokens"):
        guard.check("support", 21)
    restarted.close()
