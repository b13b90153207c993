"""Engine creation and schema migration for the metadata database.

SQLite runs in WAL mode with ``synchronous=FULL`` and every transaction opened
with ``BEGIN IMMEDIATE``: writers queue on the database lock (busy timeout)
instead of failing with "database is locked", so the CLI and a running server
can share one workspace.  PostgreSQL uses the same tables through psycopg 3.
The schema is owned by Alembic migrations shipped in this package.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from bastion.core.errors import ConfigurationError, StorageError

_MIGRATIONS = Path(__file__).parent / "migrations"


def normalize_url(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url, connect_args={"timeout": 60, "check_same_thread": False}, pool_pre_ping=False
        )
        _configure_sqlite(engine)
        return engine
    if url.startswith("postgresql+psycopg"):
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    raise ConfigurationError(
        f"unsupported database URL {url.split(':', 1)[0]!r}",
        hint="use sqlite:///path/to/bastion.db or postgresql://user@host/db",
    )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook issue BEGIN IMMEDIATE itself.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 60000")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    try:
        if current_revision(engine) == head_revision(engine):
            return
        command.upgrade(alembic_config(engine), "head")
    except sa.exc.DatabaseError as e:
        raise database_error(e, "migrating the metadata database") from e


def database_error(e: sa.exc.DBAPIError | sa.exc.DatabaseError, what: str) -> StorageError:
    text = str(getattr(e, "orig", e))
    if "file is not a database" in text or "malformed" in text:
        return StorageError(
            f"the metadata database is corrupted ({text}) while {what}",
            hint="restore bastion.db from backup; blobs and the keyring are unaffected",
        )
    if "disk" in text and "full" in text:
        from bastion.core.errors import StorageFull

        return StorageFull(f"disk full while {what}", hint="free disk space and retry")
    return StorageError(f"database error while {what}: {text}")


@contextmanager
def transaction(engine: Engine, what: str) -> Iterator[Connection]:
    """One write transaction; DB-API errors become typed Bastion errors."""
    try:
        with engine.begin() as conn:
            yield conn
    except sa.exc.DBAPIError as e:
        raise database_error(e, what) from e


@contextmanager
def reading(engine: Engine, what: str) -> Iterator[Connection]:
    try:
        with engine.connect() as conn:
            yield conn
            conn.rollback()
    except sa.exc.DBAPIError as e:
        raise database_error(e, what) from e


__all__ = ["make_engine", "migrate", "normalize_url", "reading", "transaction"]
