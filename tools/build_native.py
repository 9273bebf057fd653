"""Compile the NOC engine's per-alarm hot path with mypyc, next to its Python sources.

Why: batch replay spends most of its CPU in a few pure-Python loops (the pipeline's
stages, incident building, CSV parsing); compiled by mypyc (shipped with mypy) from the
same typed sources, they cost much less per alarm, with results that stay identical
(``tests/noc/test_native.py``). The ``.so`` files land beside the ``.py`` files under
``src/`` (the package is installed editable, so Python imports them first); the ``.py``
files stay the reference and the fallback: without a C compiler, or when the build
fails, this prints one warning, leaves pure Python in place and exits 0 (``--strict``:
exits 1 instead, for a machine that must have the compiled modules).

    python tools/build_native.py            # build, or say that the build is up to date
    python tools/build_native.py --check    # exit 1 unless built and up to date
    python tools/build_native.py --clean    # back to pure Python

A compiled module is imported instead of its source, so a source edited after the build
would be ignored: the build records each source's digest, ``--check`` compares them, and
``tests/noc/test_native.py`` fails on a stale build (run this script again, or
``--clean``).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.machinery
import importlib.metadata
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
BUILD = ROOT / "build" / "native"  # generated C, objects, mypy's cache, the log, the stamp
STAMP = BUILD / "stamp.json"
LOG = BUILD / "build.log"
GROUP = "allo_noc_native"  # mypyc's shared library: src/allo_noc_native__mypyc.*.so

#: the modules compiled, relative to ``src/``: every stage of the pipeline, the flow they
#: pass along, incident building and the CSV source (measured in docs/noc.md, "Throughput")
MODULES: tuple[str, ...] = (
    "allo/noc/pipeline.py",
    "allo/noc/incidents.py",
    "allo/noc/sources/csv.py",
    "allo/noc/stages/normalise.py",
    "allo/noc/stages/dedup.py",
    "allo/noc/stages/flapping.py",
    "allo/noc/stages/transient.py",
    "allo/noc/stages/inhibit.py",
    "allo/noc/stages/correlate.py",
    "allo/noc/stages/group.py",
)

_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]  # e.g. .cpython-311-x86_64-linux-gnu.so


def module_name(path: str) -> str:
    """``allo/noc/pipeline.py`` -> ``allo.noc.pipeline``."""
    return path.removesuffix(".py").replace("/", ".")


def extension_of(path: str) -> Path:
    """Where the compiled module of ``path`` (relative to ``src/``) lands."""
    return SRC / (path.removesuffix(".py") + _SUFFIX)


def built_files() -> list[Path]:
    """Every compiled file under ``src/``: an extension beside its ``.py`` source (whatever
    the module list said when it was built) and mypyc's shared library."""
    found = [p for p in SRC.glob("allo/**/*.so") if _source_of(p).is_file()]
    return sorted(found + list(SRC.glob(f"{GROUP}__mypyc*.so")))


def _source_of(extension: Path) -> Path:
    return extension.with_name(extension.name.split(".", 1)[0] + ".py")


def fingerprint() -> dict[str, object]:
    """What a build depends on: the sources' digests, the interpreter, mypy's version."""
    try:
        mypy_version = importlib.metadata.version("mypy")
    except importlib.metadata.PackageNotFoundError:
        mypy_version = None
    return {
        "python": sys.version,
        "mypy": mypy_version,
        "modules": {
            path: hashlib.sha256((SRC / path).read_bytes()).hexdigest() for path in MODULES
        },
    }


def up_to_date() -> bool:
    """Whether every listed module is compiled from its current source."""
    if not STAMP.is_file() or not all(extension_of(path).is_file() for path in MODULES):
        return False
    try:
        recorded = json.loads(STAMP.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(recorded == fingerprint())


def clean() -> list[Path]:
    """Remove the compiled modules and the build folder; returns what was removed."""
    removed = built_files()
    for path in removed:
        path.unlink()
    if BUILD.exists():
        shutil.rmtree(BUILD)
        removed.append(BUILD)
    return removed


def missing_tool() -> str | None:
    """Which build tool is not installed (mypyc comes with mypy, a dev dependency)."""
    for name, hint in (
        ("mypyc", "make dev, or pip install mypy"),
        ("setuptools", "pip install setuptools"),
    ):
        if importlib.util.find_spec(name) is None:
            return f"{name} is not installed ({hint})"
    return None


def compiler_problem() -> str | None:
    """Why the C compiler setuptools would use cannot build an extension, or ``None``:
    a tiny file including ``Python.h`` is compiled first (a fraction of a second, where
    mypyc takes a minute before it reaches the compiler)."""
    command = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    if not command or shutil.which(command[0]) is None:
        return f"no C compiler found ({' '.join(command) or 'CC is empty'})"
    include = sysconfig.get_paths()["include"]
    with tempfile.TemporaryDirectory() as folder:
        probe = Path(folder) / "probe.c"
        probe.write_text("#include <Python.h>\nint probe(void) { return 0; }\n", encoding="utf-8")
        try:
            done = subprocess.run(
                [*command, "-I", include, "-c", str(probe), "-o", str(probe.with_suffix(".o"))],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"the C compiler {command[0]} did not run ({exc})"
    if done.returncode != 0:
        first = (done.stderr or done.stdout).strip().splitlines()
        reason = first[0] if first else f"exit status {done.returncode}"
        return f"the C compiler {command[0]} cannot build against Python.h ({reason})"
    return None


def compile_here() -> None:
    """Run mypyc and setuptools in this process (the child started by :func:`build`)."""
    from mypyc.build import mypycify
    from setuptools import setup

    os.chdir(SRC)  # module names and the in-place outputs follow from src/
    setup(
        name="allo-noc-native",
        ext_modules=mypycify(
            list(MODULES), opt_level="3", group_name=GROUP, target_dir=str(BUILD / "c")
        ),
        script_args=[
            "build_ext",
            "--inplace",
            "--build-temp",
            str(BUILD / "temp"),
            "--build-lib",
            str(BUILD / "lib"),
        ],
    )


def imported_from() -> dict[str, str]:
    """Where a fresh interpreter imports each listed module from."""
    names = [module_name(path) for path in MODULES]
    code = (
        "import importlib, json, sys\n"
        "print(json.dumps({n: importlib.import_module(n).__file__ for n in sys.argv[1:]}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *names],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "import failed")
    result: dict[str, str] = json.loads(done.stdout)
    return result


def build() -> str | None:
    """Compile :data:`MODULES`; returns why it could not (pure Python then stays), or
    ``None`` when every module now imports compiled."""
    problem = missing_tool() or compiler_problem()
    clean()  # an older build must not outlive its sources, built anew or not
    if problem is not None:
        return problem
    BUILD.mkdir(parents=True)
    env = {**os.environ, "MYPY_CACHE_DIR": str(BUILD / "mypy_cache")}
    with LOG.open("w", encoding="utf-8") as log:
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--compile-here"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
            check=False,
        )
    if done.returncode != 0:
        clean_keeping_log()
        return f"mypyc failed (exit status {done.returncode}; see {LOG.relative_to(ROOT)})"
    try:
        where = imported_from()
    except RuntimeError as exc:
        clean_keeping_log()
        return f"the compiled modules do not import ({exc})"
    pure = [name for name, file in where.items() if not file.endswith(".so")]
    if pure:
        clean_keeping_log()
        return f"still imported from source after the build: {', '.join(pure)}"
    STAMP.write_text(json.dumps(fingerprint(), indent=1) + "\n", encoding="utf-8")
    return None


def clean_keeping_log() -> None:
    """After a failed build: back to pure Python, with the log kept for whoever reads it."""
    text = LOG.read_text(encoding="utf-8") if LOG.is_file() else ""
    clean()
    BUILD.mkdir(parents=True)
    LOG.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--clean", action="store_true", help="remove every compiled module")
    action.add_argument("--check", action="store_true", help="exit 1 unless built and current")
    action.add_argument("--compile-here", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when the build fails (else a warning)"
    )
    args = parser.parse_args(argv)
    if args.compile_here:
        compile_here()
        return 0
    if args.clean:
        removed = clean()
        print(f"build_native: removed {len(removed)} compiled file(s); pure Python now")
        return 0
    if args.check:
        fresh = up_to_date()
        state = "compiled and up to date" if fresh else "not compiled, or stale: run it again"
        print(f"build_native: {state}")
        return 0 if fresh else 1
    if up_to_date():
        print(f"build_native: {len(MODULES)} modules compiled and up to date")
        return 0
    problem = build()
    if problem is not None:
        print(f"build_native: WARNING: {problem}; the NOC engine runs as pure Python")
        return 1 if args.strict else 0
    print(f"build_native: {len(MODULES)} modules compiled with mypyc into src/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
