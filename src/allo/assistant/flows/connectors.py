"""Connectors: the actions a tutorial may call ("check line status", "book a technician").

A connector has a ``name`` and one synchronous method, ``call(args) -> dict``. It tells
the caller's mistakes from runtime failures with the :mod:`allo.errors` tree::

    ConnectorArgumentError (InvalidInputError)   bad or missing argument: do not retry
    ConnectorFailure (RuntimeFailure)            the backend failed; ``retryable`` says
                                                 whether trying again may help

The demo connectors below are deterministic so that tutorials can be tested end to end.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from allo.clock import Clock
from allo.errors import AlloError, InvalidInputError, NotFoundError, RuntimeFailure

__all__ = [
    "BookTechnician",
    "CheckLineStatus",
    "Connector",
    "ConnectorArgumentError",
    "ConnectorFailure",
    "ConnectorRegistry",
    "ReportOutage",
    "ScriptedConnector",
    "demo_registry",
]


class ConnectorArgumentError(InvalidInputError):
    """A connector was called with a missing or invalid argument."""


class ConnectorFailure(RuntimeFailure):
    """A connector's backend failed; ``retryable`` says whether to try again."""


@runtime_checkable
class Connector(Protocol):
    """An action a tutorial can call by name."""

    name: str

    def call(self, args: Mapping[str, str]) -> dict[str, Any]:
        """Run the action; raise ConnectorArgumentError or ConnectorFailure."""
        ...


def _required(args: Mapping[str, str], name: str, connector: str) -> str:
    value = (args.get(name) or "").strip()
    if not value:
        raise ConnectorArgumentError(f"connector {connector!r}: argument {name!r} is missing")
    return value


class ConnectorRegistry:
    """Connectors by name; ``call`` turns unexpected exceptions into ConnectorFailure."""

    def __init__(self, connectors: Iterable[Connector] = ()) -> None:
        self._connectors: dict[str, Connector] = {}
        for connector in connectors:
            self.register(connector)

    def register(self, connector: Connector) -> None:
        if connector.name in self._connectors:
            raise InvalidInputError(f"connector {connector.name!r} is already registered")
        self._connectors[connector.name] = connector

    def names(self) -> list[str]:
        return sorted(self._connectors)

    def __contains__(self, name: object) -> bool:
        return name in self._connectors

    def get(self, name: str) -> Connector:
        try:
            return self._connectors[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise NotFoundError(f"no connector named {name!r} (registered: {known})") from None

    def call(self, name: str, args: Mapping[str, str]) -> dict[str, Any]:
        connector = self.get(name)
        try:
            result = connector.call(args)
        except AlloError:
            raise
        except Exception as error:  # a bug or a backend's own exception
            raise ConnectorFailure(
                f"connector {name!r} failed: {type(error).__name__}", retryable=False
            ) from error
        if not isinstance(result, dict):
            raise ConnectorFailure(f"connector {name!r} returned no mapping", retryable=False)
        return result


#: demo lines (E.164 numbers of fixed lines): their status, and the incident if any
DEMO_LINES: Mapping[str, Mapping[str, str]] = {
    "+33123456789": {"status": "ok", "incident": ""},
    "+33198765432": {"status": "outage", "incident": "INC-204518"},
    "+33145678901": {"status": "no_signal", "incident": ""},
    "+33187654321": {"status": "auth_refused", "incident": ""},
}


class CheckLineStatus:
    """Status of a line from a table (``DEMO_LINES`` by default) or a ``fake`` function.

    ``status`` is ``ok``, ``outage`` (known incident in the area), ``no_signal`` or
    ``auth_refused``; an unknown line is the caller's mistake.
    """

    name = "check_line_status"

    def __init__(
        self,
        lines: Mapping[str, Mapping[str, str]] | None = None,
        fake: Callable[[str], Mapping[str, str]] | None = None,
    ) -> None:
        self._lines = DEMO_LINES if lines is None else lines
        self._fake = fake

    def call(self, args: Mapping[str, str]) -> dict[str, Any]:
        line_id = _required(args, "line_id", self.name)
        if self._fake is not None:
            return {"line_id": line_id, **self._fake(line_id)}
        if line_id not in self._lines:
            raise ConnectorArgumentError(
                f"connector {self.name!r}: unknown line {line_id!r}; check the number"
            )
        return {"line_id": line_id, **self._lines[line_id]}


class BookTechnician:
    """Books the first weekday slot (9:00 UTC) at least ``lead_days`` after the clock's now."""

    name = "book_technician"

    def __init__(self, clock: Clock, lead_days: int = 2) -> None:
        self._clock = clock
        self._lead = lead_days
        self._count = 0

    def call(self, args: Mapping[str, str]) -> dict[str, Any]:
        line_id = _required(args, "line_id", self.name)
        now = datetime.fromtimestamp(self._clock.now(), tz=UTC)
        day = (now + timedelta(days=self._lead)).replace(hour=9, minute=0, second=0, microsecond=0)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        self._count += 1
        return {
            "line_id": line_id,
            "date": day.strftime("%d/%m/%Y"),
            "time": "9 h à 12 h",
            "iso": day.isoformat(),
            "booking_id": f"RDV-{_digits(line_id, self._count)}",
        }


class ReportOutage:
    """Opens an incident ticket ``INC-xxxxxx`` (deterministic: line, kind and a counter)."""

    name = "report_outage"

    def __init__(self) -> None:
        self._count = 0

    def call(self, args: Mapping[str, str]) -> dict[str, Any]:
        line_id = _required(args, "line_id", self.name)
        kind = (args.get("service") or "internet").strip()
        self._count += 1
        return {"ticket_id": f"INC-{_digits(line_id + kind, self._count)}", "service": kind}


def _digits(seed: str, count: int) -> str:
    digest = hashlib.sha256(f"{seed}/{count}".encode()).hexdigest()
    return f"{int(digest[:12], 16) % 900000 + 100000}"


@dataclass
class ScriptedConnector:
    """A test double: returns ``results`` (or raises the exceptions) in order, recording calls."""

    name: str
    results: list[dict[str, Any] | Exception]
    calls: list[dict[str, str]] = field(default_factory=list)

    def call(self, args: Mapping[str, str]) -> dict[str, Any]:
        self.calls.append(dict(args))
        if not self.results:
            raise ConnectorFailure(f"connector {self.name!r}: no scripted result", retryable=False)
        outcome = self.results.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def demo_registry(clock: Clock) -> ConnectorRegistry:
    """The demo connectors, their time read from ``clock``."""
    return ConnectorRegistry([CheckLineStatus(), BookTechnician(clock), ReportOutage()])
