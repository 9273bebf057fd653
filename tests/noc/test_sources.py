"""Alarm sources: every data row yields exactly one alarm, bad rows counted, never dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from allo.domain.alarms import Severity
from allo.errors import InvalidInputError, UnsupportedFormatError
from allo.noc.sources import (
    CsvSource,
    InputReport,
    JsonLinesSource,
    open_source,
    parse_alarm_payload,
    parse_alertmanager,
)
from allo.noc.sources.base import MALFORMED_TYPE


def test_pcic_csv_alarm_id_is_the_type(tmp_path: Path) -> None:
    path = tmp_path / "Alarm.csv"
    path.write_text(
        "alarm_id,device_id,start_timestamp,end_timestamp\n"
        "11,28,30685,30835\n1,28,30685,\n\n14,28,abc,1\n3,7\n",
        encoding="utf-8",
    )
    source = CsvSource(path)
    alarms = list(source)
    assert [a.row for a in alarms] == [0, 1, 2, 3]
    assert (alarms[0].alarm_type, alarms[0].device, alarms[0].raised_at) == ("11", "28", 30685)
    assert alarms[0].cleared_at == 30835 and alarms[0].id == "row-0"
    assert alarms[1].cleared_at is None
    assert alarms[2].alarm_type == MALFORMED_TYPE and alarms[3].alarm_type == MALFORMED_TYPE
    assert source.report.counts["malformed"] == 2
    assert "row 2" in source.report.examples["malformed"][0]


def test_pcic_rows_read_quickly_or_with_every_check_give_the_same_alarms(tmp_path: Path) -> None:
    """Plain rows take a short path; the others (spaces, ISO times, blanks, bad values)
    the checked one: both number rows alike and keep every row."""
    path = tmp_path / "Alarm.csv"
    path.write_text(
        "alarm_id,device_id,start_timestamp,end_timestamp\n"
        "5, 9 , 12.5 , 20\n"  # spaces around cells
        ",,,\n"  # blank: not a data row
        "6,9,2021-01-01T00:00:00Z,\n"  # ISO raise time, still active
        "7,9,inf,1\n"  # not finite: malformed
        "8,,3,4\n"  # no device: malformed
        "9,10,1e3,1e3,extra\n",  # a fifth column is ignored
        encoding="utf-8",
    )
    source = CsvSource(path)
    alarms = list(source)
    assert [a.row for a in alarms] == [0, 1, 2, 3, 4]
    assert [a.id for a in alarms] == [f"row-{i}" for i in range(5)]
    assert (alarms[0].alarm_type, alarms[0].device, alarms[0].raised_at) == ("5", "9", 12.5)
    assert alarms[0].cleared_at == 20.0
    assert alarms[1].raised_at == 1609459200.0 and alarms[1].cleared_at is None
    assert [a.alarm_type for a in alarms[2:4]] == [MALFORMED_TYPE, MALFORMED_TYPE]
    assert source.report.counts["malformed"] == 2
    assert (alarms[4].alarm_type, alarms[4].raised_at, alarms[4].cleared_at) == ("9", 1e3, 1e3)
    assert all(a.attributes == {} for a in (alarms[0], alarms[1], alarms[4]))


def test_pcic_rows_of_skipped_devices_are_left_out_but_bad_rows_still_reported(
    tmp_path: Path,
) -> None:
    path = tmp_path / "Alarm.csv"
    path.write_text(
        "alarm_id,device_id,start_timestamp,end_timestamp\n"
        "11,28,30685,30835\n1,7,30686,\n14,7,abc,1\n3,7\n2,28,inf,\n5,9,30690,30700\n",
        encoding="utf-8",
    )
    every = list(CsvSource(path))
    source = CsvSource(path, skip_device=lambda device: device != "9")
    kept = list(source)
    # well-formed rows of skipped devices are gone; the others keep their place and alarm
    assert [a.row for a in kept] == [2, 3, 4, 5]
    assert [repr(a) for a in kept] == [repr(a) for a in every if a.row in {2, 3, 4, 5}]
    assert [a.alarm_type for a in kept[:3]] == [MALFORMED_TYPE] * 3
    full = CsvSource(path)
    list(full)
    assert source.report.counts == full.report.counts
    assert source.report.counts["malformed"] == 3


def test_named_csv_keeps_extra_columns(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        "id,device,type,raised_at,severity,site\na1,olt-1,LOS,2026-01-01T00:00:00Z,critical,Lyon\n",
        encoding="utf-8",
    )
    (alarm,) = list(open_source(path))
    assert alarm.id == "a1" and alarm.alarm_type == "LOS" and alarm.raised_at == 1767225600.0
    assert alarm.severity is Severity.CRITICAL and alarm.attributes == {"site": "Lyon"}


def test_json_lines_with_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(
        '{"device": "d1", "alarm_type": "x", "raised_at": 5}\n'
        "not json\n[1]\n"
        '{"device": "d1", "raised_at": 6}\n',
        encoding="utf-8",
    )
    source = JsonLinesSource(path)
    alarms = list(source)
    assert len(alarms) == 4 and alarms[0].alarm_type == "x"
    assert source.report.counts["malformed"] == 3
    assert "missing alarm_type" in source.report.examples["malformed"][2]


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormatError):
        open_source(tmp_path / "a.xlsx")
    with pytest.raises(InvalidInputError, match="not found"):
        list(CsvSource(tmp_path / "nope.csv"))


def test_generic_payload() -> None:
    report = InputReport()
    alarms = parse_alarm_payload(
        {"alarms": [{"device": "a", "type": "t", "time": 1}, "oops"]}, report, first_row=10
    )
    assert [a.row for a in alarms] == [10, 11] and report.counts["malformed"] == 1
    with pytest.raises(InvalidInputError):
        parse_alarm_payload({"nothing": 1}, report)


def test_alertmanager_webhook() -> None:
    payload = json.loads("""{
      "version": "4", "status": "firing", "receiver": "allo",
      "alerts": [
        {"status": "firing", "labels": {"alertname": "LinkDown", "instance": "r1:9100",
         "severity": "critical"}, "annotations": {"summary": "link down"},
         "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
         "fingerprint": "abc"},
        {"status": "resolved", "labels": {"alertname": "HighCPU", "device": "r2"},
         "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2026-01-01T00:05:00Z"},
        {"status": "firing", "labels": {"instance": "r3"}, "startsAt": "2026-01-01T00:00:00Z"}
      ]}""")
    report = InputReport()
    first, second, bad = parse_alertmanager(payload, report)
    assert first.alarm_type == "LinkDown" and first.device == "r1:9100"
    assert first.cleared_at is None and first.severity is Severity.CRITICAL
    assert first.attributes["annotation.summary"] == "link down"
    assert first.id.startswith("abc@")
    assert second.device == "r2" and second.duration == 300.0
    assert bad.alarm_type == MALFORMED_TYPE and report.counts["malformed"] == 1
    with pytest.raises(InvalidInputError, match="Alertmanager"):
        parse_alertmanager({"alerts": "x"}, report)


# -- files that are not quite what they claim to be -------------------------------------

PCIC = "alarm_id,device_id,start_timestamp,end_timestamp\n"


def _types(alarms: list) -> list[str]:  # type: ignore[type-arg]
    return [a.alarm_type for a in alarms]


def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path: Path) -> None:
    csv_path, jsonl_path = tmp_path / "a.csv", tmp_path / "a.jsonl"
    csv_path.write_bytes(b"\xef\xbb\xbf" + (PCIC + "11,28,30685,30835\n").encode())
    jsonl_path.write_bytes(b'\xef\xbb\xbf{"device": "r1", "alarm_type": "LOS", "raised_at": 1}\n')
    assert _types(list(CsvSource(csv_path))) == ["11"]
    assert _types(list(JsonLinesSource(jsonl_path))) == ["LOS"]


@pytest.mark.parametrize("source", [CsvSource, JsonLinesSource])
def test_a_utf16_file_is_refused_whole(tmp_path: Path, source: type) -> None:
    path = tmp_path / "a.txt"
    path.write_text(PCIC + "11,28,30685,30835\n", encoding="utf-16")
    with pytest.raises(InvalidInputError, match="UTF-16"):
        list(source(path))


def test_bytes_of_another_encoding_make_their_row_malformed_not_merged(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes((PCIC + "1,RTR-é,10,\n1,RTR-è,11,\n1,RTR-a,12,\n").encode("latin-1"))
    source = CsvSource(path)
    alarms = list(source)
    assert _types(alarms) == [MALFORMED_TYPE, MALFORMED_TYPE, "1"]
    assert "not UTF-8" in source.report.examples["malformed"][0]
    assert "\\udce9" in alarms[0].attributes["raw"]  # the byte is shown, not replaced


def test_a_stray_quote_spoils_its_own_line_only(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    body = "".join(f"1,dev{i},{100 + i},\n" for i in range(50))
    path.write_text(PCIC + '1,"dev,5,\n' + body + '2,"Paris, 15e",7,\n', encoding="utf-8")
    source = CsvSource(path)
    alarms = list(source)
    assert len(alarms) == 52 and [a.row for a in alarms] == list(range(52))
    assert alarms[0].alarm_type == MALFORMED_TYPE
    assert {a.device for a in alarms[1:51]} == {f"dev{i}" for i in range(50)}
    assert (alarms[51].device, alarms[51].raised_at) == ("Paris, 15e", 7.0)  # quoted cell


def test_huge_cells_become_malformed_rows(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    huge = "x" * 200_000
    path.write_text(PCIC + f'1,{huge},1,\n1,"{huge}",2,\n1,ok,3,\n', encoding="utf-8")
    source = CsvSource(path)
    alarms = list(source)
    assert _types(alarms) == [MALFORMED_TYPE, MALFORMED_TYPE, "1"]
    assert len(alarms[0].attributes["raw"]) <= 500
    assert "at most 255" in source.report.examples["malformed"][0]


def test_rows_of_separators_are_reported_not_silently_skipped(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(PCIC + "1,a,1,\n,,,\n , , , \n1,b,2,\n", encoding="utf-8")
    source = CsvSource(path)
    assert [a.device for a in source] == ["a", "b"]
    assert source.report.counts["empty_row"] == 2


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"device": "r", "alarm_type": "T", "raised_at": ' + "9" * 5000 + "}", "unusable"),
        ('{"device": "r\\ud800", "alarm_type": "T", "raised_at": 1}', "not valid Unicode"),
        ('{"id": "' + "i" * 300 + '", "device": "r", "alarm_type": "T", "raised_at": 1}', "255"),
    ],
    ids=["deep", "huge-number", "surrogate", "long-id"],
)
def test_json_lines_that_cannot_be_used_become_malformed_rows(
    tmp_path: Path, line: str, says: str
) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(line + '\n{"device": "r", "alarm_type": "T", "raised_at": 2}\n')
    source = JsonLinesSource(path)
    alarms = list(source)
    assert _types(alarms) == [MALFORMED_TYPE, "T"]
    assert says in source.report.examples["malformed"][0]
    json.dumps(alarms[0].attributes, ensure_ascii=False).encode("utf-8")  # writable as UTF-8


def test_files_with_huge_attributes_keep_their_alarms_with_the_attributes_cut(
    tmp_path: Path,
) -> None:
    lines = tmp_path / "a.jsonl"
    lines.write_text(
        json.dumps({"device": "d1", "alarm_type": "x", "raised_at": 5, "note": "n" * 9_000}) + "\n",
        encoding="utf-8",
    )
    table = tmp_path / "a.csv"
    table.write_text(
        f"id,device,type,raised_at,site\na1,olt-1,LOS,2026-01-01T00:00:00Z,{'L' * 5_000}\n",
        encoding="utf-8",
    )
    for path in (lines, table):
        source = open_source(path)
        (alarm,) = list(source)
        assert alarm.alarm_type in {"x", "LOS"}  # the alarm, not a stand-in
        value = next(v for k, v in alarm.attributes.items() if k != "allo_cut")
        assert len(value) == 4_096 and "cut to 4096" in alarm.attributes["allo_cut"]
        assert source.report.counts == {"attributes_cut": 1}


def test_cut_attributes_lose_no_value_to_a_name_and_pass_a_second_time_unchanged() -> None:
    from allo.domain.alarms import Alarm
    from allo.noc.sources.base import CUT_ATTRIBUTE, InputReport, bounded

    long_a, long_b = "n" * 300 + "a", "n" * 300 + "b"  # the same first 255 characters
    attributes = {long_a: "1", long_b: "2", "n" * 255: "3", CUT_ATTRIBUTE: "mine"}
    attributes |= {f"k{i}": "x" * (5_000 if i == 0 else 1) for i in range(96)}
    report = InputReport()
    once = bounded(Alarm("a", "d", "T", 0.0, attributes=attributes), report)
    assert len(once.attributes) == 100 and report.counts == {"attributes_cut": 1}
    kept = sorted(once.attributes.values())
    assert {"1", "2", "3", "mine"} <= set(kept)  # every value kept, none overwritten
    assert all(len(name) <= 255 for name in once.attributes)
    assert len(once.attributes["k0"]) == 4_096 and "kept as" in once.attributes[CUT_ATTRIBUTE]
    assert bounded(once, report) is once and report.counts == {"attributes_cut": 1}
