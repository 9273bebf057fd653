"""A trained French understander (fake embedder), the demo tutorials and the demo KB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from allo.assistant.flows import TutorialEngine, demo_folder, demo_registry, load_tutorials
from allo.assistant.nlu import IntentClassifier, MessageUnderstanding, load_examples
from allo.assistant.policy import DialoguePolicy
from allo.assistant.session import INTENTS_FILE, Assistant
from allo.assistant.store import ConversationStore
from allo.knowledge.service import KnowledgeBase
from allo.testing.clock import ScriptedClock
from allo.testing.embedders import FakeEmbedder

#: Thursday 1 October 2026, 10:00 UTC
THURSDAY = 1_790_848_800.0


@pytest.fixture(scope="session")
def understander(tmp_path_factory: pytest.TempPathFactory) -> MessageUnderstanding:
    cache = tmp_path_factory.mktemp("intents")
    classifier = IntentClassifier(FakeEmbedder(), cache_dir=cache).fit(load_examples(INTENTS_FILE))
    return MessageUnderstanding(classifier)


@pytest.fixture
def clock() -> ScriptedClock:
    return ScriptedClock(THURSDAY)


@pytest.fixture
def policy(
    understander: MessageUnderstanding, demo_kb: KnowledgeBase, clock: ScriptedClock
) -> DialoguePolicy:
    tutorials = TutorialEngine(load_tutorials(demo_folder()), demo_registry(clock))
    return DialoguePolicy(understander, tutorials, demo_kb)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'conversations.db'}"


@pytest.fixture
def assistant(policy: DialoguePolicy, db_url: str, clock: ScriptedClock) -> Iterator[Assistant]:
    store = ConversationStore(db_url)
    store.migrate()
    bot = Assistant(store, policy, clock)
    yield bot
    bot.close()
