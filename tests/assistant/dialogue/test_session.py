"""Conversations: persistence, resume after restart, idempotency, isolation, advisor desk."""

from __future__ import annotations

import pytest

from allo.assistant.handoff import AdvisorDesk
from allo.assistant.policy import ADVISOR_PAYLOAD, CustomerMessage, DialoguePolicy
from allo.assistant.session import Assistant, clean_text
from allo.assistant.store import ConversationConflict, ConversationStore
from allo.errors import InvalidInputError, NotFoundError
from allo.storage.sql import LATEST_REVISION
from allo.testing.clock import ScriptedClock

INSTALL = CustomerMessage(text="Je veux installer ma nouvelle Livebox 6")


def test_resume_after_restart(
    assistant: Assistant, policy: DialoguePolicy, db_url: str, clock: ScriptedClock
) -> None:
    opened = assistant.open()
    first = assistant.post(opened.conversation_id, opened.customer_token, "m1", INSTALL)
    assert first.action == "tutorial_start"
    assistant.close()
    store = ConversationStore(db_url)  # a fresh process on the same database file
    store.migrate()
    assert store._sql.schema_revision() == LATEST_REVISION >= "0003"  # conversations: 0003
    again = Assistant(store, policy, clock)
    reply = again.post(
        opened.conversation_id, opened.customer_token, "m2", CustomerMessage(payload="complet")
    )
    assert reply.action == "tutorial_step"
    conversation, turns = again.history(opened.conversation_id, opened.customer_token)
    assert conversation.state["tutorial"]["step_id"] == "type_raccordement"
    assert [t.seq for t in turns] == list(range(1, len(turns) + 1))
    assert turns[0].role == "customer" and turns[0].text == INSTALL.text
    again.close()


def test_replayed_message_is_not_processed_twice(assistant: Assistant) -> None:
    opened = assistant.open()
    cid, token = opened.conversation_id, opened.customer_token
    first = assistant.post(cid, token, "m1", INSTALL, seq=1)
    replay = assistant.post(cid, token, "m1", INSTALL, seq=1)
    assert replay.replayed and [t.seq for t in replay.turns] == [t.seq for t in first.turns]
    _, turns = assistant.history(cid, token)
    assert len(turns) == len(first.turns)
    with pytest.raises(ConversationConflict, match="another message"):
        assistant.post(cid, token, "m1", CustomerMessage(text="autre chose"))
    with pytest.raises(ConversationConflict, match="out of order"):
        assistant.post(cid, token, "m3", CustomerMessage(payload="complet"), seq=3)
    assert not assistant.post(cid, token, "m2", CustomerMessage(payload="complet"), seq=2).replayed


def test_one_customer_never_sees_another(assistant: Assistant) -> None:
    alice, bob = assistant.open(), assistant.open()
    assert alice.conversation_id != bob.conversation_id
    assistant.post(alice.conversation_id, alice.customer_token, "m1", INSTALL)
    with pytest.raises(NotFoundError):
        assistant.history(alice.conversation_id, bob.customer_token)
    with pytest.raises(NotFoundError):
        assistant.post(alice.conversation_id, bob.customer_token, "x", INSTALL)
    with pytest.raises(NotFoundError):
        assistant.history("c_does-not-exist-at-all", alice.customer_token)
    with pytest.raises(NotFoundError):
        assistant.history("../../etc", alice.customer_token)


@pytest.mark.parametrize("text", ["", "   ", "x" * 2001, "abc\x00def", "bip\x07", "\ufffd\ufffd"])
def test_bad_text_is_refused(text: str) -> None:
    with pytest.raises(InvalidInputError):
        clean_text(text)


def test_script_text_is_stored_as_is(assistant: Assistant) -> None:
    opened = assistant.open()
    script = "<script>alert(1)</script> ma facture"
    reply = assistant.post(
        opened.conversation_id, opened.customer_token, "m1", CustomerMessage(text=script)
    )
    assert reply.turns[0].text == script


def test_handoff_queue_take_and_reply(assistant: Assistant) -> None:
    desk = AdvisorDesk(assistant)
    opened = assistant.open()
    cid, token = opened.conversation_id, opened.customer_token
    assistant.post(cid, token, "m1", INSTALL)
    reply = assistant.post(cid, token, "m2", CustomerMessage(payload=ADVISOR_PAYLOAD))
    assert reply.status == "waiting_advisor"
    queue = desk.queue()
    assert [item.conversation_id for item in queue] == [cid]
    assert queue[0].summary["wants"] == INSTALL.text
    assert queue[0].summary["tutorial_id"] == "installation_livebox"
    # the bot is quiet while waiting: the message is kept for the advisor
    waiting = assistant.post(cid, token, "m3", CustomerMessage(text="vous êtes là ?"))
    assert [t.role for t in waiting.turns] == ["customer"]
    with pytest.raises(ConversationConflict):
        desk.reply(cid, "Anne", "Bonjour")
    desk.take(cid, "Anne")
    assert desk.queue() == [] and len(desk.queue(include_taken=True)) == 1
    with pytest.raises(ConversationConflict):
        desk.take(cid, "Paul")
    desk.reply(cid, "Anne", "Bonjour, je regarde votre installation.")
    _, turns = assistant.history(cid, token)
    assert turns[-1].role == "advisor" and turns[-1].text.startswith("Bonjour, je regarde")
    desk.close(cid, "Anne")
    with pytest.raises(ConversationConflict, match="closed"):
        assistant.post(cid, token, "m4", CustomerMessage(text="merci"))
