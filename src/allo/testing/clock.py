"""A scripted clock: time moves only when the test says so (Alertmanager's ``At(2.2)``)."""

from __future__ import annotations


class ScriptedClock:
    """A :class:`allo.clock.Clock` whose time is set by the test; ``sleep`` advances it."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self.slept = 0.0

    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._now += seconds
            self.slept += seconds

    def set(self, moment: float) -> None:
        """Jump to ``moment`` (never backwards)."""
        self._now = max(self._now, moment)

    def advance(self, seconds: float) -> None:
        """Move forward by ``seconds``."""
        self._now += max(seconds, 0.0)
