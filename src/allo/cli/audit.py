"""``allo audit``: read the model gateway's audit log and see where team budgets stand."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from allo.cli.common import console, handle_errors, settings
from allo.gateway.audit import MAX_PAGE, Outcome

if TYPE_CHECKING:
    from allo.clock import Clock
    from allo.config import Settings
    from allo.gateway.audit import AuditRecord, AuditStore
    from allo.gateway.config import TeamBudget

app = typer.Typer(
    help="The model gateway's audit log and the teams' budgets.", no_args_is_help=True
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
MOMENT_HELP = (
    "a date (2026-11-26, UTC midnight), a date and time (2026-11-26T14:30, UTC unless an "
    "offset is given) or a duration back from now (90s, 15m, 24h, 7d, 2w)"
)
_DURATION = re.compile(r"(\d{1,9})\s*(s|sec|m|min|h|d|w)", re.IGNORECASE)
_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def _clock() -> Clock:
    """The clock that says "now" for durations and today's usage (tests script it)."""
    from allo.clock import SystemClock

    return SystemClock()


def _now() -> datetime:
    return datetime.fromtimestamp(_clock().now(), UTC)


def parse_moment(value: str, now: datetime, option: str = "--since") -> datetime:
    """A ``--since``/``--until`` value as a UTC moment; a bad one is a usage error."""
    text = value.strip()
    duration = _DURATION.fullmatch(text)
    try:
        if duration:
            return now - timedelta(seconds=int(duration[1]) * _SECONDS[duration[2].lower()])
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError) as exc:
        raise typer.BadParameter(
            f"{value!r} is not a moment; give {MOMENT_HELP}", param_hint=f"'{option}'"
        ) from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@contextmanager
def _store() -> Iterator[tuple[Settings, AuditStore]]:
    """Settings and the migrated audit store; Allo's errors become a message and exit code."""
    from allo.gateway.audit import AuditStore

    with handle_errors():
        config = settings()
        store = AuditStore(config.resolved_database_url)
        try:
            store.migrate()
            yield config, store
        finally:
            store.close()


def _redacted(record: AuditRecord) -> str:
    return " ".join(f"{kind}:{count}" for kind, count in record.redacted.items()) or "-"


@app.command("list")
def list_records(
    team: Annotated[str | None, typer.Option(help="Only this team's calls.")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user's calls.")] = None,
    model: Annotated[str | None, typer.Option(help="Only calls served by this model.")] = None,
    outcome: Annotated[Outcome | None, typer.Option(help="Only calls that ended so.")] = None,
    since: Annotated[str | None, typer.Option(help=f"From this moment: {MOMENT_HELP}.")] = None,
    until: Annotated[str | None, typer.Option(help="Before this moment (same forms).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=MAX_PAGE)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: JsonOption = False,
) -> None:
    """List model calls, newest first (who, which model, outcome, tokens, cost; no text)."""
    now = _now()
    start = None if since is None else parse_moment(since, now, "--since")
    end = None if until is None else parse_moment(until, now, "--until")
    filters: dict[str, Any] = {
        "team": team,
        "user": user,
        "model": model,
        "outcome": outcome,
        "since": start,
        "until": end,
    }
    with _store() as (_config, store):
        records = store.query(**filters, limit=limit, offset=offset)
        total = store.count(**filters)
    if as_json:
        body = {
            "total": total,
            "offset": offset,
            "limit": limit,
            "records": [record.to_json() for record in records],
        }
        print(json.dumps(body, ensure_ascii=False))
        return
    if not records:
        console.print(
            f"no audit record matches ({total} in all with these filters)", highlight=False
        )
        return
    table = Table(
        title=f"Model calls {offset + 1}-{offset + len(records)} of {total}, newest first"
    )
    for column in ("at (UTC)", "team", "user", "model", "outcome", "tokens", "cost", "ms"):
        table.add_column(column, justify="right" if column in ("tokens", "cost", "ms") else "left")
    for column in ("class", "purpose", "redacted", "error", "id"):
        table.add_column(column)
    for record in records:
        table.add_row(
            f"{record.at:%Y-%m-%d %H:%M:%S}",
            record.team,
            record.user,
            record.model or "-",
            str(record.outcome),
            f"{record.total_tokens:,}",
            f"{record.cost:.4f}",
            f"{record.latency_ms:.0f}",
            "-" if record.data_class is None else str(record.data_class),
            record.purpose,
            _redacted(record),
            record.error_type or "-",
            record.id,
        )
    console.print(table)


def _limit(value: int | None) -> str:
    return "unlimited" if value is None else f"{value:,}"


def _describe(budget: TeamBudget) -> str:
    return (
        f"{_limit(budget.tokens_per_day)} tokens/day, "
        f"{_limit(budget.requests_per_minute)} calls/min"
    )


@app.command("usage")
def usage(as_json: JsonOption = False) -> None:
    """Per team: tokens today against the daily budget, calls per minute, today's cost."""
    from allo.gateway.budget import BudgetGuard, day_start

    clock = _clock()
    with _store() as (config, store):
        today = day_start(datetime.fromtimestamp(clock.now(), UTC))
        totals = {entry.team: entry for entry in store.usage_by_team(today)}
        guard = BudgetGuard(config.gateway, store, clock)
        teams = sorted(set(config.gateway.budgets) | set(totals))
        rows: list[dict[str, Any]] = []
        for team in teams:
            state = guard.usage(team)
            total = totals.get(team)
            rows.append(
                {
                    "team": team,
                    "tokens_today": state.tokens_today,
                    "tokens_per_day": state.limit,
                    "tokens_left": state.tokens_left,
                    "requests_last_minute": state.requests_last_minute,
                    "requests_per_minute": state.rpm_limit,
                    "requests_today": 0 if total is None else total.requests,
                    "rejected_today": 0 if total is None else total.rejected,
                    "cost_today": 0.0 if total is None else total.cost,
                    "own_budget": team in config.gateway.budgets,
                }
            )
        resets = today + timedelta(days=1)
        default = config.gateway.default_budget
    if as_json:
        body = {
            "since": today.isoformat(),
            "resets_at": resets.isoformat(),
            "default_budget": default.model_dump(),
            "teams": rows,
        }
        print(json.dumps(body, ensure_ascii=False))
        return
    console.print(
        f"teams without their own budget: {_describe(default)}; the day resets at "
        f"{resets:%Y-%m-%d %H:%M} UTC",
        highlight=False,
    )
    if not rows:
        console.print("no model call recorded today and no team budget configured")
        return
    table = Table(title=f"Gateway use on {today:%Y-%m-%d} (UTC)")
    table.add_column("team")
    for column in ("tokens today", "tokens/day", "used", "calls last min", "calls/min"):
        table.add_column(column, justify="right")
    for column in ("calls today", "rejected", "cost today"):
        table.add_column(column, justify="right")
    for row in rows:
        limit = row["tokens_per_day"]
        share = f"{row['tokens_today'] / limit:.0%}" if limit else "spent"
        used = "-" if limit is None else share
        table.add_row(
            row["team"] + ("" if row["own_budget"] else " (default)"),
            f"{row['tokens_today']:,}",
            _limit(limit),
            used,
            str(row["requests_last_minute"]),
            _limit(row["requests_per_minute"]),
            f"{row['requests_today']:,}",
            f"{row['rejected_today']:,}",
            f"{row['cost_today']:.4f}",
        )
    console.print(table)
