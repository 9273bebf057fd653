"""The gateway's audit log on SQLite and on PostgreSQL: records, filters, counts, schema."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, insert, inspect, text

from allo.assistant.store import ConversationStore
from allo.errors import InvalidInputError, NotFoundError, StorageError
from allo.gateway.audit import AuditRecord, AuditStore, Outcome, TeamTotals, call_cost, utc_at
from allo.gateway.config import DataClass, ModelSpec, ProviderKind
from allo.storage.schema import store_meta
from allo.storage.sql import _MIGRATIONS, LATEST_REVISION, SqlStore

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[AuditStore]:
    audit = AuditStore(db_url)
    audit.migrate()
    yield audit
    audit.close()


def call(**overrides: Any) -> AuditRecord:
    values: dict[str, Any] = {
        "user": "agent-42",
        "team": "support",
        "model": "qwen-1.5b",
        "outcome": Outcome.OK,
        "at": T0,
    }
    values.update(overrides)
    return AuditRecord(**values)


def full_record() -> AuditRecord:
    return AuditRecord(
        user="marie.dupont@ondea.example",
        team="support-n2",
        model="mistral-large",
        outcome=Outcome.FALLBACK,
        data_class=DataClass.INTERNAL,
        purpose="summary",
        attempts=("gpt-4o", "mistral-large"),
        document_ids=("3f2a9c" * 5 + "ab", "doc-17"),
        redacted={"phone": 2, "iban": 1, "email": 0},
        prompt_tokens=1234,
        completion_tokens=321,
        cost=0.01245,
        latency_ms=812.5,
        error_type="ModelTimeoutError",
        at=datetime(2026, 11, 26, 11, 30, 15, 123456, tzinfo=UTC),
    )


# -- records ------------------------------------------------------------------------------


def test_record_round_trips_every_field(store: AuditStore) -> None:
    record = full_record()
    store.record(record)
    assert store.get(record.id) == record
    assert store.query() == [record]
    found = store.get(record.id)
    assert found.at.tzinfo is not None and found.at.utcoffset() == timedelta(0)
    assert found.total_tokens == 1555
    assert found.to_json()["redacted"] == {"email": 0, "iban": 1, "phone": 2}
    assert json.loads(json.dumps(found.to_json()))["at"] == "2026-11-26T11:30:15.123456+00:00"


def test_record_defaults_and_normalisation() -> None:
    paris = datetime(2026, 11, 26, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    record = AuditRecord(user="u", team="t", model="", outcome="budget", at=paris)  # type: ignore[arg-type]
    assert record.outcome is Outcome.BUDGET and record.data_class is None
    assert record.at.tzinfo is UTC and record.at == paris
    assert len(record.id) == 32 and record.id != call().id
    assert utc_at(T0.timestamp()) == T0


def test_new_takes_a_clock_reading_and_plain_strings(store: AuditStore) -> None:
    record = AuditRecord.new(
        at=T0.timestamp() + 0.25,
        user="agent-1",
        team="support",
        model="qwen-1.5b",
        outcome="fallback",
        data_class="confidential",
        attempts=["gpt-4o", "qwen-1.5b"],
        document_ids=iter(["doc-1"]),
        redacted={"nir": 1},
        prompt_tokens=5,
    )
    assert record.at == T0 + timedelta(milliseconds=250)
    assert record.outcome is Outcome.FALLBACK and record.data_class is DataClass.CONFIDENTIAL
    assert record.attempts == ("gpt-4o", "qwen-1.5b") and record.document_ids == ("doc-1",)
    store.record(record)
    assert store.get(record.id) == record
    with pytest.raises(InvalidInputError, match="audit record"):
        AuditRecord.new(at=0.0, user="u", team="t", model="m", outcome="great")


def test_recording_the_same_id_twice_keeps_one_row(store: AuditStore) -> None:
    record = call(prompt_tokens=10)
    store.record(record)
    store.record(record)
    assert store.count() == 1
    assert store.tokens_used("support", T0) == 10


def test_unknown_id_is_not_found(store: AuditStore) -> None:
    with pytest.raises(NotFoundError, match="allo audit list"):
        store.get("0" * 32)


def test_records_persist_across_reopening(db_url: str) -> None:
    first = AuditStore(db_url)
    first.migrate()
    record = full_record()
    first.record(record)
    first.close()
    second = AuditStore(db_url)
    second.migrate()
    assert second.get(record.id) == record
    assert second.tokens_used("support-n2", T0) == 1555
    second.close()


def test_call_cost_uses_the_prices_per_thousand_tokens() -> None:
    spec = ModelSpec(
        name="gpt",
        provider=ProviderKind.OPENAI,
        model="gpt-4o",
        base_url="https://api.openai.com/v1",
        cost_per_1k_input=0.005,
        cost_per_1k_output=0.015,
    )
    assert call_cost(spec, 2000, 500) == pytest.approx(0.0175)
    assert call_cost(ModelSpec(name="x", provider=ProviderKind.EXTRACTIVE), 10, 10) == 0.0


# -- filters and order -------------------------------------------------------------------


def seed(store: AuditStore) -> list[AuditRecord]:
    records = [
        call(at=T0, team="support", user="a", model="qwen-1.5b"),
        call(at=T0 + timedelta(minutes=1), team="noc", user="b", model="mistral-large"),
        call(
            at=T0 + timedelta(minutes=2),
            team="support",
            user="b",
            model="mistral-large",
            outcome=Outcome.FAILED,
            error_type="ModelError",
        ),
        call(at=T0 + timedelta(minutes=3), team="support", user="a", model="", outcome="budget"),
        call(at=T0 + timedelta(minutes=4), team="noc", user="a", model="qwen-1.5b"),
    ]
    for record in records:
        store.record(record)
    return records


def ids(records: list[AuditRecord]) -> list[str]:
    return [record.id for record in records]


def test_query_filters(store: AuditStore) -> None:
    r = seed(store)
    assert ids(store.query(team="support")) == ids([r[3], r[2], r[0]])
    assert ids(store.query(user="b")) == ids([r[2], r[1]])
    assert ids(store.query(model="qwen-1.5b")) == ids([r[4], r[0]])
    assert ids(store.query(outcome=Outcome.FAILED)) == ids([r[2]])
    assert ids(store.query(outcome="budget")) == ids([r[3]])
    # since is inclusive, until exclusive
    window = store.query(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3))
    assert ids(window) == ids([r[2], r[1]])
    assert ids(store.query(team="support", user="a", since=T0 + timedelta(seconds=1))) == ids(
        [r[3]]
    )
    assert store.query(team="nobody") == []
    assert store.count(team="support") == 3 and store.count() == 5


def test_times_in_other_zones_and_naive_times_mean_the_same_moment(store: AuditStore) -> None:
    r = seed(store)
    plus_two = T0.astimezone(timezone(timedelta(hours=2)))
    naive = (T0 + timedelta(minutes=4)).replace(tzinfo=None)
    assert ids(store.query(since=plus_two + timedelta(minutes=4))) == ids([r[4]])
    assert ids(store.query(since=naive)) == ids([r[4]])


def test_bad_filters_are_clear_errors(store: AuditStore) -> None:
    with pytest.raises(InvalidInputError, match="unknown outcome 'great'; use one of ok, "):
        store.query(outcome="great")
    with pytest.raises(InvalidInputError, match="limit must be between 1 and 1000"):
        store.query(limit=0)
    with pytest.raises(InvalidInputError, match="offset"):
        store.query(offset=-1)


def test_newest_first_and_pages_do_not_overlap(store: AuditStore) -> None:
    same_moment = [call(at=T0, purpose=f"p{index}") for index in range(5)]
    later = call(at=T0 + timedelta(microseconds=1))
    for record in [*same_moment, later]:
        store.record(record)
    everything = store.query()
    # Newest first; calls recorded in the same microsecond: the last recorded first.
    assert ids(everything) == ids([later, *reversed(same_moment)])
    pages = [store.query(limit=2, offset=offset) for offset in (0, 2, 4, 6)]
    assert [ids(page) for page in pages] == [
        ids(everything[0:2]),
        ids(everything[2:4]),
        ids(everything[4:6]),
        [],
    ]


# -- counts for budgets ------------------------------------------------------------------


def test_tokens_requests_and_usage_by_team(store: AuditStore) -> None:
    store.record(call(at=T0, prompt_tokens=100, completion_tokens=20, cost=0.5))
    store.record(call(at=T0 + timedelta(seconds=10), prompt_tokens=50, cost=0.25))
    store.record(call(at=T0 + timedelta(seconds=20), model="", outcome=Outcome.RATE_LIMITED))
    store.record(call(at=T0 + timedelta(seconds=30), model="", outcome=Outcome.BUDGET))
    store.record(call(at=T0 + timedelta(seconds=40), outcome=Outcome.REFUSED, model=""))
    store.record(call(at=T0, team="noc", prompt_tokens=7, completion_tokens=3, cost=1.0))
    store.record(call(at=T0 - timedelta(days=1), prompt_tokens=10_000, cost=9.0))

    assert store.tokens_used("support", T0) == 170
    assert store.tokens_used("support", T0 - timedelta(days=2)) == 10_170
    assert store.tokens_used("nobody", T0) == 0
    # Calls the budget guard turned away are not requests of the rate-limit window.
    assert store.requests_since("support", T0) == 3
    assert store.requests_since("support", T0 + timedelta(seconds=11)) == 1
    assert store.request_at("support", T0, 0) == T0
    assert store.request_at("support", T0, 2) == T0 + timedelta(seconds=40)
    assert store.request_at("support", T0, 3) is None
    assert store.usage_by_team(T0) == [
        TeamTotals(team="noc", tokens=10, requests=1, rejected=0, cost=1.0),
        TeamTotals(team="support", tokens=170, requests=3, rejected=2, cost=0.75),
    ]
    assert store.usage_by_team(T0 + timedelta(days=1)) == []


# -- nothing personal can be stored ------------------------------------------------------

EXPECTED_COLUMNS = {
    "seq": "integer",
    "id": "string",
    "at": "datetime",
    "user_id": "string",
    "team": "string",
    "model": "string",
    "attempts": "json list of model names",
    "data_class": "string",
    "purpose": "string",
    "document_ids": "json list of ids",
    "redacted": "json counts",
    "prompt_tokens": "integer",
    "completion_tokens": "integer",
    "cost": "float",
    "latency_ms": "float",
    "outcome": "string",
    "error_type": "string",
}


def test_schema_has_no_column_for_free_text(store: AuditStore) -> None:
    columns = inspect(store._sql.engine).get_columns("gateway_audit")
    assert {column["name"] for column in columns} == set(EXPECTED_COLUMNS)
    unbounded = {
        column["name"] for column in columns if getattr(column["type"], "length", 0) is None
    }
    assert unbounded == {"attempts", "document_ids", "redacted"}  # JSON, checked on the way in
    for column in columns:
        length = getattr(column["type"], "length", None)
        assert length is None or length <= 128, column["name"]
    fields = set(AuditRecord.__dataclass_fields__)
    for word in ("text", "question", "answer", "prompt", "completion", "message", "content"):
        assert not any(name == word or name.endswith(f"_{word}") for name in fields), word
        assert word not in EXPECTED_COLUMNS


def test_json_columns_hold_identifiers_and_counts_only(store: AuditStore) -> None:
    record = full_record()
    store.record(record)
    with store._sql.engine.connect() as connection:
        row = connection.execute(text("SELECT attempts, document_ids, redacted FROM gateway_audit"))
        attempts, documents, redacted = row.one()
    assert json.loads(attempts) == ["gpt-4o", "mistral-large"]
    assert json.loads(documents) == list(record.document_ids)
    assert json.loads(redacted) == {"email": 0, "iban": 1, "phone": 2}
    assert all(isinstance(count, int) for count in json.loads(redacted).values())


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"error_type": "timeout while asking 'mon IBAN FR76...'"}, "type\\(error\\).__name__"),
        ({"redacted": {"FR76 3000 6000 0112 3456 7890 189": 1}}, "never the values"),
        ({"redacted": {"phone": "2"}}, "count"),
        ({"redacted": {"phone": -1}}, "count"),
        ({"user": "Jean Dupont, 06 12 34 56 78"}, "not an identifier"),
        ({"purpose": "répondre à la question du client"}, "not an identifier"),
        ({"document_ids": ("une phrase entière",)}, "not an identifier"),
        ({"team": ""}, "not an identifier"),
        ({"team": "t" * 65}, "not an identifier"),
        ({"prompt_tokens": -5}, "count"),
        ({"cost": float("nan")}, "finite"),
        ({"latency_ms": -1.0}, "finite"),
        ({"outcome": "great"}, "audit record"),
        ({"data_class": "secret"}, "audit record"),
        ({"id": "not-a-uuid"}, "32 lowercase hex"),
        ({"at": datetime(2026, 11, 26, 10, 0)}, "timezone-aware"),
    ],
)
def test_anything_but_identifiers_and_counts_is_refused(
    overrides: dict[str, Any], match: str
) -> None:
    with pytest.raises(InvalidInputError, match=match) as caught:
        call(**overrides)
    # The refused value is never echoed (it may be the personal data itself).
    assert "06 12" not in str(caught.value) and "FR76" not in str(caught.value)
    assert "question" not in str(caught.value)


def test_write_failure_names_the_error_not_the_row(tmp_path: Path) -> None:
    store = AuditStore(f"sqlite:///{tmp_path / 'empty.db'}")  # never migrated
    with pytest.raises(StorageError, match="could not write audit record") as caught:
        store.record(call(user="marie.dupont@ondea.example"))
    assert "marie" not in str(caught.value) and "migrate" in str(caught.value)
    store.close()


# -- migration ----------------------------------------------------------------------------


def test_upgrade_from_0003_keeps_existing_data(db_url: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    old = SqlStore(db_url)
    with old.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
    assert old.schema_revision() == "0003"
    conversations = ConversationStore(db_url)
    conversations.create("c1", "hash-of-a-customer", 1.0)
    with old.engine.begin() as connection:
        connection.execute(insert(store_meta).values(key="marker", value=7))
    assert "gateway_audit" not in inspect(old.engine).get_table_names()
    old.close()

    store = AuditStore(db_url)
    store.migrate()
    assert SqlStore(db_url).schema_revision() == LATEST_REVISION >= "0004"  # the audit: 0004
    store.record(call(prompt_tokens=3))
    assert store.tokens_used("support", T0) == 3
    conversation = conversations.get("c1")
    assert conversation is not None and conversation.customer_hash == "hash-of-a-customer"
    indexes = {index["name"] for index in inspect(store._sql.engine).get_indexes("gateway_audit")}
    assert {"ix_gateway_audit_at", "ix_gateway_audit_team_at"} <= indexes

    # And back down: the audit table goes, everything else stays.
    with store._sql.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0003")
    assert "gateway_audit" not in inspect(store._sql.engine).get_table_names()
    assert conversations.get("c1") is not None
    with store._sql.engine.connect() as connection:
        marker = connection.execute(text("SELECT value FROM store_meta WHERE key = 'marker'"))
        assert marker.scalar_one() == 7
    conversations.close()
    store.close()


# -- a kill leaves each record committed or absent ---------------------------------------

WRITER = """
import sys
from datetime import UTC, datetime, timedelta, timezone
from allo.gateway.audit import AuditRecord, AuditStore

store = AuditStore(sys.argv[1])
store.migrate()
start = datetime(2026, 11, 26, tzinfo=UTC)
index = 0
while True:
    store.record(AuditRecord(
        user="u", team="t", model="m", outcome="ok", prompt_tokens=index,
        document_ids=tuple(f"doc-{n}" for n in range(50)), redacted={"phone": index},
        at=start + timedelta(seconds=index),
    ))
    print(index, flush=True)
    index += 1
"""


def test_kill_during_writes_leaves_only_whole_records(tmp_path: Path) -> None:
    database = tmp_path / "allo.db"
    url = f"sqlite:///{database}"
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert child.stdout is not None
    committed = -1
    for line in child.stdout:
        committed = int(line)
        if committed >= 40:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()
    assert committed >= 40

    engine = create_engine(url)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
    engine.dispose()
    store = AuditStore(url)
    store.migrate()
    records = store.query(limit=1000)
    # Every record it said was committed is there, and every row there is whole.
    assert len(records) >= committed + 1
    for record in records:
        index = record.prompt_tokens
        assert record.redacted == {"phone": index} and len(record.document_ids) == 50
        assert record.at == datetime(2026, 11, 26, tzinfo=UTC) + timedelta(seconds=index)
    assert sorted(r.prompt_tokens for r in records) == list(range(len(records)))
    store.close()
