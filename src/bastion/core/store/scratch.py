"""Private scratch folders for plaintext in flight, swept after a crash.

Ingestion stages a batch as Parquet and model registration snapshots an
artifact: plaintext that must never outlive the operation.  Each work folder
``<scratch>/<prefix>-<random>/`` has a sibling lock file ``<name>.lock`` held
with ``flock`` for as long as the folder is in use; the kernel drops the lock
when the process dies, however it dies.  ``sweep()`` (run by ``Bastion.open``
before anything else) removes every folder whose lock nobody holds, so a
kill -9 leaves no plaintext behind once the workspace is opened again, while
folders of live processes sharing the workspace are left alone.

``process_dir()`` is one such folder held for the life of the process (the
server spools request bodies and exports there).

Example::

    scratch = Scratch(home / "tmp")
    with scratch.workdir("ingest") as work:
        (work / "batch.parquet").write_bytes(...)
    scratch.sweep()
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: folders made by versions before the locks, with nobody to own them
_LEGACY = ("ingest-", "model-", "uploads")


class Scratch:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._guard = threading.Lock()
        self._process: tuple[Path, int] | None = None

    def process_dir(self) -> Path:
        """A locked folder for this process, kept until ``close`` (or process death)."""
        with self._guard:
            if self._process is None:
                self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
                name = f"proc-{os.getpid()}-{secrets.token_hex(4)}"
                self._process = (self.root / name, self._lock(name))
                self._process[0].mkdir(mode=0o700)
            return self._process[0]

    def close(self) -> None:
        with self._guard:
            if self._process is not None:
                path, fd = self._process
                self._process = None
                shutil.rmtree(path, ignore_errors=True)
                path.with_name(path.name + ".lock").unlink(missing_ok=True)
                os.close(fd)

    def _lock(self, name: str) -> int:
        fd = os.open(self.root / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    @contextmanager
    def workdir(self, prefix: str) -> Iterator[Path]:
        """A fresh 0700 folder, locked while in use and removed afterwards."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{prefix}-{secrets.token_hex(8)}"
        # The lock exists (and is held) before the folder does, so a sweep never
        # sees a live folder without its lock.
        fd = self._lock(name)
        path = self.root / name
        try:
            path.mkdir(mode=0o700)
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
            (self.root / f"{name}.lock").unlink(missing_ok=True)
            os.close(fd)

    def sweep(self) -> int:
        """Remove folders left by dead processes; returns how many were removed."""
        if not self.root.is_dir():
            return 0
        removed = 0
        for entry in sorted(self.root.iterdir()):
            if entry.suffix == ".lock" or entry.is_symlink() or not entry.is_dir():
                continue
            lock = entry.with_name(entry.name + ".lock")
            try:
                fd = os.open(lock, os.O_RDWR)
            except FileNotFoundError:
                # No lock: a folder of an older version (nobody owns it) or not ours.
                if entry.name.startswith(_LEGACY):
                    shutil.rmtree(entry, ignore_errors=True)
                    removed += 1
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # a live process is using it
            try:
                shutil.rmtree(entry, ignore_errors=True)
                lock.unlink(missing_ok=True)
                removed += 1
            finally:
                os.close(fd)
        for lock in self.root.glob("*.lock"):
            if not lock.with_suffix("").exists():
                self._drop_orphan_lock(lock)
        return removed

    def oldest_live_work(self, prefixes: tuple[str, ...] = ("ingest", "model")) -> float:
        """Age in seconds of the oldest work folder a live process holds (0 if none).

        A blob written by an operation still running is not referenced yet;
        reclaiming unreferenced blobs must spare everything younger than this."""
        if not self.root.is_dir():
            return 0.0
        oldest = 0.0
        now = time.time()
        for lock in self.root.glob("*.lock"):
            if not lock.name.startswith(tuple(f"{p}-" for p in prefixes)):
                continue
            try:
                fd = os.open(lock, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)  # nobody holds it: not live
            except BlockingIOError:
                with contextlib.suppress(FileNotFoundError):
                    oldest = max(oldest, now - lock.stat().st_mtime)
            finally:
                os.close(fd)
        return oldest

    @staticmethod
    def _drop_orphan_lock(lock: Path) -> None:
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            lock.unlink(missing_ok=True)
        except BlockingIOError:
            pass  # its owner is between creating the lock and the folder
        finally:
            os.close(fd)


__all__ = ["Scratch"]
