"""The tutorial format: the demo tutorials load, invalid files fail with exact messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from allo.assistant.flows import Tutorial, TutorialError, demo_folder, load_tutorial, load_tutorials
from allo.assistant.flows.model import Action, Ask, Branch, End, Handoff, Text, fill

INVALID = Path(__file__).parent / "invalid"
INTENTS = Path(__file__).parents[3] / "src/allo/assistant/data/intents_fr.yaml"

EXPECTED = {
    "bad_yaml.yaml": "invalid YAML at line 5; check the indentation",
    "duplicate_step.yaml": "tutorial 'doublon': steps[1] (id 'etape'): duplicate step id 'etape'",
    "empty_intents.yaml": "tutorial 'sans_intention': intents: "
    "List should have at least 1 item after validation, not 0",
    "extra_field.yaml": "tutorial 'champ_en_trop': steps[0] (id 'bonjour'): colour: "
    "Extra inputs are not permitted",
    "missing_image.yaml": "tutorial 'image_absente': steps[0] (id 'photo'): image: "
    "no file 'images/absente.png' next to the tutorial",
    "missing_title.yaml": "tutorial 'sans_titre': title: Field required",
    "no_ending.yaml": "tutorial 'sans_fin': steps[0] (id 'bonjour'): "
    "the last step must be 'end' or 'handoff', or name its 'next' step",
    "unanswerable_question.yaml": "tutorial 'question_muette': steps[0] (id 'question'): "
    "a question needs buttons or free_text: true",
    "undeclared_slot.yaml": "tutorial 'slot_absent': steps[0] (id 'question'): slot: "
    "undeclared slot 'reponse'",
    "unknown_entity.yaml": "tutorial 'entite': slots[0]: entity: unknown entity type 'colour'; "
    "use one of address, amount, box_model, contract_id, customer_id, date, light_colour, "
    "light_state, phone_number, text, ticket_id",
    "unknown_goto.yaml": "tutorial 'saut': steps[1] (id 'route'): cases[0].goto: "
    "unknown step 'nulle_part'",
    "unknown_placeholder.yaml": "tutorial 'gabarit': steps[0] (id 'ticket'): text: "
    "placeholder {ticket} names no slot",
    "unknown_step_type.yaml": "tutorial 'type_inconnu': steps[0] (id 'saut'): "
    "Input tag 'jump' found using 'type' does not match any of the expected tags: "
    "'say', 'ask', 'branch', 'action', 'handoff', 'end'",
}


def test_every_invalid_file_has_an_expected_message() -> None:
    assert sorted(p.name for p in INVALID.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invalid_file_message(name: str) -> None:
    path = INVALID / name
    with pytest.raises(TutorialError) as caught:
        load_tutorial(path)
    assert str(caught.value) == f"{path}: {EXPECTED[name]}"


def test_demo_tutorials_load() -> None:
    tutorials = load_tutorials(demo_folder())
    assert sorted(tutorials) == [
        "demenagement",
        "facture",
        "installation_livebox",
        "pas_internet",
        "signaler_panne",
        "sim_esim",
        "tv_decodeur",
        "wifi",
    ]


@pytest.mark.parametrize("tutorial", load_tutorials(demo_folder()).values(), ids=lambda t: t.id)
def test_demo_tutorial_shape(tutorial: Tutorial) -> None:
    known_intents = set(yaml.safe_load(INTENTS.read_text(encoding="utf-8"))["intents"])
    assert set(tutorial.intents) <= known_intents
    assert any(isinstance(step, Ask) and step.buttons for step in tutorial.steps)
    assert any(isinstance(step, Branch) for step in tutorial.steps) or any(
        isinstance(step, Ask) and any(b.goto for b in step.buttons) for step in tutorial.steps
    )
    assert any(isinstance(step, End | Handoff) for step in tutorial.steps)
    assert tutorial.title.fr and tutorial.title.en


def test_connectors_used_where_natural() -> None:
    tutorials = load_tutorials(demo_folder())

    def connectors(tutorial_id: str) -> set[str]:
        steps = tutorials[tutorial_id].steps
        return {s.connector for s in steps if isinstance(s, Action)}

    assert connectors("pas_internet") == {"check_line_status", "book_technician"}
    assert connectors("signaler_panne") == {"check_line_status", "report_outage"}
    assert connectors("demenagement") == {"book_technician"}


def test_two_files_with_one_id(tmp_path: Path) -> None:
    source = (demo_folder() / "facture.yaml").read_text(encoding="utf-8")
    (tmp_path / "a.yaml").write_text(source, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(source, encoding="utf-8")
    with pytest.raises(TutorialError) as caught:
        load_tutorials(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path / 'b.yaml'}: tutorial 'facture': id: already used by {tmp_path / 'a.yaml'}"
    )


def test_missing_folder_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(TutorialError, match="not a folder of tutorials"):
        load_tutorials(tmp_path / "absent")
    (tmp_path / "list.yaml").write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(TutorialError, match="expected a mapping with 'id', 'title' and 'steps'"):
        load_tutorial(tmp_path / "list.yaml")


def test_plain_string_is_french_and_english_falls_back() -> None:
    text = Text.model_validate("Le voyant est-il fixe ?")
    assert text.get("en") == text.get("fr") == "Le voyant est-il fixe ?"
    tutorial = load_tutorials(demo_folder())["pas_internet"]
    assert tutorial.title.get("en") == "No internet: diagnosis from the lights"


def test_every_demo_text_and_label_has_english() -> None:
    for tutorial in load_tutorials(demo_folder()).values():
        for step in tutorial.steps:
            text = getattr(step, "text", None)
            assert text is None or text.en, (tutorial.id, step.id)
            if isinstance(step, Ask):
                assert all(b.label.en for b in step.buttons), (tutorial.id, step.id)


def test_fill_placeholders() -> None:
    slots = {"ligne": "+33123456789", "rdv": {"date": "02/10/2026"}}
    assert fill("{ligne} le {rdv.date} {rdv.absent}", slots) == "+33123456789 le 02/10/2026 "
