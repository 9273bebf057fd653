"""Team budgets: tokens per UTC day and requests per minute, counted from the audit log.

:class:`BudgetGuard` is asked before every model call. It reads what the team already
used from the audit log (not from a counter in memory), so the limits hold across the
processes of a deployment and across restarts. The day runs from UTC midnight to UTC
midnight; the request window slides over the last 60 seconds, and a refused caller is
told how long to wait until enough of the calls in it have left.

Two calls admitted at the same moment by two processes may both pass: the limits are
exact once the calls are recorded, not a lock around them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from allo.clock import Clock, SystemClock
from allo.errors import BudgetExceededError, InvalidInputError, RateLimitedError
from allo.gateway.audit import AuditStore, utc_at
from allo.gateway.config import GatewaySettings, TeamBudget

__all__ = ["WINDOW", "BudgetGuard", "TeamUsage", "day_start"]

WINDOW = timedelta(seconds=60)
# Datetimes are stored to the microsecond: a request admitted at ``t`` counts while
# ``now - 60 s < t``, i.e. the window's first moment is ``now - 60 s + 1 µs``.
_TICK = timedelta(microseconds=1)


def day_start(moment: datetime) -> datetime:
    """UTC midnight at the start of ``moment``'s day (``moment`` must be UTC)."""
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _wait(delta: timedelta) -> str:
    """A duration as a person reads it: ``3 h 12 min``, ``4 min``, ``12 s``."""
    seconds = max(int(delta.total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{seconds} s"


@dataclass(frozen=True, slots=True)
class TeamUsage:
    """Where a team stands: tokens today against its daily budget, requests in the last
    minute against its rate limit (``None``: unlimited), and when the day's count resets."""

    tokens_today: int
    limit: int | None
    requests_last_minute: int
    rpm_limit: int | None
    resets_at: datetime

    @property
    def tokens_left(self) -> int | None:
        """Tokens the team may still use today (``None``: unlimited)."""
        return None if self.limit is None else max(self.limit - self.tokens_today, 0)


class BudgetGuard:
    """Checks a team's budget and rate limit before a call; reads the audit log."""

    def __init__(
        self, settings: GatewaySettings, audit: AuditStore, clock: Clock | None = None
    ) -> None:
        self._settings = settings
        self._audit = audit
        self._clock: Clock = clock or SystemClock()

    def _setting(self, team: str) -> str:
        """The setting an operator changes to give ``team`` more."""
        if team in self._settings.budgets:
            return f"the team's entry in ALLO_GATEWAY__BUDGETS ({team!r})"
        return f"ALLO_GATEWAY__DEFAULT_BUDGET, or give {team!r} its own in ALLO_GATEWAY__BUDGETS"

    def check(self, caller_team: str, estimated_tokens: int) -> None:
        """Let the call through, or raise why not.

        :class:`BudgetExceededError` when the team's tokens today plus
        ``estimated_tokens`` would go over its daily budget (or it is spent);
        :class:`RateLimitedError` with ``retry_after`` (seconds) when the team already
        made ``requests_per_minute`` calls in the last 60 s.
        """
        if estimated_tokens < 0:
            raise InvalidInputError(f"estimated_tokens must be 0 or more, got {estimated_tokens}")
        now = utc_at(self._clock.now())
        budget = self._settings.budget_of(caller_team)
        self._check_tokens(caller_team, budget, estimated_tokens, now)
        self._check_rate(caller_team, budget, now)

    def _check_tokens(self, team: str, budget: TeamBudget, estimated: int, now: datetime) -> None:
        limit = budget.tokens_per_day
        if limit is None:
            return
        start = day_start(now)
        used = self._audit.tokens_used(team, start)
        if used < limit and used + estimated <= limit:
            return
        resets = start + timedelta(days=1)
        state = (
            f"has spent its {limit:,} tokens for today"
            if used >= limit
            else f"has used {used:,} of its {limit:,} tokens today and this request needs "
            f"about {estimated:,}"
        )
        raise BudgetExceededError(
            f"team {team!r} {state}; the budget resets at {resets:%Y-%m-%d %H:%M} UTC "
            f"(in {_wait(resets - now)}). Try again then, or raise tokens_per_day in "
            f"{self._setting(team)}"
        )

    def _check_rate(self, team: str, budget: TeamBudget, now: datetime) -> None:
        rpm = budget.requests_per_minute
        if rpm is None:
            return
        if rpm == 0:
            raise BudgetExceededError(
                f"team {team!r} may make no model calls: its requests_per_minute is 0; "
                f"raise it in {self._setting(team)}"
            )
        since = now - WINDOW + _TICK
        count = self._audit.requests_since(team, since)
        if count < rpm:
            return
        # The window drops below the limit when the (count - rpm + 1)-th oldest call leaves.
        leaving = self._audit.request_at(team, since, count - rpm)
        retry_after = WINDOW.total_seconds()
        if leaving is not None:
            retry_after = max((leaving + WINDOW - now).total_seconds(), _TICK.total_seconds())
        raise RateLimitedError(
            f"team {team!r} made {count} model calls in the last 60 s and may make {rpm} per "
            f"minute; retry in {retry_after:.1f} s, or raise requests_per_minute in "
            f"{self._setting(team)}",
            retry_after=retry_after,
        )

    def usage(self, team: str) -> TeamUsage:
        """The team's tokens today and calls in the last minute, against its limits."""
        now = utc_at(self._clock.now())
        budget = self._settings.budget_of(team)
        start = day_start(now)
        return TeamUsage(
            tokens_today=self._audit.tokens_used(team, start),
            limit=budget.tokens_per_day,
            requests_last_minute=self._audit.requests_since(team, now - WINDOW + _TICK),
            rpm_limit=budget.requests_per_minute,
            resets_at=start + timedelta(days=1),
        )
