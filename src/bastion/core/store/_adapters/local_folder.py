"""A local folder as an ``ObjectBackend``: temp file, fsync, rename, fsync dir."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from bastion.core.errors import InputError, NotFound, StorageError, StorageFull

_NAME_RE = re.compile(r"^[a-z0-9_]+(/[a-z0-9_]+)*(\.[a-z0-9]+)?$")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def storage_error(e: OSError, what: str) -> StorageError:
    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return StorageFull(
            f"no space left while {what} ({os.strerror(e.errno or 0)})",
            hint="free disk space; nothing was half-written",
        )
    return StorageError(f"I/O error while {what}: {e.strerror or e}")


class _Staged:
    def __init__(self, backend: LocalFolderBackend, fh: BinaryIO, tmp: Path) -> None:
        self._backend, self._fh, self._tmp = backend, fh, tmp

    @property
    def stream(self) -> BinaryIO:
        return self._fh

    def publish(self, name: str) -> None:
        final = self._backend._path(name)
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._tmp, final)
            _fsync_dir(final.parent)
        except OSError as e:
            raise storage_error(e, f"publishing {name}") from e


class LocalFolderBackend:
    """Objects as files below ``root``; writes are atomic and durable."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"

    def _path(self, name: str) -> Path:
        # Names are generated internally; this check stops any path escape anyway.
        if not _NAME_RE.match(name) or ".." in name:
            raise InputError(f"invalid internal object name {name!r}")
        return self.root / name

    @contextlib.contextmanager
    def writer(self, name: str) -> Iterator[BinaryIO]:
        with self.staged() as staged:
            yield staged.stream
            staged.publish(name)

    @contextlib.contextmanager
    def staged(self) -> Iterator[_Staged]:
        self._tmp.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp / f"{secrets.token_hex(8)}.part"
        try:
            fh = open(tmp, "xb")  # noqa: SIM115 - closed below on every path
            # The lock tells cleanup_incomplete() this temp file has a live writer.
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        except OSError as e:
            raise storage_error(e, "creating an object") from e
        staged = _Staged(self, fh, tmp)
        try:
            yield staged
        except OSError as e:
            raise storage_error(e, "writing an object") from e
        finally:
            with contextlib.suppress(OSError):  # a failed flush must not mask the real error
                fh.close()
            tmp.unlink(missing_ok=True)

    def open(self, name: str) -> BinaryIO:
        try:
            return open(self._path(name), "rb")
        except FileNotFoundError:
            raise NotFound(f"object {name} does not exist") from None
        except OSError as e:
            raise storage_error(e, f"reading {name}") from e

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def delete(self, name: str) -> None:
        path = self._path(name)
        path.unlink(missing_ok=True)
        if path.parent.exists():
            _fsync_dir(path.parent)

    def list(self, prefix: str) -> Iterator[str]:
        base = self.root / prefix
        if not base.exists():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file():
                yield path.relative_to(self.root).as_posix()

    def cleanup_incomplete(self) -> int:
        removed = 0
        if self._tmp.exists():
            for part in self._tmp.glob("*.part"):
                try:
                    with open(part, "rb") as fh:
                        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                        part.unlink(missing_ok=True)
                        removed += 1
                except (BlockingIOError, FileNotFoundError):
                    continue  # a live writer holds it, or it just finished
        return removed


__all__ = ["LocalFolderBackend", "storage_error"]
