"""Alarms as stream entries, and the latency histogram the consumers keep."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allo.domain.alarms import Alarm, Severity
from allo.noc.broker.codec import MalformedEntry, decode_alarm, encode_alarm
from allo.noc.broker.latency import BUCKET_MS, LatencyHistogram

names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12).filter(
    lambda s: s.strip() == s and s.strip()
)


@given(
    names,
    names,
    names,
    st.floats(0, 2e9, allow_nan=False),
    st.none() | st.floats(0, 2e9, allow_nan=False),
    st.sampled_from(list(Severity)),
    st.dictionaries(names, names, max_size=3),
    st.integers(-1, 10**9),
)
def test_an_alarm_comes_back_as_it_was_sent(
    alarm_id: str,
    device: str,
    kind: str,
    raised: float,
    cleared: float | None,
    severity: Severity,
    attributes: dict[str, str],
    row: int,
) -> None:
    alarm = Alarm(alarm_id, device, kind, raised, cleared, severity, attributes, row)
    text = encode_alarm(alarm)
    assert decode_alarm({b"alarm": text.encode()}, "unused") == alarm
    assert decode_alarm({"alarm": text}, "unused") == alarm


def test_a_malformed_source_row_travels_as_a_stand_in() -> None:
    stand_in = Alarm("row-3", "unknown", "malformed-input", math.nan, attributes={"raw": "a,b"})
    back = decode_alarm({"alarm": encode_alarm(stand_in)}, "x")
    assert back.alarm_type == "malformed-input" and math.isnan(back.raised_at)
    assert back.id == "row-3" and back.attributes == {"raw": "a,b"}


def test_other_producers_may_use_the_usual_field_names() -> None:
    body = {"host": "olt-1", "alertname": "LOS", "startsAt": "2024-05-01T10:00:00Z", "site": "N"}
    alarm = decode_alarm({"alarm": json.dumps(body)}, "allo:alarms:0:17-0")
    assert (alarm.device, alarm.alarm_type, alarm.id) == ("olt-1", "LOS", "allo:alarms:0:17-0")
    assert alarm.raised_at == 1714557600.0 and alarm.attributes == {"site": "N"}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, "deleted from the stream"),
        ({b"other": b"1"}, "no 'alarm' field"),
        ({b"alarm": b"\xff\xfe not json"}, "not JSON"),
        ({b"alarm": b"[1, 2]"}, "not an object"),
        ({b"alarm": b'{"device": "d"}'}, "missing alarm_type, raised_at"),
        ({b"alarm": b'{"device": "d", "type": "t", "raised_at": "soon"}'}, "neither seconds"),
        ({b"alarm": b"x" * 70_000}, "bytes, over"),
    ],
)
def test_entries_that_are_not_alarms_say_why(fields: dict[bytes, bytes], reason: str) -> None:
    with pytest.raises(MalformedEntry, match=reason):
        decode_alarm(fields, "x")


@given(st.lists(st.floats(0, 5000, allow_nan=False), min_size=1, max_size=300), st.integers(1, 4))
def test_histogram_percentiles_are_exact_to_the_bucket_and_merge(
    values: list[float], parts: int
) -> None:
    merged = LatencyHistogram()
    for part in range(parts):
        piece = LatencyHistogram()
        piece.add_all(values[part::parts])
        merged.merge(LatencyHistogram.from_json(piece.to_json()))
    assert merged.count == len(values)
    ordered = sorted(values)
    for share in (0.5, 0.99, 1.0):
        exact = ordered[max(1, math.ceil(share * len(values))) - 1]
        found = merged.percentile(share)
        assert found is not None
        assert exact - 0.01 <= found <= exact + BUCKET_MS + 0.01


@pytest.mark.parametrize(
    "odd",
    [
        {"severity": ["major"]},
        {"severity": 3},
        {"row": True},
        {"raised_at": True},
        {"cleared_at": "later"},
        {"id": " padded "},
        {"device": ""},
        {"attributes": {"site": 1}},
        {"attributes": ["site"]},
    ],
)
def test_the_publishers_shape_with_odd_values_gets_the_general_checks(
    odd: dict[str, object],
) -> None:
    """The fast path takes only exact types; anything else goes through the general field
    mapping, which accepts it (normalised) or says why not: never a crash."""
    body = {
        "id": "a1",
        "device": "olt-1",
        "alarm_type": "LOS",
        "raised_at": 1000.0,
        "cleared_at": None,
        "severity": "major",
        "row": 3,
        **odd,
    }
    try:
        alarm = decode_alarm({b"alarm": json.dumps(body).encode()}, "x")
    except MalformedEntry as exc:
        assert str(exc)
        return
    assert alarm.device and alarm.alarm_type == "LOS"
    assert isinstance(alarm.row, int) and not isinstance(alarm.row, bool)
    assert alarm.id == str(body["id"]).strip() or alarm.id == "x"
