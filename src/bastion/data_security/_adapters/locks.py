"""Per-dataset locks across processes: ``flock`` files for SQLite, advisory locks for PostgreSQL.

SQLite lives on one machine, so a lock file per dataset beside the database
file serialises every process and thread using it (each ``hold`` opens its
own file description, and ``flock`` locks conflict between descriptions).
PostgreSQL may be shared by many machines: a session-level advisory lock
(``pg_advisory_lock``) on a dedicated connection does it there.  Either lock
dies with its holder (the kernel closes the file; the server ends the
session), so a killed ingest never leaves a dataset locked.

Example::

    locks = dataset_locks(engine, home / "locks")
    with locks.hold("credit", "loans"):
        ...
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bastion.core.errors import Conflict, StorageError
from bastion.data_security.ports import DatasetLocks

#: how long an ingest waits for another one into the same dataset
WAIT_SECONDS = 900.0


def _key(project: str, dataset: str) -> bytes:
    return hashlib.sha256(f"bastion-dataset-lock\0{project}\0{dataset}".encode()).digest()


def _busy(project: str, dataset: str) -> Conflict:
    return Conflict(
        f"another ingest or review of dataset {dataset!r} in {project} has held its lock "
        f"for more than {WAIT_SECONDS:.0f} s",
        hint="wait for it to finish and retry",
    )


class FileDatasetLocks:
    def __init__(self, root: Path) -> None:
        self._root = root

    def _open(self, project: str, dataset: str) -> int:
        self._root.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._root / f"{_key(project, dataset).hex()[:32]}.lock"
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise StorageError(f"cannot open the dataset lock {path}: {e}") from e

    @contextmanager
    def hold(self, project: str, dataset: str) -> Iterator[None]:
        fd = self._open(project, dataset)
        try:
            deadline = time.monotonic() + WAIT_SECONDS
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise _busy(project, dataset) from None
                    time.sleep(0.02)
            yield
        finally:
            os.close(fd)  # closing drops the lock

    @contextmanager
    def try_hold(self, project: str, dataset: str) -> Iterator[bool]:
        fd = self._open(project, dataset)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)


class PostgresDatasetLocks:
    def __init__(self, engine: Engine) -> None:
        self._e = engine

    @staticmethod
    def _id(project: str, dataset: str) -> int:
        return int.from_bytes(_key(project, dataset)[:8], "big", signed=True)

    @contextmanager
    def _session(self, project: str, dataset: str, fn: str) -> Iterator[bool]:
        key = self._id(project, dataset)
        try:
            conn = self._e.connect()
        except sa.exc.DBAPIError as e:
            raise StorageError(f"cannot reach the database to lock dataset {dataset}: {e}") from e
        held = False
        try:
            if fn == "pg_advisory_lock":
                conn.execute(sa.text(f"SET lock_timeout = '{int(WAIT_SECONDS * 1000)}ms'"))
            try:
                got = conn.execute(sa.text(f"SELECT {fn}(:k)"), {"k": key}).scalar()
                # pg_advisory_lock returns void once it holds the lock; the try- form a bool
                held = True if fn == "pg_advisory_lock" else bool(got)
            except sa.exc.OperationalError as e:
                raise _busy(project, dataset) from e
            conn.commit()  # the lock is session-level: it outlives this transaction
            yield held
        finally:
            try:
                if held:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.execute(sa.text("RESET lock_timeout"))
                conn.commit()
                conn.close()
            except sa.exc.DBAPIError:
                conn.invalidate()  # the session (and its lock) ends with the connection

    @contextmanager
    def hold(self, project: str, dataset: str) -> Iterator[None]:
        with self._session(project, dataset, "pg_advisory_lock"):
            yield

    @contextmanager
    def try_hold(self, project: str, dataset: str) -> Iterator[bool]:
        with self._session(project, dataset, "pg_try_advisory_lock") as held:
            yield held


def dataset_locks(engine: Engine, fallback_dir: Path) -> DatasetLocks:
    """The lock kind for ``engine``: advisory on PostgreSQL, lock files on SQLite.

    SQLite lock files sit beside the database file (``.<db>.locks/``), so every
    workspace folder pointing at one database shares them."""
    if engine.dialect.name == "postgresql":
        return PostgresDatasetLocks(engine)
    db = engine.url.database
    if db and db != ":memory:":
        path = Path(db)
        return FileDatasetLocks(path.with_name(f".{path.name}.locks"))
    return FileDatasetLocks(fallback_dir)


__all__ = ["FileDatasetLocks", "PostgresDatasetLocks", "dataset_locks"]
