"""The gateway's audit log: one record per model call, kept in the shared database.

Every call through the gateway leaves an :class:`AuditRecord`, whatever its outcome:
who asked (user, team), which model served it and which were tried, the data class,
the purpose, the ids of the documents it carried, how many items of each kind of
personal data were redacted, tokens, cost, latency, the outcome and, on failure, the
*type* of the error. A record never holds the question, the answer, an error message or
a redacted value: :class:`AuditRecord` refuses anything that does not look like an
identifier or a count, and the table (migration ``0004_gateway_audit``) has no column
for free text.

:class:`AuditStore` writes each record in one transaction (a killed process leaves it
committed or absent) and answers the questions budgets and operators ask: the tokens a
team used since a moment, its requests in a window, usage per team, and filtered pages
of records, newest first.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    case,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from allo.errors import InvalidInputError, NotFoundError, StorageError
from allo.gateway.config import DataClass, ModelSpec
from allo.storage.sql import SqlBacked

__all__ = [
    "MAX_PAGE",
    "REJECTED",
    "AuditRecord",
    "AuditStore",
    "Outcome",
    "TeamTotals",
    "audit_table",
    "call_cost",
    "utc_at",
]

MAX_PAGE = 1000


class Outcome(StrEnum):
    """How a call through the gateway ended."""

    OK = "ok"  # the model asked for (or the default) answered
    FALLBACK = "fallback"  # another model answered: the first failed or could not take the data
    REFUSED = "refused"  # the data policy allowed no model that could serve it
    INVALID = "invalid"  # the request cannot be served as it is (too long for every model...)
    FAILED = "failed"  # every model tried failed (``error_type`` says how)
    CANCELLED = "cancelled"  # the caller went away before the end (a stream closed early)
    BUDGET = "budget"  # the team's daily token budget was spent: no model called
    RATE_LIMITED = "rate_limited"  # too many requests in the last minute: no model called


# Calls turned away by the budget guard itself: they never reached a model, so they do
# not count as requests in the rate-limit window (a client retrying after ``retry_after``
# gets through).
REJECTED = frozenset({Outcome.BUDGET, Outcome.RATE_LIMITED})

# Created (with its indexes) by migration 0004_gateway_audit; declared here for queries.
metadata = MetaData()
audit_table = Table(
    "gateway_audit",
    metadata,
    Column(
        "seq",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("id", String(32), nullable=False, unique=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("team", String(64), nullable=False),
    Column("model", String(64), nullable=False),
    Column("attempts", Text, nullable=False),
    Column("data_class", String(16)),
    Column("purpose", String(32), nullable=False),
    Column("document_ids", Text, nullable=False),
    Column("redacted", Text, nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cost", Float, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("error_type", String(128)),
)

# What may go in the identifier fields: no spaces, so no sentence fits.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@+-]*")
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
_ERROR_TYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,127}")
_ID = re.compile(r"[0-9a-f]{32}")


def utc_at(seconds: float) -> datetime:
    """The UTC moment of a clock reading (seconds since the Unix epoch)."""
    return datetime.fromtimestamp(seconds, UTC)


def _utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken as UTC, like everything Allo stores."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def call_cost(spec: ModelSpec, prompt_tokens: int, completion_tokens: int) -> float:
    """What a call cost, from the model's declared prices per 1,000 tokens."""
    return (
        prompt_tokens * spec.cost_per_1k_input + completion_tokens * spec.cost_per_1k_output
    ) / 1000.0


def _new_id() -> str:
    return uuid.uuid4().hex


def _now() -> datetime:
    return datetime.now(UTC)


def _name(what: str, value: str, limit: int, *, empty: bool = False) -> None:
    if value == "" and empty:
        return
    if len(value) > limit or not _NAME.fullmatch(value):
        # The value is not quoted: what failed the check may be personal data.
        raise InvalidInputError(
            f"audit {what} is not an identifier ({len(value)} characters): give at most "
            f"{limit} letters, digits or _ . : @ + - with no spaces (free text never goes in "
            "the audit log)"
        )


def _count(what: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"audit {what} must be a count (an int >= 0), got {value!r}")


def _amount(what: str, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise InvalidInputError(f"audit {what} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One call through the gateway, as the audit log keeps it.

    ``model`` is the model that served the call, or the last one tried (``""`` when none
    was called: budget, rate limit, policy refusal); ``attempts`` the models tried, in
    order. ``redacted`` counts the personal data items removed, per kind (``{"phone": 2}``),
    never their values. ``error_type`` is an exception's class name, never its message.
    ``at`` is when the call was admitted (the gateway's clock, see :func:`utc_at`): the
    rate-limit window counts calls from it.
    """

    user: str
    team: str
    model: str
    outcome: Outcome
    data_class: DataClass | None = None
    purpose: str = "answer"
    attempts: tuple[str, ...] = ()
    document_ids: tuple[str, ...] = ()
    redacted: Mapping[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency_ms: float = 0.0
    error_type: str | None = None
    id: str = field(default_factory=_new_id)
    at: datetime = field(default_factory=_now)

    def __post_init__(self) -> None:
        try:
            outcome = Outcome(self.outcome)
            data_class = None if self.data_class is None else DataClass(self.data_class)
        except ValueError as exc:
            raise InvalidInputError(f"audit record: {exc}") from exc
        _name("user", self.user, 128)
        _name("team", self.team, 64)
        _name("model", self.model, 64, empty=True)
        _name("purpose", self.purpose, 32)
        for name in self.attempts:
            _name("attempted model", name, 64)
        for document_id in self.document_ids:
            _name("document id", document_id, 128)
        for kind, count in self.redacted.items():
            if not isinstance(kind, str) or not _KIND.fullmatch(kind):
                raise InvalidInputError(
                    "audit redaction counts must be keyed by kind names (like 'phone' or "
                    "'iban'): the audit log keeps counts per kind, never the values"
                )
            _count(f"count of {kind}", count)
        _count("prompt_tokens", self.prompt_tokens)
        _count("completion_tokens", self.completion_tokens)
        _amount("cost", self.cost)
        _amount("latency_ms", self.latency_ms)
        if self.error_type is not None and not _ERROR_TYPE.fullmatch(self.error_type):
            raise InvalidInputError(
                "audit error_type is not an exception class name: record "
                "type(error).__name__, never the message"
            )
        if not _ID.fullmatch(self.id):
            raise InvalidInputError("audit id must be 32 lowercase hex digits (uuid4().hex)")
        if self.at.tzinfo is None:
            raise InvalidInputError(
                "audit time must be timezone-aware (UTC): use utc_at(clock.now())"
            )
        object.__setattr__(self, "outcome", outcome)
        object.__setattr__(self, "data_class", data_class)
        object.__setattr__(self, "attempts", tuple(self.attempts))
        object.__setattr__(self, "document_ids", tuple(self.document_ids))
        object.__setattr__(self, "redacted", dict(sorted(self.redacted.items())))
        object.__setattr__(self, "at", self.at.astimezone(UTC))

    @classmethod
    def new(
        cls,
        *,
        at: float,
        user: str,
        team: str,
        model: str,
        outcome: Outcome | str,
        data_class: DataClass | str | None = None,
        purpose: str = "answer",
        attempts: Iterable[str] = (),
        document_ids: Iterable[str] = (),
        redacted: Mapping[str, int] | None = None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cost: float = 0.0,
        latency_ms: float = 0.0,
        error_type: str | None = None,
    ) -> AuditRecord:
        """A record with a fresh id, at a clock reading (seconds since the epoch); plain
        strings are accepted for the outcome and the data class."""
        try:
            kind = Outcome(outcome)
            sensitivity = None if data_class is None else DataClass(data_class)
        except ValueError as exc:
            raise InvalidInputError(f"audit record: {exc}") from exc
        return cls(
            user=user,
            team=team,
            model=model,
            outcome=kind,
            data_class=sensitivity,
            purpose=purpose,
            attempts=tuple(attempts),
            document_ids=tuple(document_ids),
            redacted=dict(redacted or {}),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=cost,
            latency_ms=latency_ms,
            error_type=error_type,
            at=utc_at(at),
        )

    @property
    def total_tokens(self) -> int:
        """Prompt and completion tokens together: what budgets count."""
        return self.prompt_tokens + self.completion_tokens

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-ready values (``at`` in ISO 8601, UTC)."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "user": self.user,
            "team": self.team,
            "model": self.model,
            "attempts": list(self.attempts),
            "data_class": None if self.data_class is None else str(self.data_class),
            "purpose": self.purpose,
            "document_ids": list(self.document_ids),
            "redacted": dict(self.redacted),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cost": self.cost,
            "latency_ms": self.latency_ms,
            "outcome": str(self.outcome),
            "error_type": self.error_type,
        }


@dataclass(frozen=True, slots=True)
class TeamTotals:
    """One team's use of the gateway over a period.

    ``requests`` are the calls let through to the gateway (every outcome but budget and
    rate limit); ``rejected`` the calls the budget guard turned away.
    """

    team: str
    tokens: int
    requests: int
    rejected: int
    cost: float


def _row(record: AuditRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "at": record.at,
        "user_id": record.user,
        "team": record.team,
        "model": record.model,
        "attempts": json.dumps(list(record.attempts)),
        "data_class": None if record.data_class is None else str(record.data_class),
        "purpose": record.purpose,
        "document_ids": json.dumps(list(record.document_ids)),
        "redacted": json.dumps(dict(record.redacted), sort_keys=True),
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "cost": float(record.cost),
        "latency_ms": float(record.latency_ms),
        "outcome": str(record.outcome),
        "error_type": record.error_type,
    }


def _record(row: Row[Any]) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        at=_utc(row.at),
        user=row.user_id,
        team=row.team,
        model=row.model,
        attempts=tuple(json.loads(row.attempts)),
        data_class=None if row.data_class is None else DataClass(row.data_class),
        purpose=row.purpose,
        document_ids=tuple(json.loads(row.document_ids)),
        redacted=json.loads(row.redacted),
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        cost=row.cost,
        latency_ms=row.latency_ms,
        outcome=Outcome(row.outcome),
        error_type=row.error_type,
    )


_ADMITTED = audit_table.c.outcome.not_in([str(outcome) for outcome in REJECTED])
_TOKENS = audit_table.c.prompt_tokens + audit_table.c.completion_tokens


class AuditStore(SqlBacked):
    """The audit log over SQLAlchemy Core, on the knowledge store's database.

    Construct with the database URL and call :meth:`migrate` once, like the other stores.
    Times given to the queries may be naive (taken as UTC) or aware in any zone.
    """

    # -- writes ----------------------------------------------------------------------

    def record(self, record: AuditRecord) -> None:
        """Write one record in one transaction; writing the same id again changes nothing."""
        engine = self._sql.engine
        builder = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        statement = builder(audit_table).on_conflict_do_nothing(index_elements=["id"])
        try:
            with engine.begin() as connection:
                connection.execute(statement.values(_row(record)))
        except SQLAlchemyError as exc:
            # The database's message may quote the row: name the error, not its text.
            cause = exc.orig if isinstance(exc, DBAPIError) else exc
            raise StorageError(
                f"could not write audit record {record.id} ({type(cause).__name__}); check "
                "that the database is reachable and migrated (AuditStore.migrate()), then "
                "try again",
                retryable=isinstance(exc, OperationalError),
            ) from exc

    # -- reads -----------------------------------------------------------------------

    def get(self, record_id: str) -> AuditRecord:
        """One record by id."""
        with self._sql.engine.connect() as connection:
            row = connection.execute(
                select(audit_table).where(audit_table.c.id == record_id)
            ).first()
        if row is None:
            raise NotFoundError(
                f"no audit record with id {record_id!r}; list them with `allo audit list`"
            )
        return _record(row)

    @staticmethod
    def _filters(
        *,
        team: str | None,
        user: str | None,
        model: str | None,
        outcome: Outcome | str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if team is not None:
            clauses.append(audit_table.c.team == team)
        if user is not None:
            clauses.append(audit_table.c.user_id == user)
        if model is not None:
            clauses.append(audit_table.c.model == model)
        if outcome is not None:
            try:
                clauses.append(audit_table.c.outcome == str(Outcome(outcome)))
            except ValueError as exc:
                known = ", ".join(str(value) for value in Outcome)
                raise InvalidInputError(f"unknown outcome {outcome!r}; use one of {known}") from exc
        if since is not None:
            clauses.append(audit_table.c.at >= _utc(since))
        if until is not None:
            clauses.append(audit_table.c.at < _utc(until))
        return clauses

    def query(
        self,
        *,
        team: str | None = None,
        user: str | None = None,
        model: str | None = None,
        outcome: Outcome | str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditRecord]:
        """A page of records, newest first; ``since`` is inclusive, ``until`` exclusive."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInputError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
        if offset < 0:
            raise InvalidInputError(f"offset must be 0 or more, got {offset}")
        clauses = self._filters(
            team=team, user=user, model=model, outcome=outcome, since=since, until=until
        )
        statement = (
            select(audit_table)
            .where(*clauses)
            .order_by(audit_table.c.at.desc(), audit_table.c.seq.desc())
            .offset(offset)
            .limit(limit)
        )
        with self._sql.engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [_record(row) for row in rows]

    def count(
        self,
        *,
        team: str | None = None,
        user: str | None = None,
        model: str | None = None,
        outcome: Outcome | str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """How many records :meth:`query` would page through with the same filters."""
        clauses = self._filters(
            team=team, user=user, model=model, outcome=outcome, since=since, until=until
        )
        statement = select(func.count()).select_from(audit_table).where(*clauses)
        with self._sql.engine.connect() as connection:
            return int(connection.execute(statement).scalar_one())

    def tokens_used(self, team: str, since: datetime) -> int:
        """Prompt and completion tokens of the team's calls from ``since`` (inclusive)."""
        statement = select(func.coalesce(func.sum(_TOKENS), 0)).where(
            (audit_table.c.team == team) & (audit_table.c.at >= _utc(since))
        )
        with self._sql.engine.connect() as connection:
            return int(connection.execute(statement).scalar_one())

    def requests_since(self, team: str, since: datetime) -> int:
        """The team's calls from ``since`` (inclusive), budget and rate-limit rejections aside."""
        statement = (
            select(func.count())
            .select_from(audit_table)
            .where((audit_table.c.team == team) & (audit_table.c.at >= _utc(since)) & _ADMITTED)
        )
        with self._sql.engine.connect() as connection:
            return int(connection.execute(statement).scalar_one())

    def request_at(self, team: str, since: datetime, index: int) -> datetime | None:
        """When the ``index``-th (from 0, oldest first) of those calls was admitted."""
        statement = (
            select(audit_table.c.at)
            .where((audit_table.c.team == team) & (audit_table.c.at >= _utc(since)) & _ADMITTED)
            .order_by(audit_table.c.at, audit_table.c.seq)
            .offset(max(index, 0))
            .limit(1)
        )
        with self._sql.engine.connect() as connection:
            moment = connection.execute(statement).scalar()
        return None if moment is None else _utc(moment)

    def usage_by_team(self, since: datetime) -> list[TeamTotals]:
        """Tokens, requests, rejections and cost per team from ``since``, by team name."""
        rejected = audit_table.c.outcome.in_([str(outcome) for outcome in REJECTED])
        statement = (
            select(
                audit_table.c.team,
                func.coalesce(func.sum(_TOKENS), 0),
                func.coalesce(func.sum(case((rejected, 0), else_=1)), 0),
                func.coalesce(func.sum(case((rejected, 1), else_=0)), 0),
                func.coalesce(func.sum(audit_table.c.cost), 0.0),
            )
            .where(audit_table.c.at >= _utc(since))
            .group_by(audit_table.c.team)
            .order_by(audit_table.c.team)
        )
        with self._sql.engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [
            TeamTotals(
                team=team,
                tokens=int(tokens),
                requests=int(requests),
                rejected=int(turned_away),
                cost=float(cost),
            )
            for team, tokens, requests, turned_away, cost in rows
        ]
