"""Conversation stories: the format's exact errors, the runner's verdicts, the demo stories.

The demo stories run here on the fake (hashing) embedder of the other dialogue tests;
``allo test conversations`` runs them on the configured e5 model (see docs/assistant.md).
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from allo.assistant.flows import demo_folder, load_tutorials
from allo.assistant.flows.model import End
from allo.assistant.nlu import IntentClassifier, MessageUnderstanding, load_examples
from allo.assistant.session import INTENTS_FILE
from allo.assistant.stories import (
    Story,
    StoryFileError,
    StoryRunner,
    demo_stories,
    load_stories,
)
from allo.cli.app import app
from allo.knowledge.service import KnowledgeBase
from allo.testing.embedders import FakeEmbedder

INVALID = Path(__file__).parent / "stories_invalid"
DEMO = load_stories(demo_stories())
TUTORIALS = load_tutorials(demo_folder())

#: demo stories that fail on the fake embedder (no semantic similarity, no dense search).
#: With the e5 model (`allo test conversations`), the stolen smartphone and Greece stories
#: still fail: the intent is right but the knowledge base abstains, because its best chunk
#: holds few of the question's words (coverage 0.27 / 0.34) and e5 does not stand out
#: (dense_z 2.5 / 2.3, as for an off-topic question); see docs/retrieval.md.
#: Strict: a story that starts passing must leave this list.
FAKE_EMBEDDER_FAILURES = {
    "panne du téléphone fixe, numéro donné d'emblée": "hashing embedder: read as demenagement",
    "smartphone dérobé, bloquer la ligne": "hashing embedder: read as oos; KB abstains too",
    "forfait en vacances en Grèce": "the knowledge base abstains: few of its words in one chunk",
    "deux questions sans réponse": "hashing embedder: football question read as TV",
    "question sur l'itinérance pendant l'activation de la SIM": "hashing embedder: read as "
    "activation_sim",
}


@pytest.fixture(scope="module")
def runner(demo_kb: KnowledgeBase, tmp_path_factory: pytest.TempPathFactory) -> StoryRunner:
    cache = tmp_path_factory.mktemp("story-intents")
    classifier = IntentClassifier(FakeEmbedder(), cache_dir=cache).fit(load_examples(INTENTS_FILE))
    return StoryRunner(MessageUnderstanding(classifier), TUTORIALS, demo_kb)


def write(path: Path, stories: list[dict[str, object]]) -> Path:
    path.write_text(yaml.safe_dump({"stories": stories}, allow_unicode=True), encoding="utf-8")
    return path


INSTALL = [
    {"user": "Comment installer ma Livebox ?", "intent": "installation_box"},
    {"button": "complet", "step": "type_raccordement"},
]

# -- the demo stories ------------------------------------------------------------------


def test_demo_stories_cover_every_tutorial_to_an_end() -> None:
    assert len(DEMO) >= 40
    expected = [step.expect for story in DEMO for step in story.steps]
    for tutorial in TUTORIALS.values():
        ends = {s.id for s in tutorial.steps if isinstance(s, End)}
        assert any(e.get("step") in ends for e in expected), tutorial.id
    actions = {e.get("action") for e in expected}
    assert {"tutorial_switch", "smalltalk", "abstain", "handoff"} <= actions
    assert any(e.get("action") == "answer" and e.get("tutorial") for e in expected)  # aside
    reasons = {e["handoff"].get("reason") for e in expected if e.get("handoff")}
    assert {"demande explicite", "très mécontent", "sans réponse", "non résolu"} <= reasons
    assert any(e.get("language") == "en" for e in expected)
    kinds = {kind for e in expected for kind in e.get("entities", {})}
    assert {"box_model", "light_colour", "phone_number", "amount", "address"} <= kinds


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def test_demo_story_messages_are_not_training_examples() -> None:
    trained = {_plain(e.text).strip(" ?!.") for e in load_examples(INTENTS_FILE)}
    said = {_plain(s.user).strip(" ?!.") for story in DEMO for s in story.steps if s.user}
    assert not said & trained


def test_demo_stories_reference_known_intents_tutorials_and_steps(runner: StoryRunner) -> None:
    runner.check(DEMO, {e.intent for e in load_examples(INTENTS_FILE)})


@pytest.mark.parametrize(
    "story",
    [
        pytest.param(
            s,
            id=s.name,
            marks=[pytest.mark.xfail(strict=True, reason=FAKE_EMBEDDER_FAILURES[s.name])]
            if s.name in FAKE_EMBEDDER_FAILURES
            else [],
        )
        for s in DEMO
    ],
)
def test_demo_story_passes(runner: StoryRunner, story: Story) -> None:
    result = runner.run([story]).results[0]
    assert result.failure is None, result.failure


# -- the runner's verdicts ---------------------------------------------------------------


def test_a_wrong_expectation_fails_at_its_step(runner: StoryRunner, tmp_path: Path) -> None:
    steps = [*INSTALL, {"button": "fibre", "step": "fin", "says": "raccordé"}]
    stories = load_stories(write(tmp_path / "s.yaml", [{"name": "faux", "steps": steps}]))
    result = runner.run(stories).results[0]
    assert not result.passed and result.steps_run == 3
    failure = result.failure
    assert failure is not None
    assert (failure.step, failure.said, failure.check) == (3, "button: fibre", "step")
    assert (failure.expected, failure.actual) == ("fin", "demander_voyant")
    assert "comment est le voyant principal" in failure.reply


def test_each_kind_of_expectation_can_fail(runner: StoryRunner, tmp_path: Path) -> None:
    first = {"user": "Comment installer ma Livebox 6 ?"}
    wrong = {
        "intent": ("facture", "installation_box (ranking: installation_box"),
        "language": ("en", "fr"),
        "entities": ({"box_model": "Livebox 5"}, "{'box_model': 'Livebox 6'}"),
        "action": ("answer", "tutorial_start"),
        "tutorial": ("wifi", "installation_livebox"),
        "says": ("voyant rouge", "see reply"),
        "not_says": ("carton", "see reply"),
        "buttons": (["complet"], "[complet, incomplet]"),
        "cites": ("resiliation", "none"),
        "abstains": (True, "False"),
        "handoff": (True, "handoff: False"),
    }
    stories = [{"name": key, "steps": [{**first, key: value}]} for key, (value, _) in wrong.items()]
    results = runner.run(load_stories(write(tmp_path / "s.yaml", stories))).results
    for result in results:
        assert result.failure is not None, result.story.name
        assert result.failure.check == result.story.name
        assert result.failure.actual.startswith(wrong[result.story.name][1])


def test_a_button_not_offered_fails(runner: StoryRunner, tmp_path: Path) -> None:
    steps = [INSTALL[0], {"button": "fibre", "step": "demander_voyant"}]
    stories = load_stories(write(tmp_path / "s.yaml", [{"name": "b", "steps": steps}]))
    failure = runner.run(stories).results[0].failure
    assert failure is not None and failure.check == "button"
    assert failure.actual == "offered: complet, incomplet"


def test_after_a_handoff_the_bot_stays_quiet(runner: StoryRunner, tmp_path: Path) -> None:
    steps = [
        {"user": "je veux parler à un conseiller", "handoff": {"reason": "demande explicite"}},
        {"user": "allô ?", "says": "Bonjour"},
    ]
    stories = load_stories(write(tmp_path / "s.yaml", [{"name": "h", "steps": steps}]))
    failure = runner.run(stories).results[0].failure
    assert failure is not None and failure.step == 2
    assert failure.actual == "no reply (the conversation is waiting_advisor)"


def test_fail_fast_stops_after_the_first_failure(runner: StoryRunner, tmp_path: Path) -> None:
    bad = {"name": "mauvais", "steps": [{"user": "Bonjour", "intent": "facture"}]}
    good = {"name": "bon", "steps": [{"user": "Bonjour", "action": "smalltalk"}]}
    stories = load_stories(write(tmp_path / "s.yaml", [bad, good]))
    assert [r.passed for r in runner.run(stories).results] == [False, True]
    report = runner.run(stories, fail_fast=True)
    assert [r.story.name for r in report.results] == ["mauvais"]
    assert report.to_dict()["failed"] == 1


def test_booking_dates_follow_the_story_clock(runner: StoryRunner, tmp_path: Path) -> None:
    steps = [
        {"user": "je n'ai plus internet"},
        {"button": "red"},
        {"button": "steady"},
        {"user": "01 23 45 67 89"},
        {"button": "non", "says": "le 14/12/2026"},  # Friday + 2 days = Sunday -> Monday
    ]
    story = {"name": "date", "now": "2026-12-11T15:00:00+01:00", "steps": steps}
    result = runner.run(load_stories(write(tmp_path / "s.yaml", [story]))).results[0]
    assert result.passed, result.failure


def test_unknown_intents_tutorials_and_steps_are_invalid(
    runner: StoryRunner, tmp_path: Path
) -> None:
    steps = [
        {"user": "Bonjour", "intent": "salut"},
        {"user": "ma box", "tutorial": "wifi", "step": "fin"},
    ]
    stories = load_stories(write(tmp_path / "s.yaml", [{"name": "refs", "steps": steps}]))
    with pytest.raises(StoryFileError) as raised:
        runner.check(stories, {"salutation", "wifi_lent"})
    where = f"{tmp_path / 's.yaml'}: story 'refs'"
    assert raised.value.problems == [
        f"{where}, step 1: unknown intent 'salut' (known: salutation, wifi_lent)",
        f"{where}, step 2: step 'fin' is not a step of tutorial 'wifi'",
    ]


# -- invalid files -------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(INVALID.glob("*.yaml")), ids=lambda p: p.stem)
def test_invalid_file_gives_its_exact_error(path: Path) -> None:
    first = path.read_bytes().split(b"\n", 1)[0].decode("utf-8")
    assert first.startswith("# error: ")
    with pytest.raises(StoryFileError) as raised:
        load_stories(path)
    assert raised.value.problems == [f"{path}: {first.removeprefix('# error: ')}"]


def test_a_folder_reports_every_problem_and_duplicate_names(tmp_path: Path) -> None:
    one = write(tmp_path / "a.yaml", [{"name": "x", "steps": [{"user": "a", "step": "b"}]}])
    two = write(tmp_path / "b.yaml", [{"name": "x", "steps": [{"user": "a", "step": "b"}]}])
    (tmp_path / "c.yml").write_text("stories: 3\n", encoding="utf-8")
    with pytest.raises(StoryFileError) as raised:
        load_stories(tmp_path)
    assert raised.value.problems == [
        f"{two}: story 'x': this name is already used in {one}; give each story its own name",
        f"{tmp_path / 'c.yml'}: `stories` must be a non-empty list",
    ]
    assert str(raised.value).startswith("2 problems in the story files:\n- ")


def test_missing_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(StoryFileError, match="no story file"):
        load_stories(tmp_path)
    with pytest.raises(StoryFileError, match="no such file or folder"):
        load_stories(tmp_path / "absent")


# -- the command line ----------------------------------------------------------------------

cli = CliRunner()


@pytest.fixture
def demo_settings(demo_kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLO_EMBEDDER", "fake")
    monkeypatch.setenv("ALLO_DATA_DIR", str(demo_kb.settings.data_dir))


def test_cli_passes_and_prints_json(demo_settings: None, tmp_path: Path) -> None:
    good = {"name": "bonjour", "steps": [{"user": "Bonjour", "action": "smalltalk"}]}
    path = write(tmp_path / "s.yaml", [good])
    result = cli.invoke(app, ["test", "conversations", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["stories"], report["passed"], report["failed"]) == (1, 1, 0)


def test_cli_failure_exits_1_with_expected_and_actual(demo_settings: None, tmp_path: Path) -> None:
    bad = {"name": "mauvais", "steps": [{"user": "Bonjour", "action": "handoff"}]}
    result = cli.invoke(app, ["test", "conversations", str(write(tmp_path / "s.yaml", [bad]))])
    assert result.exit_code == 1
    assert "FAIL mauvais" in result.stdout
    assert "expected: handoff" in result.stdout and "actual:   smalltalk" in result.stdout
    assert "0 passed, 1 failed" in result.stdout


def test_cli_invalid_files_exit_2(demo_settings: None) -> None:
    result = cli.invoke(app, ["test", "conversations", str(INVALID / "no_steps.yaml"), "--json"])
    assert result.exit_code == 2
    problems = json.loads(result.stdout)["problems"]
    assert problems == [
        f"{INVALID / 'no_steps.yaml'}: story 'vide': `steps` must be a non-empty list"
    ]


def test_cli_on_an_empty_knowledge_base_says_how_to_fill_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALLO_EMBEDDER", "fake")
    monkeypatch.setenv("ALLO_DATA_DIR", str(tmp_path / "data"))
    good = {"name": "bonjour", "steps": [{"user": "Bonjour", "action": "smalltalk"}]}
    result = cli.invoke(app, ["test", "conversations", str(write(tmp_path / "s.yaml", [good]))])
    assert result.exit_code == 2
    assert "allo demo" in result.stderr and "allo ingest" in result.stderr


def test_an_assistant_error_fails_the_story_only(runner: StoryRunner, tmp_path: Path) -> None:
    crash = {"name": "trop long", "steps": [{"user": "a" * 3000, "action": "answer"}]}
    fine = {"name": "bonjour", "steps": [{"user": "Bonjour", "action": "smalltalk"}]}
    results = runner.run(load_stories(write(tmp_path / "s.yaml", [crash, fine]))).results
    failure = results[0].failure
    assert failure is not None and failure.check == "reply"
    assert failure.actual.startswith("error: message too long (3000 characters")
    assert results[1].passed
