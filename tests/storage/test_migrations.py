"""The shortcut revision constant must match Alembic's head."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from allo.storage import open_store
from allo.storage.sql import _MIGRATIONS, LATEST_REVISION


def test_latest_revision_is_alembic_head(tmp_path: Path) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == LATEST_REVISION
    store = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    assert store.schema_revision() == LATEST_REVISION
    store.close()
