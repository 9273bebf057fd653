from __future__ import annotations

import pytest

from allo.assistant.flows import TutorialEngine, demo_folder, demo_registry, load_tutorials
from allo.testing.clock import ScriptedClock

#: Thursday 1 October 2026, 10:00 UTC
THURSDAY = 1_790_848_800.0


@pytest.fixture
def clock() -> ScriptedClock:
    return ScriptedClock(THURSDAY)


@pytest.fixture
def engine(clock: ScriptedClock) -> TutorialEngine:
    return TutorialEngine(load_tutorials(demo_folder()), demo_registry(clock))
