"""``allo audit list`` and ``allo audit usage`` in-process, on a scripted clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from allo.cli import audit as audit_cli
from allo.config import load_settings
from allo.gateway.audit import AuditRecord, AuditStore, Outcome
from allo.testing.clock import ScriptedClock

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ALLO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ALLO_EMBEDDER", "fake")
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setattr(audit_cli, "_clock", lambda: ScriptedClock(NOW.timestamp()))
    return tmp_path


def seed() -> list[AuditRecord]:
    records = [
        AuditRecord(
            user="agent-1",
            team="support",
            model="qwen-1.5b",
            outcome=Outcome.OK,
            prompt_tokens=300,
            completion_tokens=50,
            cost=0.02,
            redacted={"phone": 2},
            at=NOW - timedelta(hours=2),
        ),
        AuditRecord(
            user="agent-2",
            team="support",
            model="",
            outcome=Outcome.RATE_LIMITED,
            at=NOW - timedelta(seconds=20),
        ),
        AuditRecord(
            user="agent-2",
            team="support",
            model="mistral-large",
            outcome=Outcome.FAILED,
            error_type="ModelTimeoutError",
            prompt_tokens=100,
            at=NOW - timedelta(seconds=10),
        ),
        AuditRecord(
            user="noc-bot",
            team="noc",
            model="qwen-0.5b",
            outcome=Outcome.OK,
            prompt_tokens=1000,
            cost=0.5,
            at=NOW - timedelta(days=3),
        ),
    ]
    store = AuditStore(load_settings().resolved_database_url)
    store.migrate()
    for record in records:
        store.record(record)
    store.close()
    return records


def test_list_shows_a_table_newest_first(env: Path) -> None:
    seed()
    result = runner.invoke(audit_cli.app, ["list"])
    assert result.exit_code == 0, result.output
    assert "Model calls 1-4 of 4, newest first" in result.output
    lines = result.output.splitlines()
    order = [
        n
        for n, line in enumerate(lines)
        for word in ("ModelTimeoutError", "noc-bot")
        if word in line
    ]
    assert len(order) == 2 and order[0] < order[1]
    assert "phone:2" in result.output and "rate_limited" in result.output


def test_list_filters_and_json(env: Path) -> None:
    records = seed()
    result = runner.invoke(audit_cli.app, ["list", "--team", "support", "--since", "24h", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["total"] == 3
    assert [r["id"] for r in body["records"]] == [records[2].id, records[1].id, records[0].id]
    assert body["records"][0]["error_type"] == "ModelTimeoutError"
    assert body["records"][2]["redacted"] == {"phone": 2}

    def listed(*args: str) -> list[str]:
        output = runner.invoke(audit_cli.app, ["list", "--json", *args]).output
        return [record["id"] for record in json.loads(output)["records"]]

    assert listed("--since", "1h") == [records[2].id, records[1].id]
    assert listed("--since", "2026-11-26") == [records[2].id, records[1].id, records[0].id]
    assert listed("--until", "2026-11-26T14:30+01:00") == [records[0].id, records[3].id]
    assert listed("--outcome", "failed") == [records[2].id]
    assert listed("--user", "noc-bot") == [records[3].id]
    assert listed("--model", "qwen-1.5b") == [records[0].id]
    assert listed("--limit", "1", "--offset", "1") == [records[1].id]


@pytest.mark.parametrize("since", ["yesterday", "24", "-3h", "2026-13-01", "99999999999d"])
def test_bad_since_is_a_clear_usage_error(env: Path, since: str) -> None:
    result = runner.invoke(audit_cli.app, ["list", "--since", since])
    assert result.exit_code == 2
    assert "--since" in result.output and "is not a moment" in result.output
    assert "24h" in result.output  # says what would do


def test_unknown_outcome_is_refused(env: Path) -> None:
    result = runner.invoke(audit_cli.app, ["list", "--outcome", "great"])
    assert result.exit_code == 2 and "rate_limited" in result.output


def test_empty_log(env: Path) -> None:
    result = runner.invoke(audit_cli.app, ["list"])
    assert result.exit_code == 0 and "no audit record matches" in result.output


def test_usage_against_budgets(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "ALLO_GATEWAY__BUDGETS",
        '{"support": {"tokens_per_day": 1000, "requests_per_minute": 5}, "sales": {}}',
    )
    monkeypatch.setenv("ALLO_GATEWAY__DEFAULT_BUDGET", '{"tokens_per_day": 500}')
    seed()
    result = runner.invoke(audit_cli.app, ["usage", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["resets_at"] == "2026-11-27T00:00:00+00:00"
    assert body["default_budget"] == {"tokens_per_day": 500, "requests_per_minute": None}
    teams = {team["team"]: team for team in body["teams"]}
    assert sorted(teams) == ["sales", "support"]  # noc made no call today
    assert teams["support"] == {
        "team": "support",
        "tokens_today": 450,
        "tokens_per_day": 1000,
        "tokens_left": 550,
        "requests_last_minute": 1,
        "requests_per_minute": 5,
        "requests_today": 2,
        "rejected_today": 1,
        "cost_today": pytest.approx(0.02),
        "own_budget": True,
    }
    assert teams["sales"]["tokens_today"] == 0 and teams["sales"]["tokens_per_day"] is None

    table = runner.invoke(audit_cli.app, ["usage"])
    assert table.exit_code == 0, table.output
    assert "500 tokens/day, unlimited calls/min" in table.output
    assert "support" in table.output and "45%" in table.output and "1,000" in table.output


def test_usage_with_nothing_recorded(env: Path) -> None:
    result = runner.invoke(audit_cli.app, ["usage"])
    assert result.exit_code == 0, result.output
    assert "no model call recorded today" in result.output
    assert "unlimited tokens/day" in result.output
