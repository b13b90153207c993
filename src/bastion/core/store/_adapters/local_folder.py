"""A local folder as an ``ObjectBackend``: temp file, fsync, rename, fsync dir.

Large writes go through :class:`WritebackFile`, which asks the kernel to start
writing each few MiB to disk as soon as they are written.  Without it a 1 GiB
object sits dirty in the page cache until the final ``fsync``, which then
waits for the whole GiB; with it the disk works while the CPU encrypts, so the
final ``fsync`` has little left to do.  Durability is unchanged: publishing
still fsyncs the file, renames it and fsyncs the directory.

Example::

    backend = LocalFolderBackend(Path("/srv/bastion/blobs"))
    with backend.writer("objects/ab/abcd.key") as out:
        out.write(b"...")
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

from bastion.core.errors import InputError, NotFound, StorageError, StorageFull

_NAME_RE = re.compile(r"^[a-z0-9_]+(/[a-z0-9_]+)*(\.[a-z0-9]+)?$")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: start write-back once this much unsynced data has accumulated
_WRITEBACK_EVERY = 8 * 1024 * 1024


class WritebackFile(io.FileIO):
    """An unbuffered binary file that writes fully and starts write-back early.

    ``write`` never returns short (it loops like a buffered writer would) and,
    every ``_WRITEBACK_EVERY`` bytes, calls ``posix_fadvise(DONTNEED)`` on the
    range written since the last call: Linux starts asynchronous write-back of
    those dirty pages (``WB_SYNC_NONE``) and keeps them cached while dirty.  It
    is only a hint; callers still ``fsync`` before trusting the data."""

    _written = 0
    _kicked = 0

    def write(self, data: ReadableBuffer, /) -> int:
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            n = super().write(view[done:])
            if n is None:  # only for non-blocking files, which these never are
                raise BlockingIOError(errno.EAGAIN, "write would block")
            done += n
        self._written += done
        if self._written - self._kicked >= _WRITEBACK_EVERY and _FADVISE is not None:
            with contextlib.suppress(OSError):  # a hint: never fail the write over it
                _FADVISE(self.fileno(), self._kicked, self._written - self._kicked, _DONTNEED)
            self._kicked = self._written
        return done


_FADVISE = getattr(os, "posix_fadvise", None)
_DONTNEED = getattr(os, "POSIX_FADV_DONTNEED", 4)


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
        if not _NAME_RE.fullmatch(name) or ".." in name:
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
            fh = WritebackFile(tmp, "xb")
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

    def age_seconds(self, name: str) -> float:
        try:
            return max(0.0, time.time() - self._path(name).stat().st_mtime)
        except FileNotFoundError as e:
            raise NotFound(f"no stored object {name}") from e

    def cleanup_incomplete(self, *, remove: bool = True) -> int:
        removed = 0
        if self._tmp.exists():
            for part in self._tmp.glob("*.part"):
                try:
                    with open(part, "rb") as fh:
                        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                        if remove:
                            part.unlink(missing_ok=True)
                        removed += 1
                except (BlockingIOError, FileNotFoundError):
                    continue  # a live writer holds it, or it just finished
        return removed


__all__ = ["LocalFolderBackend", "WritebackFile", "storage_error"]
