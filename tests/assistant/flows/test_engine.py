"""The tutorial engine: walks through every demo tutorial, branching, slots, safety nets."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date

import pytest

from allo.assistant.flows import (
    ButtonsOutput,
    ConnectorFailure,
    ConnectorRegistry,
    EndOutput,
    HandoffOutput,
    ImageOutput,
    Output,
    ScriptedConnector,
    TextOutput,
    TutorialEngine,
    TutorialError,
    TutorialState,
    demo_folder,
    demo_registry,
    load_tutorials,
)
from allo.assistant.flows.connectors import BookTechnician
from allo.assistant.flows.model import Tutorial
from allo.assistant.nlu import EntityExtractor
from allo.errors import InvalidInputError, NotFoundError
from allo.testing.clock import ScriptedClock

TODAY = date(2026, 10, 1)


def texts(outputs: Sequence[Output]) -> list[str]:
    return [o.text for o in outputs if isinstance(o, TextOutput)]


def payloads(outputs: Sequence[Output]) -> list[str]:
    found = [o for o in outputs if isinstance(o, ButtonsOutput)]
    return [b.payload for b in found[-1].buttons] if found else []


def ending(outputs: Sequence[Output]) -> Output:
    return outputs[-1]


def walk(
    engine: TutorialEngine, tutorial_id: str, answers: Sequence[str], first: str = ""
) -> tuple[TutorialState, list[Output]]:
    """Start, then answer with ``answers`` (entities extracted from each); all outputs."""
    extractor = EntityExtractor()
    state, outputs = engine.start(tutorial_id, extractor.extract(first, TODAY))
    every = list(outputs)
    for answer in answers:
        state, outputs = engine.advance(state, answer, extractor.extract(answer, TODAY))
        every += outputs
    return state, every


def test_pas_internet_red_steady_from_first_message_books_a_technician(
    engine: TutorialEngine,
) -> None:
    state, outputs = walk(
        engine,
        "pas_internet",
        ["c'est le 01 45 67 89 01", "non"],
        first="ma livebox 6 a un voyant rouge fixe",
    )
    # colour and state came from the first message: straight to the line number
    assert state.history[:6] == [
        "intro",
        "selon_message",
        "demander_couleur",
        "selon_couleur",
        "demander_etat",
        "selon_etat",
    ]
    assert not any("De quelle couleur" in text for text in texts(outputs))
    assert state.slots["test"] == {"line_id": "+33145678901", "status": "no_signal", "incident": ""}
    assert texts(outputs)[-1].startswith("Un technicien passera le 05/10/2026, de 9 h à 12 h")
    assert ending(outputs) == EndOutput(resolved=False, tutorial_id="pas_internet")
    assert state.finished


def test_pas_internet_known_outage(engine: TutorialEngine) -> None:
    _, outputs = walk(engine, "pas_internet", ["red", "steady", "01 98 76 54 32"])
    assert "ticket INC-204518" in texts(outputs)[-1]
    assert ending(outputs) == EndOutput(resolved=False, tutorial_id="pas_internet")


def test_pas_internet_white_light_is_resolved(engine: TutorialEngine) -> None:
    state, outputs = engine.start("pas_internet")
    assert payloads(outputs) == ["white", "red", "orange", "off"]
    state, outputs = engine.advance(state, "Blanc")  # a label works as well as a payload
    assert texts(outputs)[0].startswith("Un voyant blanc fixe signifie")
    assert ending(outputs) == EndOutput(resolved=True, tutorial_id="pas_internet")


def test_pas_internet_red_blinking_hands_over(engine: TutorialEngine) -> None:
    _, outputs = walk(engine, "pas_internet", [], first="le voyant clignote en rouge")
    handoff = ending(outputs)
    assert isinstance(handoff, HandoffOutput)
    assert handoff.reason == "identification refusée ou diagnostic impossible"
    assert handoff.slots == {"couleur": "red", "etat": "blinking"}
    assert "rouge_clignotant" in handoff.steps_done


def test_pas_internet_unknown_line_goes_on_with_manual_checks(engine: TutorialEngine) -> None:
    state, outputs = walk(engine, "pas_internet", ["red", "steady", "01 11 11 11 11", "oui"])
    assert state.slots["test"]["error"] == "invalid"
    assert "verifier_cables" in state.history
    assert ending(outputs) == EndOutput(resolved=True, tutorial_id="pas_internet")


def test_installation_fibre_path(engine: TutorialEngine) -> None:
    _, outputs = engine.start("installation_livebox")
    assert isinstance(outputs[1], ImageOutput)
    assert outputs[1].path == "images/livebox-6-etiquette.svg"
    assert (demo_folder() / outputs[1].path).is_file()
    _, outputs = walk(engine, "installation_livebox", ["complet", "fibre", "blanc_fixe"])
    said = " ".join(texts(outputs))
    assert "port vert « Fibre »" in said and "port gris" not in said
    assert "http://192.168.1.1" in said
    assert ending(outputs) == EndOutput(resolved=True, tutorial_id="installation_livebox")


def test_installation_copper_update_then_red_hands_over(engine: TutorialEngine) -> None:
    _, outputs = walk(
        engine, "installation_livebox", ["complet", "cuivre", "orange_clignotant", "non"]
    )
    assert "port gris « DSL »" in " ".join(texts(outputs))
    handoff = ending(outputs)
    assert isinstance(handoff, HandoffOutput)
    assert handoff.reason == "voyant rouge après installation"
    assert handoff.slots["raccordement"] == "cuivre"


def test_wifi_hands_over_after_two_still_broken(engine: TutorialEngine) -> None:
    state, outputs = walk(engine, "wifi", ["lent", "oui", "bon", "non"])
    assert state.not_working == 1 and not state.finished
    assert "répéteur Wi-Fi Ondea" in " ".join(texts(outputs))
    state, outputs = engine.advance(state, "Non, ça ne marche toujours pas")
    handoff = ending(outputs)
    assert isinstance(handoff, HandoffOutput)
    assert handoff.reason == "le problème persiste après les étapes"
    assert "ça ne marche toujours pas" not in handoff.summary
    assert handoff.summary.startswith("Tutoriel wifi : le problème persiste après les étapes.")


def test_wifi_missing_network_resolved(engine: TutorialEngine) -> None:
    _, outputs = walk(engine, "wifi", ["introuvable", "oui"])
    assert "bouton Wi-Fi" in " ".join(texts(outputs))
    assert ending(outputs) == EndOutput(resolved=True, tutorial_id="wifi")


def test_tv_decoder_hdmi_then_restart(engine: TutorialEngine) -> None:
    state, outputs = walk(engine, "tv_decodeur", ["pas_de_signal", "non", "oui"])
    assert state.history[:4] == ["demander_message", "veille", "hdmi", "demander_resultat_hdmi"]
    assert "redemarrer" in state.history
    assert ending(outputs) == EndOutput(resolved=True, tutorial_id="tv_decodeur")


def test_tv_decoder_tv02_hands_over(engine: TutorialEngine) -> None:
    _, outputs = walk(engine, "tv_decodeur", ["tv02"])
    assert isinstance(ending(outputs), HandoffOutput)


def test_sim_esim_iphone(engine: TutorialEngine) -> None:
    state, outputs = walk(engine, "sim_esim", ["esim", "iphone", "oui"])
    assert "Ajouter une eSIM" in " ".join(texts(outputs))
    assert "esim_android" not in state.history
    assert texts(outputs)[-1].endswith("Passez un appel test au 888 (messagerie vocale, gratuit).")


def test_sim_puk_found_and_not_found(engine: TutorialEngine) -> None:
    _, found = walk(engine, "sim_esim", ["puk", "oui"])
    assert ending(found) == EndOutput(resolved=True, tutorial_id="sim_esim")
    _, missing = walk(engine, "sim_esim", ["puk", "non"])
    handoff = ending(missing)
    assert isinstance(handoff, HandoffOutput) and handoff.reason == "code PUK introuvable"


def test_facture_amount_from_entity(engine: TutorialEngine) -> None:
    state, outputs = walk(engine, "facture", ["plus_elevee", "elle fait 79,90 €", "non"])
    assert state.slots["montant"] == "79.90"
    assert "Pour comprendre ce montant" in " ".join(texts(outputs))
    handoff = ending(outputs)
    assert isinstance(handoff, HandoffOutput)
    assert texts(outputs)[-1].startswith("Je transmets votre demande à un conseiller facturation")


def test_facture_amount_needs_an_amount(engine: TutorialEngine) -> None:
    state, _ = walk(engine, "facture", ["plus_elevee"])
    state, outputs = engine.advance(state, "je ne sais pas")
    assert texts(outputs)[0] == "Je n'ai pas compris votre réponse. Pouvez-vous reformuler ?"
    assert state.step_id == "demander_montant"


def test_demenagement_books_connection(engine: TutorialEngine) -> None:
    state, outputs = walk(
        engine,
        "demenagement",
        ["fibre", "non", "01 23 45 67 89"],
        first="je déménage le 3 novembre au 12 rue de la Paix 75002 Paris",
    )
    assert state.slots["adresse"] == "12 rue de la Paix 75002 Paris"
    assert state.slots["date"] == "2026-11-03"
    assert "demander_adresse" in state.history  # skipped: filled from the first message
    said = " ".join(texts(outputs))
    assert "Tester ma nouvelle adresse" in said and "12 rue de la Paix 75002 Paris" in said
    assert "réservé le 05/10/2026" in said
    assert ending(outputs) == EndOutput(resolved=True, tutorial_id="demenagement")


def test_signaler_panne_opens_a_ticket(engine: TutorialEngine) -> None:
    state, outputs = walk(engine, "signaler_panne", ["tv", "non", "01 23 45 67 89"])
    ticket = state.slots["ticket"]["ticket_id"]
    assert ticket.startswith("INC-") and len(ticket) == 10
    assert f"J'ai ouvert le ticket {ticket}." in texts(outputs)[-1]
    assert ending(outputs) == EndOutput(resolved=True, tutorial_id="signaler_panne")


def test_signaler_panne_known_incident_on_the_line(engine: TutorialEngine) -> None:
    _, outputs = walk(engine, "signaler_panne", ["internet", "non", "01 98 76 54 32"])
    assert "ticket INC-204518" in texts(outputs)[-1]
    assert ending(outputs) == EndOutput(resolved=False, tutorial_id="signaler_panne")


def test_invalid_button_payload_reprompts_then_hands_over(engine: TutorialEngine) -> None:
    state, _ = engine.start("wifi")
    for attempt in (1, 2):
        state, outputs = engine.advance(state, "banane")
        assert state.unrecognised == attempt
        assert texts(outputs) == [
            "Je n'ai pas compris votre réponse. Choisissez une des propositions ci-dessous.",
            "Quel est le problème avec votre Wi-Fi ?",
        ]
        assert payloads(outputs) == ["lent", "introuvable"]
    state, outputs = engine.advance(state, "banane")
    handoff = ending(outputs)
    assert isinstance(handoff, HandoffOutput) and handoff.reason == "réponses non comprises"
    assert state.finished


def test_a_recognised_answer_resets_the_counter(engine: TutorialEngine) -> None:
    state, _ = engine.start("wifi")
    state, _ = engine.advance(state, "??")
    state, _ = engine.advance(state, "??")
    state, _ = engine.advance(state, "lent")
    assert state.unrecognised == 0
    state, outputs = engine.advance(state, "??")
    assert not isinstance(ending(outputs), HandoffOutput)


def test_state_round_trips_through_json_mid_tutorial(clock: ScriptedClock) -> None:
    first = TutorialEngine(load_tutorials(demo_folder()), demo_registry(clock))
    state, _ = first.start("pas_internet")
    state, _ = first.advance(state, "red")
    saved = json.dumps(state.to_dict())
    # a "restart": a new engine, the state read back from storage
    second = TutorialEngine(load_tutorials(demo_folder()), first.connectors)
    restored = TutorialState.from_dict(json.loads(saved))
    assert restored == state
    restored, outputs = second.advance(restored, "blinking")
    assert isinstance(ending(outputs), HandoffOutput)


def test_advance_does_not_mutate_the_given_state(engine: TutorialEngine) -> None:
    state, _ = engine.start("wifi")
    before = state.to_dict()
    engine.advance(state, "lent")
    assert state.to_dict() == before


def test_state_from_an_older_version_restarts_and_keeps_slots(engine: TutorialEngine) -> None:
    state, _ = walk(engine, "pas_internet", ["red"])
    old = TutorialState.from_dict({**state.to_dict(), "version": 0})
    new, outputs = engine.advance(old, "steady")
    assert texts(outputs)[0].startswith("Ce guide a été mis à jour")
    assert new.version == 2 and new.slots["couleur"] == "red"
    assert new.step_id == "demander_etat"  # the colour is known: asked again from there


def test_state_on_a_removed_step_restarts(engine: TutorialEngine) -> None:
    state, _ = engine.start("wifi")
    moved = TutorialState.from_dict({**state.to_dict(), "step_id": "ancienne_etape"})
    new, outputs = engine.advance(moved, "lent")
    assert texts(outputs)[0].startswith("Ce guide a été mis à jour")
    assert new.step_id == "demander_symptome"


def test_clear_errors(engine: TutorialEngine) -> None:
    with pytest.raises(NotFoundError, match="no tutorial 'inconnu' \\(known: demenagement, "):
        engine.start("inconnu")
    state, _ = walk(engine, "wifi", ["introuvable", "oui"])
    with pytest.raises(InvalidInputError, match="tutorial 'wifi' is finished"):
        engine.advance(state, "oui")
    with pytest.raises(InvalidInputError, match="invalid tutorial state"):
        TutorialState.from_dict({"tutorial_id": "wifi"})
    with pytest.raises(InvalidInputError, match="must be a mapping"):
        TutorialState.from_dict([1, 2])


def test_unregistered_connector_is_a_configuration_error(clock: ScriptedClock) -> None:
    with pytest.raises(TutorialError) as caught:
        TutorialEngine(load_tutorials(demo_folder()), ConnectorRegistry([BookTechnician(clock)]))
    assert str(caught.value) == (
        "tutorial 'pas_internet': step 'test_ligne': connector 'check_line_status' is not "
        "registered (registered: book_technician)"
    )


def _engine_with(*connectors: ScriptedConnector) -> TutorialEngine:
    tutorials = load_tutorials(demo_folder())
    return TutorialEngine(
        {"signaler_panne": tutorials["signaler_panne"]}, ConnectorRegistry(connectors)
    )


def test_retryable_failure_is_retried_once() -> None:
    check = ScriptedConnector(
        "check_line_status",
        [ConnectorFailure("timeout", retryable=True), {"status": "outage", "incident": "INC-1"}],
    )
    engine = _engine_with(check, ScriptedConnector("report_outage", []))
    _, outputs = walk(engine, "signaler_panne", ["internet", "non", "01 23 45 67 89"])
    assert len(check.calls) == 2 and check.calls[0] == {"line_id": "+33123456789"}
    assert "ticket INC-1)" in texts(outputs)[-1]


def test_failure_goes_to_on_error_or_hands_over() -> None:
    check = ScriptedConnector("check_line_status", [ConnectorFailure("down", retryable=False)])
    report = ScriptedConnector("report_outage", [RuntimeError("boom")])
    engine = _engine_with(check, report)
    state, outputs = walk(engine, "signaler_panne", ["internet", "non", "01 23 45 67 89"])
    assert len(check.calls) == 1  # not retryable: on_error goes on to report_outage
    assert report.calls == [{"line_id": "+33123456789", "service": "internet"}]
    handoff = ending(outputs)
    assert isinstance(handoff, HandoffOutput)
    assert handoff.reason == (
        "action report_outage en échec : connector 'report_outage' failed: RuntimeError"
    )
    assert state.slots["ticket"]["error"] == "failed"


def test_english_texts_and_labels(engine: TutorialEngine) -> None:
    state, outputs = engine.start("pas_internet", language="en")
    assert texts(outputs)[0].startswith("Let's get your connection back.")
    assert [b.label for b in outputs[-1].buttons] == ["White", "Red", "Orange", "Off"]  # type: ignore[union-attr]
    state, outputs = engine.advance(state, "red")
    assert texts(outputs) == ["Is the red light steady or blinking?"]
    state, outputs = engine.advance(state, "Blinking")  # an English label answers too
    assert state.slots["etat"] == "blinking"
    assert engine.for_intent("code_pin_puk") is engine.tutorials["sim_esim"]
    assert engine.for_intent("resiliation") is None


def test_branch_on_an_entity_of_the_last_message() -> None:
    tutorial = Tutorial.model_validate(
        {
            "id": "modele",
            "title": "Modèle",
            "intents": ["installation_box"],
            "slots": [{"name": "reponse"}],
            "steps": [
                {
                    "id": "q",
                    "type": "ask",
                    "text": "Quelle box ?",
                    "slot": "reponse",
                    "free_text": True,
                },
                {
                    "id": "b",
                    "type": "branch",
                    "entity": "box_model",
                    "cases": [{"equals": ["Livebox 6", "Livebox 7"], "goto": "recente"}],
                    "default": "autre",
                },
                {"id": "recente", "type": "end", "resolved": True, "text": "Box récente"},
                {"id": "autre", "type": "end", "resolved": False},
            ],
        }
    )
    engine = TutorialEngine({"modele": tutorial}, ConnectorRegistry())
    extractor = EntityExtractor()
    state, _ = engine.start("modele", extractor.extract("ma livebox 4", TODAY))
    _, outputs = engine.advance(state, "une livebox 6", extractor.extract("une livebox 6", TODAY))
    assert texts(outputs) == ["Box récente"]
    state, _ = engine.start("modele", extractor.extract("ma livebox 6", TODAY))
    _, outputs = engine.advance(state, "je ne sais pas")  # no entity in the last message
    assert outputs[-1] == EndOutput(resolved=False, tutorial_id="modele")


def test_pas_internet_light_off_in_first_message_skips_the_colour(engine: TutorialEngine) -> None:
    state, outputs = engine.start("pas_internet", {"light_state": "off"}, "fr")
    # an unlit light has no colour to ask: straight to the power checks
    assert "demander_couleur" not in state.history
    assert state.step_id == "resultat_redemarrage"
    assert any("n'est pas alimentée" in t for t in texts(outputs))
