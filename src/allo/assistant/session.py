"""Conversations: open one, post customer messages, read it back, resume after a restart.

:class:`Assistant` ties the dialogue policy to the :class:`ConversationStore`. Each
conversation has an unguessable id and a customer token (only its SHA-256 is stored):
reading or writing a conversation needs both, so one customer never sees another's.
Customer messages carry a client ``message_id``: sending the same one again returns the
stored reply without processing it twice; an optional ``seq`` (1, 2, 3...) lets the
client detect gaps: a message out of order is a :class:`ConversationConflict`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from allo.assistant.policy import (
    CustomerMessage,
    DialoguePolicy,
    DialogueState,
    TextMessage,
    message_dict,
)
from allo.assistant.store import (
    Change,
    Conversation,
    ConversationConflict,
    ConversationStore,
    Status,
    Turn,
)
from allo.clock import Clock, SystemClock
from allo.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from allo.assistant.nlu import MessageUnderstanding
    from allo.knowledge.service import KnowledgeBase

#: longest message accepted, in characters
MAX_MESSAGE_CHARS = 2000
INTENTS_FILE = Path(__file__).parent / "data" / "intents_fr.yaml"
_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_PAYLOAD = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_ALLOWED_CONTROLS = {"\n", "\r", "\t"}


def clean_text(text: str, max_chars: int = MAX_MESSAGE_CHARS) -> str:
    """The message as stored, or a clear error (empty, too long, binary or control chars)."""
    if not isinstance(text, str):
        raise InvalidInputError("a message must be text")
    stripped = text.strip()
    if not stripped:
        raise InvalidInputError("the message is empty; type a question or choose a button")
    if len(stripped) > max_chars:
        raise InvalidInputError(
            f"message too long ({len(stripped)} characters, at most {max_chars}); "
            "split it or write something shorter"
        )
    for char in stripped:
        category = unicodedata.category(char)
        if (
            (category == "Cc" and char not in _ALLOWED_CONTROLS)
            or category in {"Cs", "Co"}
            or (char == "\ufffd")
        ):
            raise InvalidInputError(
                f"the message contains a control or binary character (U+{ord(char):04X}); "
                "send plain text"
            )
    return stripped


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class Opened:
    conversation_id: str
    customer_token: str


@dataclass(frozen=True)
class Reply:
    """The turns a customer message produced (its own first), and the status after it."""

    conversation_id: str
    status: Status
    turns: list[Turn]
    replayed: bool = False
    action: str | None = None


class Assistant:
    """Conversations between customers, the bot and advisors."""

    def __init__(
        self,
        store: ConversationStore,
        policy: DialoguePolicy,
        clock: Clock | None = None,
        max_chars: int = MAX_MESSAGE_CHARS,
    ) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock or SystemClock()
        self.max_chars = max_chars

    def warm_up(self) -> None:
        """Load what the first text message needs (embedding and language models)."""
        warm = getattr(self.policy.understander, "warm_up", None)
        if callable(warm):
            warm()

    def close(self) -> None:
        self.store.close()

    def open(self) -> Opened:
        """A new conversation: its id and the customer token that guards it."""
        conversation_id = "c_" + secrets.token_urlsafe(18)
        token = secrets.token_urlsafe(32)
        self.store.create(conversation_id, _hash(token), self.clock.now())
        return Opened(conversation_id, token)

    def load(self, conversation_id: str) -> Conversation:
        """A conversation by id (advisor side: no customer token)."""
        found = self.store.get(conversation_id) if _ID.match(conversation_id or "") else None
        if found is None:
            raise NotFoundError(f"no conversation {conversation_id!r}; open one first")
        return found

    def authorised(self, conversation_id: str, customer_token: str) -> Conversation:
        """The conversation if the token is its customer's; otherwise "not found"."""
        return self._authorised(conversation_id, customer_token, None)[0]

    def _authorised(
        self, conversation_id: str, customer_token: str, message_id: str | None
    ) -> tuple[Conversation, Turn | None]:
        """``authorised``, with the stored turn of ``message_id`` read in the same go."""
        found: Conversation | None = None
        stored: Turn | None = None
        if _ID.match(conversation_id or ""):
            if message_id is None:
                found = self.store.get(conversation_id)
            else:
                found, stored = self.store.get_with_message(conversation_id, message_id)
        if found is None or not hmac.compare_digest(found.customer_hash, _hash(customer_token)):
            raise NotFoundError(
                f"no conversation {conversation_id!r} for this customer token; "
                "open a new conversation with POST /v1/conversations"
            )
        return found, stored

    def history(self, conversation_id: str, customer_token: str) -> tuple[Conversation, list[Turn]]:
        conversation = self.authorised(conversation_id, customer_token)
        return conversation, self.store.turns(conversation.id)

    def post(
        self,
        conversation_id: str,
        customer_token: str,
        message_id: str,
        message: CustomerMessage,
        seq: int | None = None,
    ) -> Reply:
        """Process one customer message (at most once per ``message_id``)."""
        valid_id = bool(_MESSAGE_ID.match(message_id or ""))
        conversation, stored = self._authorised(
            conversation_id, customer_token, message_id if valid_id else None
        )
        if not valid_id:
            raise InvalidInputError(
                "message_id must be 1 to 64 letters, digits or . _ : - (one per message)"
            )
        if message.text is not None:
            message = CustomerMessage(text=clean_text(message.text, self.max_chars))
        elif not _PAYLOAD.match(message.payload or ""):
            raise InvalidInputError("a button payload is 1 to 64 letters, digits or . _ : -")
        if stored is not None:
            if stored.role != "customer" or stored.text != message.shown:
                raise ConversationConflict(
                    f"message_id {message_id!r} was already used for another message; "
                    "use a new id for each message"
                )
            turns = [stored, *self.store.replies_to(conversation.id, stored.seq)]
            return Reply(conversation.id, conversation.status, turns, replayed=True)
        expected = conversation.client_seq + 1
        if seq is not None and seq != expected:
            raise ConversationConflict(
                f"message out of order: seq {seq} received, {expected} expected "
                "(resend the missing messages first, or read the conversation again)"
            )
        if conversation.status == "closed":
            raise ConversationConflict(
                "this conversation is closed; open a new one with POST /v1/conversations"
            )
        customer = Turn(
            0,
            "customer",
            message.shown,
            0.0,
            {"payload": message.payload} if message.payload is not None else {},
            message_id,
        )
        change = Change(client_seq=expected, turns=[customer])
        action: str | None = None
        if conversation.status == "bot":
            decision = self.policy.respond(DialogueState.from_dict(conversation.state), message)
            action = decision.action
            change.state = decision.state.to_dict()
            change.language = decision.language
            for item in decision.messages:
                text = item.text if isinstance(item, TextMessage) else ""
                change.turns.append(Turn(0, "assistant", text, 0.0, message_dict(item)))
            summary = decision.handoff
            if summary is not None:
                change.status = "waiting_advisor"
                change.summary = summary.to_dict()
                change.handoff_at = self.clock.now()
        written = self.store.apply(conversation, change, self.clock.now())
        status = change.status or conversation.status
        return Reply(conversation.id, status, written, action=action)


def demo_understanding(knowledge: KnowledgeBase) -> MessageUnderstanding:
    """The understanding of a running server: the demo intents, trained now (seconds).

    The intent classifier trains on the knowledge base's embedder; without one (dense
    search off, ``ALLO_EMBEDDER=none``) it trains on TF-IDF n-grams alone, so that the
    server never depends on test helpers nor on a model.
    """
    from allo.assistant.nlu import IntentClassifier, MessageUnderstanding, load_examples

    cache = knowledge.settings.cache_dir / "intent-embeddings"
    classifier = IntentClassifier(knowledge.embedder, cache_dir=cache)
    classifier.fit(load_examples(INTENTS_FILE))
    return MessageUnderstanding(classifier, languages=knowledge.languages)


def build_assistant(knowledge: KnowledgeBase, clock: Clock | None = None) -> Assistant:
    """The assistant of a running server: demo tutorials and intents, the knowledge base."""
    from allo.assistant.flows import TutorialEngine, demo_folder, demo_registry, load_tutorials

    settings = knowledge.settings
    tutorials = TutorialEngine(load_tutorials(demo_folder()), demo_registry(clock or SystemClock()))
    store = ConversationStore(settings.resolved_database_url)
    store.migrate()
    policy = DialoguePolicy(demo_understanding(knowledge), tutorials, knowledge)
    return Assistant(store, policy, clock, max_chars=settings.assistant.max_message_chars)
