"""The NOC hot path compiled by ``tools/build_native.py`` (mypyc) gives what pure Python gives.

The build is optional: without it the ``.py`` files run as before. When it is present,
one history (``tests/noc/golden.py``: every stage, bad input, a persisting engine, and the
same alarms read back from a PCIC CSV file) runs twice in fresh interpreters, once with
the compiled modules and once with the import system told to prefer sources, and every
incident, fold count, input problem and stored row must be the same. Under ``CI=true``
a missing build fails instead of skipping (CI runs ``make dev``, which builds it).

The build script itself is tested on a copy of it in a temporary folder (its paths follow
its own location): without a working C compiler it warns and leaves pure Python in
place, ``--clean`` removes what a build left, ``--check`` sees a source edited after the
build.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "build_native.py"

#: run in a fresh interpreter: ``pure`` puts the source loader before the extension
#: loader for every later import, so the ``.py`` files win over the compiled modules
_SCRIPT = r"""
import importlib.machinery as m, json, math, sys, tempfile
from pathlib import Path

if sys.argv[1] == "pure":
    hooks = [getattr(h, "__name__", "") for h in sys.path_hooks]
    place = hooks.index("path_hook_for_FileFinder")
    sys.path_hooks[place] = m.FileFinder.path_hook(
        (m.SourceFileLoader, m.SOURCE_SUFFIXES), (m.ExtensionFileLoader, m.EXTENSION_SUFFIXES)
    )
    sys.path_importer_cache.clear()

from allo.noc.sources import CsvSource
from allo.noc.stages.inhibit import InhibitRule
from tests.noc import golden

topo = golden.topology()
results = {
    "model_topology": golden._replay(golden.model_graph(), topo),
    "model_no_topology": golden._replay(golden.model_graph(), None),
    "expert_topology": golden._replay(golden.expert_graph(), topo),
    "inhibit": golden._replay(golden.model_graph(), topo, inhibit_rules=[InhibitRule("4")]),
    "engine": golden._engine(37),
}
with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "alarms.csv"
    lines = ["alarm_id,device_id,start_timestamp,end_timestamp"]
    for a in golden.alarms():
        end = "" if a.cleared_at is None else repr(a.cleared_at)
        lines.append(f"{a.alarm_type},{a.device},{a.raised_at!r},{end}")
    lines[50:50] = ["", "3,,1600000000,", "1,2,soon,", "1,2", "1,2,1e999,", " 4 , 7 ,12.5, "]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for name, source in (
        ("csv", CsvSource(path)),
        ("csv_skip", CsvSource(path, skip_device=lambda device: device in {"3", "7"})),
    ):
        read = [
            (a.id, a.device, a.alarm_type, a.raised_at, a.cleared_at, a.row, dict(a.attributes))
            for a in source
        ]
        results[name] = {"alarms": read, "problems": source.report.to_json()}
where = {
    name: sys.modules[name].__file__
    for name in ("allo.noc.pipeline", "allo.noc.stages.correlate", "allo.noc.sources.csv")
}
print(json.dumps({"where": where, "results": results}, default=repr))
"""


def load_tool(path: Path = TOOL) -> ModuleType:
    """``tools/build_native.py`` as a module (``tools`` is no package); its paths follow
    ``path``."""
    spec = importlib.util.spec_from_file_location(f"build_native_{abs(hash(path))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_history(mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def compiled_or_skip() -> ModuleType:
    """The build tool, once it is known that the compiled modules are there (under
    ``CI=true`` their absence is a failure: CI builds them)."""
    tool = load_tool()
    if not tool.built_files():
        message = "NOC modules not compiled: run `python tools/build_native.py` (make dev)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return tool


def test_compiled_modules_match_their_sources() -> None:
    tool = compiled_or_skip()
    assert tool.up_to_date(), (
        "a compiled NOC module is older than its source (Python would import the old "
        "code): run `python tools/build_native.py`, or `--clean` for pure Python"
    )


def test_compiled_and_pure_python_give_the_same_results() -> None:
    compiled_or_skip()
    native, pure = run_history("compiled"), run_history("pure")
    assert all(file.endswith(".so") for file in native["where"].values()), native["where"]
    assert all(file.endswith(".py") for file in pure["where"].values()), pure["where"]
    results = native["results"]
    assert results["model_topology"]["incidents"]  # a history that makes incidents
    assert results["csv"]["problems"]["counts"]  # and bad rows that are reported
    assert results.keys() == pure["results"].keys()
    for case, value in results.items():  # as text: a NaN equals itself there
        assert json.dumps(value) == json.dumps(pure["results"][case]), case


@pytest.fixture
def copy(tmp_path: Path) -> ModuleType:
    """The build tool copied into an empty project folder, with the listed sources."""
    (tmp_path / "tools").mkdir()
    shutil.copy(TOOL, tmp_path / "tools" / "build_native.py")
    tool = load_tool(tmp_path / "tools" / "build_native.py")
    for path in tool.MODULES:
        (tmp_path / "src" / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "src" / path, tmp_path / "src" / path)
    return tool


def run_tool(
    tool: ModuleType, *args: str, cc: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CC": cc} if cc is not None else dict(os.environ)
    return subprocess.run(
        [sys.executable, str(tool.__file__), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("cc", "reason"),
    [
        ("/nonexistent/cc", "no C compiler found (/nonexistent/cc)"),
        ("false", "the C compiler false cannot build against Python.h"),
    ],
)
def test_without_a_working_compiler_the_build_warns_and_keeps_pure_python(
    copy: ModuleType, cc: str, reason: str
) -> None:
    done = run_tool(copy, cc=cc)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("build_native: WARNING: " + reason), done.stdout
    assert "runs as pure Python" in done.stdout
    assert copy.built_files() == []
    assert not copy.STAMP.exists()
    strict = run_tool(copy, "--strict", cc=cc)
    assert strict.returncode == 1
    assert reason in strict.stdout


def fake_build(tool: ModuleType) -> list[Path]:
    """Empty files where a build puts the compiled modules, and its stamp."""
    extensions = [tool.extension_of(path) for path in tool.MODULES]
    built = [*extensions, tool.SRC / f"{tool.GROUP}__mypyc{tool._SUFFIX}"]
    for path in built:
        path.write_bytes(b"")
    tool.BUILD.mkdir(parents=True)
    tool.STAMP.write_text(json.dumps(tool.fingerprint()), encoding="utf-8")
    return built


def edit_a_source(tool: ModuleType) -> None:
    edited = tool.SRC / tool.MODULES[-1]
    edited.write_text(edited.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")


def test_clean_removes_what_a_build_left_and_check_sees_a_stale_build(copy: ModuleType) -> None:
    built = fake_build(copy)
    foreign = copy.SRC / "allo" / "vendored" / f"lib{copy._SUFFIX}"  # no source beside it
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"")
    assert run_tool(copy, "--check").returncode == 0
    assert run_tool(copy, cc="/nonexistent/cc").stdout.endswith("compiled and up to date\n")

    edit_a_source(copy)
    stale = run_tool(copy, "--check")
    assert stale.returncode == 1
    assert "stale" in stale.stdout

    cleaned = run_tool(copy, "--clean")
    assert cleaned.returncode == 0
    assert f"removed {len(built) + 1} compiled file(s)" in cleaned.stdout  # and build/native
    assert not any(path.exists() for path in [*built, copy.BUILD])
    assert foreign.exists()
    assert run_tool(copy, "--check").returncode == 1


def test_a_stale_build_that_cannot_be_redone_is_removed(copy: ModuleType) -> None:
    built = fake_build(copy)
    edit_a_source(copy)
    done = run_tool(copy, cc="/nonexistent/cc")
    assert done.returncode == 0
    assert "WARNING: no C compiler found" in done.stdout
    assert not any(path.exists() for path in built)  # the edited source runs, not the old build
