"""Connectors: the protocol, the registry's error classification and the demo connectors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from allo.assistant.flows import (
    BookTechnician,
    CheckLineStatus,
    Connector,
    ConnectorArgumentError,
    ConnectorFailure,
    ConnectorRegistry,
    ReportOutage,
    ScriptedConnector,
    demo_registry,
)
from allo.errors import InvalidInputError, NotFoundError, RuntimeFailure, UserError
from allo.testing.clock import ScriptedClock

from .conftest import THURSDAY


def test_demo_connectors_follow_the_protocol(clock: ScriptedClock) -> None:
    registry = demo_registry(clock)
    assert registry.names() == ["book_technician", "check_line_status", "report_outage"]
    for name in registry.names():
        assert isinstance(registry.get(name), Connector)


def test_check_line_status_table_and_fake() -> None:
    check = CheckLineStatus()
    assert check.call({"line_id": "+33198765432"}) == {
        "line_id": "+33198765432",
        "status": "outage",
        "incident": "INC-204518",
    }
    with pytest.raises(ConnectorArgumentError, match="unknown line '\\+33100000000'"):
        check.call({"line_id": "+33100000000"})
    with pytest.raises(ConnectorArgumentError, match="argument 'line_id' is missing"):
        check.call({"line_id": "  "})
    fake = CheckLineStatus(fake=lambda line: {"status": "ok", "incident": ""})
    assert fake.call({"line_id": "x"})["status"] == "ok"


def test_book_technician_reads_the_injected_clock() -> None:
    clock = ScriptedClock(THURSDAY)  # Thursday 1 October 2026
    book = BookTechnician(clock)
    first = book.call({"line_id": "+33123456789"})
    assert first["date"] == "05/10/2026"  # Saturday skipped to Monday
    assert first["iso"] == "2026-10-05T09:00:00+00:00"
    assert first["booking_id"].startswith("RDV-")
    clock.advance(86_400 * 4)  # Monday: Wednesday is free
    assert book.call({"line_id": "+33123456789"})["date"] == "07/10/2026"
    assert BookTechnician(clock, lead_days=0).call({"line_id": "x"})["date"] == "05/10/2026"


def test_report_outage_ticket_ids_are_deterministic_and_distinct() -> None:
    first, second = ReportOutage(), ReportOutage()
    one = first.call({"line_id": "+33123456789", "service": "tv"})
    assert one == second.call({"line_id": "+33123456789", "service": "tv"})
    assert one["ticket_id"].startswith("INC-") and one["ticket_id"][4:].isdigit()
    assert len(one["ticket_id"]) == 10
    assert first.call({"line_id": "+33123456789", "service": "tv"}) != one


def test_registry_classifies_errors() -> None:
    class Broken:
        name = "broken"

        def call(self, args: Mapping[str, str]) -> dict[str, Any]:
            raise ZeroDivisionError

    class NotADict:
        name = "not_a_dict"

        def call(self, args: Mapping[str, str]) -> Any:
            return ["a"]

    registry = ConnectorRegistry([Broken(), NotADict()])
    with pytest.raises(ConnectorFailure) as caught:
        registry.call("broken", {})
    assert str(caught.value) == "connector 'broken' failed: ZeroDivisionError"
    assert caught.value.retryable is False
    with pytest.raises(ConnectorFailure, match="returned no mapping"):
        registry.call("not_a_dict", {})
    with pytest.raises(NotFoundError, match="no connector named 'x' \\(registered: broken, "):
        registry.call("x", {})
    with pytest.raises(InvalidInputError, match="already registered"):
        registry.register(Broken())
    assert issubclass(ConnectorArgumentError, UserError)
    assert issubclass(ConnectorFailure, RuntimeFailure)


def test_registry_passes_allo_errors_through() -> None:
    flaky = ScriptedConnector("flaky", [ConnectorFailure("busy", retryable=True), {"ok": True}])
    registry = ConnectorRegistry([flaky])
    with pytest.raises(ConnectorFailure) as caught:
        registry.call("flaky", {"a": "1"})
    assert caught.value.retryable is True
    assert registry.call("flaky", {"a": "2"}) == {"ok": True}
    assert flaky.calls == [{"a": "1"}, {"a": "2"}]
    with pytest.raises(ConnectorFailure, match="no scripted result"):
        registry.call("flaky", {})
