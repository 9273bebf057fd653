"""Silence matchers: fields, Alertmanager labels, free attributes, and safe regexes."""

from __future__ import annotations

import pytest

from allo.domain.alarms import Alarm, Severity
from allo.errors import InvalidInputError
from allo.noc.silences import REGEX_SUBJECT_CHARS, Matcher, Silence


def _alarm(**attributes: str) -> Alarm:
    return Alarm("a1", "r1", "LinkDown", 0.0, severity=Severity("major"), attributes=attributes)


def test_label_matchers_read_alertmanager_labels_then_free_attributes() -> None:
    from_alertmanager = _alarm(**{"label.instance": "db-7", "label.site": "paris"})
    from_json = _alarm(site="lyon", instance="web-1")
    assert Matcher("label.instance", "db-.*", "=~").matches(from_alertmanager)
    assert not Matcher("label.instance", "db-.*", "=~").matches(from_json)
    assert Matcher("label.instance", "db-.*", "!~").matches(from_json)
    assert Matcher("label.site", "lyon").matches(from_json)  # free attribute, no prefix
    assert Matcher("label.site", "lyon", "!=").matches(from_alertmanager)
    # the labels Alertmanager's payload turns into fields of the alarm
    assert Matcher("label.alertname", "LinkDown").matches(from_json)
    assert Matcher("label.severity", "major").matches(from_json)
    assert Matcher("severity", "critical", "!=").matches(from_json)
    # a missing label reads as empty, as in Alertmanager
    assert Matcher("label.rack", "").matches(from_json)
    assert not Matcher("label.rack", ".+", "=~").matches(from_json)


def test_a_silence_needs_every_matcher() -> None:
    silence = Silence(
        "s1", (Matcher("label.site", "paris"), Matcher("device", "r[0-9]", "=~")), 0.0, 10.0
    )
    assert silence.matches(_alarm(**{"label.site": "paris"}))
    assert not silence.matches(_alarm(**{"label.site": "lyon"}))


@pytest.mark.parametrize(
    ("name", "op", "value", "says"),
    [
        ("", "=", "x", "needs a name"),
        ("label.", "=", "x", "name the label"),
        ("label.a\nb", "=", "x", "printable"),
        ("label.x", "==", "x", "operator"),
        ("label.x", "=~", "(", "bad regex"),
        ("label.x", "=~", "(a+)+b", "inside a repeated group"),
        ("label.x", "=~", "(a|ab)*c", "alternation inside"),
        ("label.x", "=~", r"(\w)\1", "back-references"),
        ("label.x", "=~", "(?<=a)b", "look-arounds"),
        ("label.x", "=~", "a*b*c*", "3 quantifiers"),
        ("label.x", "=~", "(a+){3}", "3 quantifiers"),
        ("label.x", "=~", "x" * 300, "300 characters"),
    ],
)
def test_bad_matchers_are_refused_with_what_to_do(
    name: str, op: str, value: str, says: str
) -> None:
    with pytest.raises(InvalidInputError, match=says.replace("(", r"\(")):
        Matcher(name, value, op)


def test_regexes_read_a_bounded_prefix_of_long_values() -> None:
    """What bounds the worst case: a regex reads at most REGEX_SUBJECT_CHARS characters."""
    tail = "a" * REGEX_SUBJECT_CHARS + "x"
    assert Matcher("label.x", ".*x", "=~").matches(_alarm(x="a" * 100 + "x"))
    assert not Matcher("label.x", ".*x", "=~").matches(_alarm(x=tail))
    assert Matcher("label.x", "a*", "=~").matches(_alarm(x=tail))
    assert Matcher("label.x", "a{3}b{2}|web-.*", "=~").matches(_alarm(x="web-12"))
    assert Matcher("label.x", tail, "=").matches(_alarm(x=tail))  # equality reads it all
