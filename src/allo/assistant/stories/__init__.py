"""Conversation tests: stories of customer messages and what the assistant must do.

``load_stories(path)`` reads and validates story files (see :mod:`.model` for the
format); :class:`StoryRunner` plays them on the real assistant. ``allo test
conversations DIR`` is the command line over both.
"""

from pathlib import Path

from allo.assistant.stories.model import Pattern, Story, StoryFileError, StoryStep, load_stories
from allo.assistant.stories.runner import (
    DEFAULT_NOW,
    RunReport,
    StepFailure,
    StoryResult,
    StoryRunner,
    runner_for,
)


def demo_stories() -> Path:
    """The folder of the French demo stories shipped with Allo."""
    return Path(__file__).parent.parent / "data" / "stories"


__all__ = [
    "DEFAULT_NOW",
    "Pattern",
    "RunReport",
    "StepFailure",
    "Story",
    "StoryFileError",
    "StoryResult",
    "StoryRunner",
    "StoryStep",
    "demo_stories",
    "load_stories",
    "runner_for",
]
