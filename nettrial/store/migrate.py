"""Schema migrations (Alembic) run in code: ``nettrial db upgrade`` and the service at start."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from nettrial.store.db import Database


def _config(db: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("nettrial.store") / "migrations"))
    config.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return config


def upgrade(db: Database, revision: str = "head") -> str:
    """Bring the schema to ``revision``; return the revision it is at."""
    config = _config(db)
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return current(db)


def downgrade(db: Database, revision: str) -> str | None:
    """Take the schema back to ``revision`` (a release rolled back); return the revision it is at."""
    config = _config(db)
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
    return current(db)


def current(db: Database) -> str | None:
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head() -> str:
    return ScriptDirectory.from_config(_config_for_scripts()).get_current_head()


def _config_for_scripts() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("nettrial.store") / "migrations"))
    return config
