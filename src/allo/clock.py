"""The clock that time-dependent logic reads, injected so that it can be tested.

One protocol for the whole product: the NOC engine (windows run on the alarms' own
*event time*; the clock says whether a timestamp is in the future and how long a paced
replay waits), the assistant's sessions and connectors, the model gateway's budgets and
the audit log. Tests use :class:`allo.testing.clock.ScriptedClock` and never sleep.
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
