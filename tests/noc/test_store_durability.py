"""``ALLO_NOC_DURABLE_COMMITS``: the NOC store's commits reach the disk before they return.

A broker consumer acknowledges its entries once the engine has committed them, and an
HTTP source forgets alarms it got a 200 for: in WAL mode SQLite's ``NORMAL`` may undo the
last commits at a power cut or an OS crash (never at a killed process), and nothing
would send those alarms again. ``synchronous=FULL`` closes that gap at the cost of a disk
sync per commit, so it is the operator's choice; the other stores keep ``NORMAL``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from allo.config import Settings
from allo.noc.store import SqlNocStore
from allo.storage.sql import open_store
from allo.web.routers.noc import engine_for

_FULL, _NORMAL = 2, 1


def _synchronous(store: SqlNocStore) -> tuple[int, int]:
    """The setting on a pooled connection and on the connection engine steps commit on."""
    with store._engine.connect() as pooled:
        on_pool = pooled.exec_driver_sql("PRAGMA synchronous").scalar()
    on_writer = store._sqlite_writer().execute("PRAGMA synchronous").fetchone()[0]
    return on_pool, on_writer


def test_a_durable_noc_store_syncs_every_commit_and_other_stores_do_not(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'allo.db'}"
    durable, plain = SqlNocStore(url, durable=True), SqlNocStore(url)
    durable.migrate()
    knowledge = open_store(url)
    try:
        assert _synchronous(durable) == (_FULL, _FULL)
        durable.defer_checkpoints()  # what a broker consumer does: connections reopened
        assert _synchronous(durable) == (_FULL, _FULL)
        assert _synchronous(plain) == (_NORMAL, _NORMAL)
        with knowledge.engine.connect() as other:
            assert other.exec_driver_sql("PRAGMA synchronous").scalar() == _NORMAL
    finally:
        for store in (durable, plain, knowledge):
            store.close()


@pytest.mark.parametrize(("value", "expected"), [("true", _FULL), (None, _NORMAL)])
def test_the_live_engine_follows_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str | None, expected: int
) -> None:
    if value is None:
        monkeypatch.delenv("ALLO_NOC_DURABLE_COMMITS", raising=False)
    else:
        monkeypatch.setenv("ALLO_NOC_DURABLE_COMMITS", value)
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'allo.db'}")
    engine = engine_for(settings)
    try:
        engine.warm_up()
        assert _synchronous(engine.store) == (expected, expected)  # type: ignore[arg-type]
    finally:
        engine.close()
