"""Files written whole or not at all (``allo.files``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from allo.files import write_whole, written


def test_a_failure_leaves_the_previous_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "incidents.jsonl"
    target.write_text("previous\n", encoding="utf-8")
    with pytest.raises(RuntimeError), written(target) as handle:
        handle.write("half of it\n")
        raise RuntimeError("the replay failed half-way")
    assert target.read_text(encoding="utf-8") == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["incidents.jsonl"]


def test_a_whole_write_replaces_the_file_with_the_usual_permissions(tmp_path: Path) -> None:
    fresh, kept = tmp_path / "report.html", tmp_path / "graph.json"
    kept.write_text("{}", encoding="utf-8")
    kept.chmod(0o640)
    write_whole(fresh, "<html>été</html>")
    write_whole(kept, b'{"edges": []}')
    assert fresh.read_text(encoding="utf-8") == "<html>été</html>"
    mask = os.umask(0)
    os.umask(mask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's private 0600
    assert kept.stat().st_mode & 0o777 == 0o640 and kept.read_bytes() == b'{"edges": []}'
