"""The advisor queue: conversations handed over by the bot, taken and answered by humans.

A handoff sets a conversation to ``waiting_advisor`` with its summary (what the customer
wants, steps done, entities, sentiment). An advisor lists the queue, takes one
conversation (``with_advisor``: the bot stays quiet) and replies; the reply is a turn of
the customer's own conversation. ``close`` ends it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from allo.assistant.session import Assistant, clean_text
from allo.assistant.store import Change, Conversation, ConversationConflict, Status, Turn
from allo.errors import InvalidInputError

_JOINED = "Un conseiller a rejoint la conversation."


@dataclass(frozen=True)
class QueueItem:
    """One line of the advisor queue."""

    conversation_id: str
    status: Status
    summary: dict[str, Any]
    waiting_since: float | None
    advisor: str | None
    last_customer_message: str | None


def _advisor_name(advisor: str) -> str:
    name = " ".join((advisor or "").split())
    if not name or len(name) > 128 or any(not c.isprintable() for c in name):
        raise InvalidInputError("advisor name must be 1 to 128 printable characters")
    return name


class AdvisorDesk:
    """What advisors do with the conversations of an :class:`Assistant`."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant

    @property
    def _store(self) -> Any:
        return self.assistant.store

    def queue(self, include_taken: bool = False, limit: int = 100) -> list[QueueItem]:
        """Waiting conversations (and taken ones if asked), the longest waiting first."""
        statuses: list[Status] = ["waiting_advisor"]
        if include_taken:
            statuses.append("with_advisor")
        items = []
        for conversation in self._store.with_status(statuses, limit):
            turns: list[Turn] = self._store.turns(conversation.id)
            last = next((t.text for t in reversed(turns) if t.role == "customer"), None)
            items.append(
                QueueItem(
                    conversation.id,
                    conversation.status,
                    conversation.summary or {},
                    conversation.handoff_at,
                    conversation.advisor,
                    last,
                )
            )
        return items

    def conversation(self, conversation_id: str) -> tuple[Conversation, list[Turn]]:
        conversation = self.assistant.load(conversation_id)
        return conversation, self._store.turns(conversation.id)

    def take(self, conversation_id: str, advisor: str) -> Conversation:
        """Take a waiting conversation (taking one's own again is a no-op)."""
        name = _advisor_name(advisor)
        conversation = self.assistant.load(conversation_id)
        if conversation.status == "with_advisor" and conversation.advisor == name:
            return conversation
        if conversation.status != "waiting_advisor":
            who = f" by {conversation.advisor}" if conversation.advisor else ""
            raise ConversationConflict(
                f"conversation {conversation_id} is {conversation.status}{who}, not waiting "
                "for an advisor; pick another one from the queue"
            )
        turn = Turn(0, "assistant", _JOINED, 0.0, {"kind": "advisor_joined"})
        change = Change(status="with_advisor", advisor=name, turns=[turn])
        self._store.apply(conversation, change, self.assistant.clock.now())
        return self.assistant.load(conversation_id)

    def reply(self, conversation_id: str, advisor: str, text: str) -> Turn:
        """An advisor's message in the customer's conversation (take it first)."""
        name = _advisor_name(advisor)
        cleaned = clean_text(text, self.assistant.max_chars)
        conversation = self.assistant.load(conversation_id)
        if conversation.status != "with_advisor" or conversation.advisor != name:
            raise ConversationConflict(
                f"conversation {conversation_id} is not taken by {name}; take it first "
                "(POST /v1/advisor/conversations/{id}/take)"
            )
        turn = Turn(0, "advisor", cleaned, 0.0, {"advisor": name})
        written: list[Turn] = self._store.apply(
            conversation, Change(turns=[turn]), self.assistant.clock.now()
        )
        return written[0]

    def close(self, conversation_id: str, advisor: str) -> Conversation:
        """End a conversation taken by this advisor."""
        name = _advisor_name(advisor)
        conversation = self.assistant.load(conversation_id)
        if conversation.status == "closed":
            return conversation
        if conversation.status == "with_advisor" and conversation.advisor != name:
            raise ConversationConflict(
                f"conversation {conversation_id} is taken by {conversation.advisor}"
            )
        self._store.apply(conversation, Change(status="closed"), self.assistant.clock.now())
        return self.assistant.load(conversation_id)
