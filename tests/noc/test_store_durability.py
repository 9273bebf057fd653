"""The NOC store's commits reach the disk before they return (``synchronous=FULL``).

A broker consumer acknowledges its entries once the engine has committed them, and an
HTTP source forgets alarms it got a 200 for: in WAL mode SQLite's ``NORMAL`` may undo the
last commits at a power cut or an OS crash, and nothing would send those alarms again.
The other stores on the same file keep ``NORMAL`` (a lost chat turn is retyped).
"""

from __future__ import annotations

from pathlib import Path

from allo.noc.store import SqlNocStore
from allo.storage.sql import open_store

_FULL, _NORMAL = 2, 1


def test_the_noc_store_commits_durably_and_the_knowledge_store_does_not(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'allo.db'}"
    noc = SqlNocStore(url)
    noc.migrate()
    knowledge = open_store(url)
    try:
        with noc._engine.connect() as pooled:
            assert pooled.exec_driver_sql("PRAGMA synchronous").scalar() == _FULL
        writer = noc._sqlite_writer()  # the connection every engine step commits on
        assert writer.execute("PRAGMA synchronous").fetchone()[0] == _FULL
        noc.defer_checkpoints()  # what a broker consumer does: connections reopened
        writer = noc._sqlite_writer()
        assert writer.execute("PRAGMA synchronous").fetchone()[0] == _FULL
        with knowledge.engine.connect() as other:
            assert other.exec_driver_sql("PRAGMA synchronous").scalar() == _NORMAL
    finally:
        noc.close()
        knowledge.close()
