"""The clock the NOC engine reads, injected so that time-dependent logic can be tested.

Windows (deduplication, flapping, correlation, incident closing) run on *event time*,
the alarms' own timestamps; the clock says what "now" is for everything else: whether a
timestamp is in the future, and how long to wait when a replay is paced (``--speed``).
Tests use :class:`allo.testing.clock.ScriptedClock` and never sleep.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Seconds since the Unix epoch, and a way to wait."""

    def now(self) -> float:
        """The current time."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a scripted clock just moves on)."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)
