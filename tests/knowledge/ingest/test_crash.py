"""A ``kill -9`` in the middle of an ingest leaves a consistent store; a re-run completes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text


def _counts(database: Path) -> tuple[int, int, int]:
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        documents = connection.execute(text("SELECT count(*) FROM documents")).scalar_one()
        orphans = connection.execute(
            text("SELECT count(*) FROM chunks WHERE document_id NOT IN (SELECT id FROM documents)")
        ).scalar_one()
        mismatched = connection.execute(
            text(
                "SELECT count(*) FROM documents d WHERE d.chunk_count != "
                "(SELECT count(*) FROM chunks c WHERE c.document_id = d.id)"
            )
        ).scalar_one()
    engine.dispose()
    return int(documents), int(orphans), int(mismatched)


def test_kill_during_ingest_then_rerun(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    total = 120
    for index in range(total):
        steps = "\n".join(f"{step}. Étape {step} du guide {index}." for step in range(1, 6))
        (docs / f"guide-{index:03}.md").write_text(
            f"# Guide {index}\n\nIntroduction {index}.\n\n## Étapes\n\n{steps}\n", encoding="utf-8"
        )
    data = tmp_path / "data"
    env = {
        **os.environ,
        "ALLO_DATA_DIR": str(data),
        "ALLO_EMBEDDER": "fake",
        "ALLO_FAKE_EMBEDDER_DELAY": "0.05",
    }
    command = [sys.executable, "-m", "allo.cli", "ingest", str(docs)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    database = data / "allo.db"
    deadline = time.monotonic() + 120
    written = 0
    while time.monotonic() < deadline and process.poll() is None:
        if database.exists():
            try:
                written = _counts(database)[0]
            except Exception:
                written = 0
            if written >= 5:
                break
        time.sleep(0.02)
    assert process.poll() is None, "ingest finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    documents, orphans, mismatched = _counts(database)
    assert 0 < documents < total
    assert orphans == 0 and mismatched == 0

    rerun = subprocess.run(
        [*command, "--json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr
    assert _counts(database) == (total, 0, 0)
    assert f'"unchanged": {documents}' in rerun.stdout
