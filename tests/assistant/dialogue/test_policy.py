"""Dialogue policy decisions: tutorials, answers, topic changes and handoffs."""

from __future__ import annotations

import pytest

from allo.assistant.policy import (
    ADVISOR_PAYLOAD,
    ButtonsMessage,
    CustomerMessage,
    DialoguePolicy,
    DialogueState,
    HandoffMessage,
    TextMessage,
    asks_for_human,
    frustration,
)
from allo.errors import InvalidInputError


def say(policy: DialoguePolicy, state: DialogueState, text: str):  # type: ignore[no-untyped-def]
    return policy.respond(state, CustomerMessage(text=text))


def test_intent_with_a_tutorial_starts_it(policy: DialoguePolicy) -> None:
    decision = say(policy, DialogueState(), "Je veux installer ma nouvelle Livebox 6")
    assert decision.action == "tutorial_start"
    assert decision.intent == "installation_box"
    assert decision.state.tutorial is not None
    assert decision.state.tutorial["tutorial_id"] == "installation_livebox"
    assert any(isinstance(m, ButtonsMessage) for m in decision.messages)
    assert decision.state.entities.get("box_model")


def test_button_payload_advances_the_tutorial(policy: DialoguePolicy) -> None:
    started = say(policy, DialogueState(), "Je veux installer ma nouvelle Livebox 6")
    step = policy.respond(started.state, CustomerMessage(payload="complet"))
    assert step.action == "tutorial_step"
    assert step.state.tutorial is not None
    assert step.state.tutorial["step_id"] == "type_raccordement"
    label = say(policy, step.state, "Fibre")
    assert label.action == "tutorial_step"
    assert label.state.tutorial is not None
    assert label.state.tutorial["step_id"] == "demander_voyant"


def test_a_question_outside_tutorials_gets_a_cited_answer(policy: DialoguePolicy) -> None:
    decision = say(policy, DialogueState(), "comment résilier mon abonnement ?")
    assert decision.action == "answer"
    text = decision.messages[0]
    assert isinstance(text, TextMessage) and text.citations


def test_abstention_offers_an_advisor_then_hands_over(policy: DialoguePolicy) -> None:
    first = say(policy, DialogueState(), "quelle est la recette du gâteau au chocolat")
    assert first.action == "abstain"
    buttons = [m for m in first.messages if isinstance(m, ButtonsMessage)]
    assert buttons and buttons[0].buttons[0].payload == ADVISOR_PAYLOAD
    second = say(policy, first.state, "et la météo à Lyon demain pour le football")
    assert second.action == "handoff"
    assert second.handoff is not None
    assert second.handoff.reason == "questions restées sans réponse"


def test_topic_change_mid_tutorial_switches(policy: DialoguePolicy) -> None:
    started = say(policy, DialogueState(), "Je veux installer ma nouvelle Livebox 6")
    switched = say(policy, started.state, "en fait c'est pour ma facture")
    assert switched.action == "tutorial_switch"
    assert switched.state.tutorial is not None
    assert switched.state.tutorial["tutorial_id"] == "facture"
    assert "installation_livebox:bienvenue" in switched.state.steps_done


def test_a_button_label_stays_in_the_tutorial(policy: DialoguePolicy) -> None:
    started = say(policy, DialogueState(), "Je veux installer ma nouvelle Livebox 6")
    step = say(policy, started.state, "Oui, tout y est")
    assert step.action == "tutorial_step"


@pytest.mark.parametrize(
    "text", ["je voudrais parler à un conseiller", "Je veux un humain s'il vous plaît"]
)
def test_explicit_request_hands_over(policy: DialoguePolicy, text: str) -> None:
    started = say(policy, DialogueState(), "Je veux installer ma nouvelle Livebox 6")
    step = policy.respond(started.state, CustomerMessage(payload="complet"))
    decision = say(policy, step.state, text)
    assert decision.action == "handoff"
    summary = decision.handoff
    assert summary is not None
    assert summary.wants == "Je veux installer ma nouvelle Livebox 6"
    assert summary.tutorial_id == "installation_livebox"
    assert "installation_livebox:verifier_carton" in summary.steps_done
    assert summary.entities.get("box_model")
    assert summary.entities.get("carton") == "complet"
    assert decision.state.handed_off and decision.state.tutorial is None
    assert isinstance(decision.messages[-1], HandoffMessage)


def test_a_tutorial_handoff_hands_over_at_once(policy: DialoguePolicy) -> None:
    decision = say(policy, DialogueState(), "ma box clignote rouge depuis ce matin")
    assert decision.action == "handoff"
    assert decision.handoff is not None
    assert decision.handoff.tutorial_id == "pas_internet"
    assert decision.handoff.entities["light_colour"] == "red"


def test_advisor_button_hands_over(policy: DialoguePolicy) -> None:
    decision = policy.respond(DialogueState(), CustomerMessage(payload=ADVISOR_PAYLOAD))
    assert decision.action == "handoff"


def test_strong_frustration_hands_over(policy: DialoguePolicy) -> None:
    started = say(policy, DialogueState(), "Je veux installer ma nouvelle Livebox 6")
    decision = say(policy, started.state, "C'est inadmissible, ça fait 3 fois que j'appelle")
    assert decision.action == "handoff"
    assert decision.handoff is not None and decision.handoff.sentiment == "très mécontent"


def test_mild_frustration_twice_hands_over(policy: DialoguePolicy) -> None:
    first = say(policy, DialogueState(), "votre service est nul")
    assert first.action != "handoff"
    second = say(policy, first.state, "VOTRE BOX NE MARCHE PAS")
    assert second.action == "handoff"


def test_frustration_lexicon() -> None:
    assert frustration("merci beaucoup") == 0
    assert frustration("c'est nul") == 1
    assert frustration("C'EST INADMISSIBLE") == 2
    assert frustration("ça fait trois fois !!!") == 2
    assert asks_for_human("passez-moi une vraie personne")
    assert not asks_for_human("ma box ne marche pas")


def test_repeated_tutorial_failure_hands_over(policy: DialoguePolicy) -> None:
    state = say(policy, DialogueState(), "Je veux installer ma nouvelle Livebox 6").state
    decision = None
    for _ in range(5):
        decision = say(policy, state, "zzz qwerty")
        state = decision.state
        if decision.action == "handoff":
            break
    assert decision is not None and decision.action == "handoff"
    assert decision.handoff is not None and decision.handoff.tutorial_id == "installation_livebox"


def test_greeting_and_stray_payload(policy: DialoguePolicy) -> None:
    assert say(policy, DialogueState(), "bonjour").action == "smalltalk"
    with pytest.raises(InvalidInputError):
        policy.respond(DialogueState(), CustomerMessage(payload="complet"))
    with pytest.raises(InvalidInputError):
        CustomerMessage(text="a", payload="b")


def test_state_round_trips_and_survives_garbage() -> None:
    state = DialogueState(failures=1, entities={"amount": "42"})
    assert DialogueState.from_dict(state.to_dict()) == state
    assert DialogueState.from_dict("nonsense") == DialogueState()


def test_decision_says_where_the_tutorial_stands(policy: DialoguePolicy) -> None:
    started = say(policy, DialogueState(), "Je veux installer ma nouvelle Livebox 6")
    assert (started.tutorial_id, started.step_id) == ("installation_livebox", "verifier_carton")
    assert started.understanding is not None
    assert started.understanding.intent == "installation_box"
    ended = policy.respond(started.state, CustomerMessage(payload="incomplet"))
    assert (ended.tutorial_id, ended.step_id) == ("installation_livebox", "conseiller_carton")
    assert ended.understanding is None  # a button is not understood
    answer = say(policy, DialogueState(), "comment résilier mon abonnement ?")
    assert answer.tutorial_id is None and not answer.abstained
    assert say(policy, DialogueState(), "quelle est la recette du gâteau au chocolat").abstained


def test_a_question_aside_is_answered_then_the_tutorial_resumes(policy: DialoguePolicy) -> None:
    started = say(policy, DialogueState(), "Je veux installer ma nouvelle Livebox 6")
    aside = say(policy, started.state, "Combien coûte la résiliation de mon abonnement ?")
    assert aside.action == "answer"
    texts = [m for m in aside.messages if isinstance(m, TextMessage)]
    assert texts[0].citations
    assert texts[-1].text.startswith("Le carton contient")
    assert aside.state.tutorial == started.state.tutorial  # paused, not moved
    assert (aside.tutorial_id, aside.step_id) == ("installation_livebox", "verifier_carton")


def test_thanks_mid_tutorial_get_a_reply_and_the_question_again(policy: DialoguePolicy) -> None:
    started = say(policy, DialogueState(), "Je veux installer ma nouvelle Livebox 6")
    thanks = say(policy, started.state, "merci beaucoup")
    assert thanks.action == "smalltalk"
    assert isinstance(thanks.messages[-1], ButtonsMessage)
    assert thanks.state.tutorial == started.state.tutorial


def test_a_valid_answer_is_not_taken_for_a_topic_change(policy: DialoguePolicy) -> None:
    started = say(policy, DialogueState(), "je déménage bientôt, comment transférer ma box ?")
    address = say(policy, started.state, "12 rue des Lilas 69003 Lyon")
    assert address.step_id == "demander_date"
    date_given = say(policy, address.state, "le 1er décembre")
    assert date_given.action == "tutorial_step"
    assert date_given.step_id == "demander_eligibilite"


def test_changing_operator_is_no_request_for_a_human() -> None:
    assert not asks_for_human("Est-ce que je garde mon numéro si je change d'opérateur ?")
    assert asks_for_human("je veux parler à un opérateur")


def test_the_summary_keeps_the_customer_need_not_the_advisor_intent(
    policy: DialoguePolicy,
) -> None:
    started = say(policy, DialogueState(), "Je veux installer ma nouvelle Livebox 6")
    decision = say(policy, started.state, "je voudrais parler à un conseiller")
    assert decision.handoff is not None
    assert decision.handoff.intent == "installation_box"
