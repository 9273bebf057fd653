"""Where conversations live: SQL tables of migration ``0003_conversations``.

:class:`ConversationStore` shares the knowledge store's database URL (SQLite by default,
PostgreSQL too), like the NOC store. A conversation row holds its status, the dialogue
state (JSON) and the handoff summary; turns are numbered per conversation. Every change
is atomic and guarded by a version number (optimistic locking), and a customer message
id is unique per conversation, so a replayed message is never processed twice. On SQLite
the changes that queue up while one commits share the next transaction
(:class:`GroupCommit`), and the writers of several processes take turns through a lock
file beside the database (:class:`WriterTurns`).

The statements of the chat's hot path are built once, with bound parameters: building
and hashing a fresh SQLAlchemy statement costs about three times its execution on
SQLite, and a chat turn runs four of them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from allo.errors import InvalidInputError
from allo.storage.sql import SqlBacked
from allo.storage.writer_turns import WriterTurns, writer_lock_path

Status = Literal["bot", "waiting_advisor", "with_advisor", "closed"]
Role = Literal["customer", "assistant", "advisor"]
STATUSES: tuple[Status, ...] = ("bot", "waiting_advisor", "with_advisor", "closed")

metadata = MetaData()
conversations = Table(
    "assistant_conversations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("customer_hash", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("state", Text, nullable=False),
    Column("summary", Text),
    Column("advisor", String(128)),
    Column("language", String(8), nullable=False),
    Column("turn_count", Integer, nullable=False),
    Column("client_seq", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("handoff_at", Float),
)
turns = Table(
    "assistant_turns",
    metadata,
    Column("conversation_id", String(64), ForeignKey(conversations.c.id), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("role", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("message_id", String(64)),
    Column("reply_to", Integer),
)


# -- the hot path's statements, built once ---------------------------------------------------
_GET = select(conversations).where(conversations.c.id == bindparam("cid"))
_BY_MESSAGE_ID = select(turns).where(
    (turns.c.conversation_id == bindparam("cid")) & (turns.c.message_id == bindparam("mid"))
)
_REPLIES_TO = (
    select(turns)
    .where((turns.c.conversation_id == bindparam("cid")) & (turns.c.reply_to == bindparam("rseq")))
    .order_by(turns.c.seq)
)
_TURNS_AFTER = (
    select(turns)
    .where((turns.c.conversation_id == bindparam("cid")) & (turns.c.seq > bindparam("after")))
    .order_by(turns.c.seq)
)
_INSERT_CONVERSATION = insert(conversations)
_INSERT_TURNS = insert(turns)
#: the columns to set come with the parameters (one cached compilation per set of columns)
_UPDATE_IF_VERSION = update(conversations).where(
    (conversations.c.id == bindparam("cid")) & (conversations.c.version == bindparam("expected"))
)


class ConversationConflict(InvalidInputError):  # noqa: N818 - an HTTP 409 in the API
    """The request does not fit the conversation's current state (order, status, race)."""


@dataclass(frozen=True)
class Turn:
    """One message of a conversation."""

    seq: int
    role: Role
    text: str
    created_at: float
    payload: dict[str, Any] = field(default_factory=dict)
    message_id: str | None = None
    reply_to: int | None = None


@dataclass(frozen=True)
class Conversation:
    """A conversation row (without its turns)."""

    id: str
    customer_hash: str
    status: Status
    state: dict[str, Any]
    summary: dict[str, Any] | None
    advisor: str | None
    language: str
    turn_count: int
    client_seq: int
    version: int
    created_at: float
    updated_at: float
    handoff_at: float | None


@dataclass
class Change:
    """What one step writes: new field values and new turns (numbered by the store)."""

    status: Status | None = None
    state: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    advisor: str | None = None
    language: str | None = None
    client_seq: int | None = None
    handoff_at: float | None = None
    turns: list[Turn] = field(default_factory=list)


def _conversation(row: Row[Any]) -> Conversation:
    return Conversation(
        id=row.id,
        customer_hash=row.customer_hash,
        status=row.status,
        state=json.loads(row.state or "{}"),
        summary=None if row.summary is None else json.loads(row.summary),
        advisor=row.advisor,
        language=row.language,
        turn_count=row.turn_count,
        client_seq=row.client_seq,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        handoff_at=row.handoff_at,
    )


def _turn(row: Row[Any]) -> Turn:
    return Turn(
        seq=row.seq,
        role=row.role,
        text=row.text,
        created_at=row.created_at,
        payload=json.loads(row.payload or "{}"),
        message_id=row.message_id,
        reply_to=row.reply_to,
    )


#: one write: its statements on an open transaction; raises ``ConversationConflict``
#: before changing anything when the conversation moved on
Write = Callable[[Connection], None]


@dataclass
class _Queued:
    """A write waiting in :class:`GroupCommit`, then its outcome."""

    write: Write
    done: bool = False
    error: BaseException | None = None


class GroupCommit:
    """The writes that queue up meanwhile go together, in one transaction, at one turn.

    Under load the writers of a SQLite file form a convoy: each write takes about a
    millisecond, but handing the turn to the next thread needs that thread to be
    scheduled and to get the GIL back, which on a busy machine takes longer than the
    write. Here the first writer to find no commit in progress becomes the leader: it
    takes every queued write, runs them in one transaction (one turn of
    :class:`WriterTurns`, one commit) and wakes their threads; writes that arrive
    meanwhile form the next batch. Each caller returns once its own write is committed,
    so nothing is acknowledged that a crash could lose.

    A write that finds its conversation changed raises ``ConversationConflict`` before
    changing anything: the batch goes on without it. Any other error (a constraint, a
    bug) rolls the whole batch back, and each of its writes is then run alone, so that
    it fails only the write that caused it.
    """

    def __init__(self, engine: Callable[[], Engine], turns: WriterTurns) -> None:
        self._engine = engine
        self._turns = turns
        self._changed = threading.Condition()
        self._queue: list[_Queued] = []
        self._leading = False

    def run(self, write: Write) -> None:
        """Run ``write`` in a committed transaction (maybe with others); raise its error."""
        queued = _Queued(write)
        with self._changed:
            self._queue.append(queued)
            while self._leading and not queued.done:
                self._changed.wait()
            if not queued.done:
                self._leading = True
                batch, self._queue = self._queue, []
        if not queued.done:
            try:
                self._commit(batch)
            finally:
                with self._changed:
                    self._leading = False
                    self._changed.notify_all()
        if queued.error is not None:
            raise queued.error

    def _commit(self, batch: list[_Queued]) -> None:
        """Commit ``batch``; every write ends done, with its error if it failed."""
        try:
            with self._turns, self._engine().begin() as connection:
                for queued in batch:
                    try:
                        queued.write(connection)
                    except ConversationConflict as error:  # nothing written: go on
                        queued.error = error
        except Exception as error:
            if len(batch) > 1:
                self._one_by_one(batch)
            else:
                batch[0].error = error
        except BaseException as error:  # interrupted: none of them is known to be written
            for queued in batch:
                queued.error = error
            raise
        finally:
            for queued in batch:
                queued.done = True

    def _one_by_one(self, batch: list[_Queued]) -> None:
        """Run each write of a batch that failed alone, so that only its culprit fails."""
        for queued in batch:
            queued.error = None
            try:
                with self._turns, self._engine().begin() as connection:
                    queued.write(connection)
            except Exception as error:
                queued.error = error


class ConversationStore(SqlBacked):
    """Conversations and their turns over SQLAlchemy Core.

    On SQLite, writers take turns through :class:`WriterTurns` (a thread lock and a
    lock file beside the database) instead of SQLite's sleeping busy handler, and the
    writes that queue up meanwhile commit together (:class:`GroupCommit`). PostgreSQL
    locks rows and needs neither.
    """

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._writers = WriterTurns(writer_lock_path(url))
        self._group = GroupCommit(lambda: self._sql.engine, self._writers)

    def _commit(self, write: Write) -> None:
        """Run ``write`` in a committed transaction (see the class docstring)."""
        if self._sql.dialect == "sqlite":
            self._group.run(write)
            return
        with self._sql.engine.begin() as connection:
            write(connection)

    def close(self) -> None:
        """Release pooled connections and the writer lock file."""
        super().close()
        self._writers.close()

    def create(self, conversation_id: str, customer_hash: str, now: float) -> Conversation:
        row = {
            "id": conversation_id,
            "customer_hash": customer_hash,
            "status": "bot",
            "state": "{}",
            "summary": None,
            "advisor": None,
            "language": "fr",
            "turn_count": 0,
            "client_seq": 0,
            "version": 0,
            "created_at": now,
            "updated_at": now,
            "handoff_at": None,
        }

        def insert_row(connection: Connection) -> None:
            connection.execute(_INSERT_CONVERSATION, row)

        self._commit(insert_row)
        # the row as written (reading it back would only cost a query)
        return Conversation(
            id=conversation_id,
            customer_hash=customer_hash,
            status="bot",
            state={},
            summary=None,
            advisor=None,
            language="fr",
            turn_count=0,
            client_seq=0,
            version=0,
            created_at=now,
            updated_at=now,
            handoff_at=None,
        )

    def get(self, conversation_id: str) -> Conversation | None:
        with self._sql.engine.connect() as connection:
            row = connection.execute(_GET, {"cid": conversation_id}).first()
        return None if row is None else _conversation(row)

    def get_with_message(
        self, conversation_id: str, message_id: str
    ) -> tuple[Conversation | None, Turn | None]:
        """The conversation and its customer turn of ``message_id``, if any (one checkout)."""
        with self._sql.engine.connect() as connection:
            row = connection.execute(_GET, {"cid": conversation_id}).first()
            if row is None:
                return None, None
            turn = connection.execute(
                _BY_MESSAGE_ID, {"cid": conversation_id, "mid": message_id}
            ).first()
        return _conversation(row), None if turn is None else _turn(turn)

    def turns(self, conversation_id: str, after: int = 0) -> list[Turn]:
        with self._sql.engine.connect() as connection:
            rows = connection.execute(_TURNS_AFTER, {"cid": conversation_id, "after": after}).all()
        return [_turn(row) for row in rows]

    def by_message_id(self, conversation_id: str, message_id: str) -> Turn | None:
        with self._sql.engine.connect() as connection:
            row = connection.execute(
                _BY_MESSAGE_ID, {"cid": conversation_id, "mid": message_id}
            ).first()
        return None if row is None else _turn(row)

    def replies_to(self, conversation_id: str, seq: int) -> list[Turn]:
        with self._sql.engine.connect() as connection:
            rows = connection.execute(_REPLIES_TO, {"cid": conversation_id, "rseq": seq}).all()
        return [_turn(row) for row in rows]

    def with_status(self, statuses: Sequence[Status], limit: int = 100) -> list[Conversation]:
        """Conversations in these statuses, the longest waiting first."""
        with self._sql.engine.connect() as connection:
            rows = connection.execute(
                select(conversations)
                .where(conversations.c.status.in_(list(statuses)))
                .order_by(conversations.c.handoff_at, conversations.c.id)
                .limit(limit)
            ).all()
        return [_conversation(row) for row in rows]

    def apply(self, current: Conversation, change: Change, now: float) -> list[Turn]:
        """Write ``change`` if nobody changed the conversation since ``current`` was read.

        Returns the new turns with their numbers; a concurrent change or a message id
        already stored is a :class:`ConversationConflict`.
        """
        values: dict[str, Any] = {
            "version": current.version + 1,
            "updated_at": now,
            "turn_count": current.turn_count + len(change.turns),
        }
        if change.status is not None:
            values["status"] = change.status
        if change.state is not None:
            values["state"] = json.dumps(change.state, ensure_ascii=False)
        if change.summary is not None:
            values["summary"] = json.dumps(change.summary, ensure_ascii=False)
        for name in ("advisor", "language", "client_seq", "handoff_at"):
            if getattr(change, name) is not None:
                values[name] = getattr(change, name)
        written: list[Turn] = []
        seq = current.turn_count
        customer_seq: int | None = None
        for turn in change.turns:
            seq += 1
            reply_to = turn.reply_to
            if turn.role == "customer":
                customer_seq = seq
            elif reply_to is None and customer_seq is not None:
                reply_to = customer_seq
            written.append(
                Turn(seq, turn.role, turn.text, now, turn.payload, turn.message_id, reply_to)
            )
        rows = [
            {
                "conversation_id": current.id,
                "seq": t.seq,
                "role": t.role,
                "text": t.text,
                "payload": json.dumps(t.payload, ensure_ascii=False),
                "created_at": t.created_at,
                "message_id": t.message_id,
                "reply_to": t.reply_to,
            }
            for t in written
        ]

        def write(connection: Connection) -> None:
            result = connection.execute(
                _UPDATE_IF_VERSION, {"cid": current.id, "expected": current.version, **values}
            )
            if result.rowcount != 1:  # checked before anything is written (GroupCommit)
                raise ConversationConflict(
                    f"conversation {current.id} changed meanwhile; send the message again"
                )
            if rows:
                connection.execute(_INSERT_TURNS, rows)

        try:
            self._commit(write)
        except IntegrityError as error:
            raise ConversationConflict(
                f"conversation {current.id}: message already stored; send the message again"
            ) from error
        return written
