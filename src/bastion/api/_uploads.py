"""Uploads: streamed to private scratch files in the workspace, archives unpacked with caps.

A request body is never buffered whole: it streams into a 0600 file inside the
server process's 0700 scratch folder under ``<workspace>/tmp`` (never the shared /tmp),
removed on every exit path; a crash leaves it to the sweep of the next ``Bastion.open``.
The gate (``_gate.py``) has already bounded its size and authorized the caller.

A model archive is unpacked off the event loop, member by member from the headers: the
declared sizes are summed as the headers are read and the archive is refused at the first
member that passes a cap (total bytes, member count, expansion ratio), before anything
is written — so a 2 MB tar.gz declaring 2 GB of zeros is refused after reading 512 bytes.

Example::

    async with spooled_body(ws, request, suffix=".csv") as path:
        await run_in_threadpool(ws.datasets.ingest, actor, IngestRequest(..., path, ...))
"""

from __future__ import annotations

import gzip
import lzma
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path, PurePosixPath

from starlette.requests import Request

from bastion.api._limits import MIB, ArchiveCaps, ArchiveTooLarge
from bastion.core.errors import BastionError, InputError
from bastion.core.names import check_object_name
from bastion.model_security.errors import MaliciousArtifact
from bastion.workspace import Bastion


def scratch_dir(ws: Bastion) -> Path:
    """The private scratch directory for request bodies and downloads (0700): this
    process's locked folder, swept by the next ``Bastion.open`` if the process dies."""
    return ws.scratch.process_dir()


async def _write_body(request: Request, fd: int) -> None:
    with os.fdopen(fd, "wb") as fh:
        async for part in request.stream():
            fh.write(part)


def upload_filename(filename: str, default: str) -> str:
    """The file name a client gave an upload, reduced to its last part and checked.

    A folder part is dropped (it cannot choose where the upload lands); ``.``/``..``
    fall back to ``default`` (a backslash separates folders too); NUL, control and
    bidi characters and names
    over 255 bytes (the file-system limit) are refused as ``InputError``.
    """
    base = PurePosixPath(filename.replace("\\", "/")).name
    if base.strip(".") == "":
        return default
    return check_object_name(base, max_bytes=255)


def _name_the_upload(e: BastionError, replacements: dict[str, str]) -> None:
    """Rewrite server scratch paths in an error's text to the name the client gave the
    upload: error bodies never show where the server keeps its files."""
    for attr in ("message", "hint"):
        text = getattr(e, attr)
        if text:
            for server, shown in replacements.items():
                text = text.replace(server, shown)
            setattr(e, attr, text)
    e.args = (e.message,)
    if isinstance(getattr(e, "path", None), str):
        e.path = replacements.get(e.path, e.path)  # type: ignore[attr-defined]


@asynccontextmanager
async def spooled_body(
    ws: Bastion, request: Request, *, suffix: str = "", shown: str = "upload"
) -> AsyncIterator[Path]:
    """The request body as a private file (0600) that is removed when the block exits;
    errors raised inside name it ``shown`` (the upload's name), never its server path."""
    fd, name = tempfile.mkstemp(prefix="body-", suffix=suffix, dir=scratch_dir(ws))
    path = Path(name)
    try:
        await _write_body(request, fd)
        yield path
    except BastionError as e:
        _name_the_upload(
            e, {str(path): shown, path.name: shown, path.stem: PurePosixPath(shown).stem}
        )
        raise
    finally:
        path.unlink(missing_ok=True)


@asynccontextmanager
async def private_workdir(ws: Bastion) -> AsyncIterator[Path]:
    """A private (0700) directory for one upload, removed with its contents on exit."""
    work = Path(tempfile.mkdtemp(prefix="model-", dir=scratch_dir(ws)))
    try:
        yield work
    except BastionError as e:
        _name_the_upload(e, {f"{work}/": "", str(work): "upload"})
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def spool_into(request: Request, path: Path) -> None:
    """Stream the request body into a new private file ``path``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    await _write_body(request, fd)


def safe_suffix(filename: str) -> str:
    """A short ASCII extension of a client-given filename (a hint for format detection)."""
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix
    return suffix[:10] if suffix.isascii() and suffix.isprintable() else ""


def safe_extract(archive: Path, dest: Path, caps: ArchiveCaps) -> None:
    """Unpack a tar archive into ``dest`` within ``caps``; blocking (run it in a thread).

    Refuses links, devices, absolute and parent paths (:class:`MaliciousArtifact`) and any
    expansion past the caps (:class:`ArchiveTooLarge`) before writing a byte.
    """
    budget = min(caps.max_bytes, caps.max_ratio * max(archive.stat().st_size, MIB))
    try:
        with tarfile.open(archive) as tar:
            members: list[tarfile.TarInfo] = []
            total = 0
            for m in tar:  # headers one at a time: stop at the first breach
                _check_member(m)
                members.append(m)
                total += m.size
                if len(members) > caps.max_members:
                    raise ArchiveTooLarge(
                        f"the archive has more than {caps.max_members} members",
                        hint="BASTION_API_ARCHIVE_MAX_MEMBERS sets the limit")
                if total > budget:
                    raise ArchiveTooLarge(
                        f"the archive expands past {budget} bytes (the caps are "
                        f"{caps.max_bytes} bytes and {caps.max_ratio}x the upload)",
                        hint="BASTION_API_ARCHIVE_MAX_BYTES and BASTION_API_ARCHIVE_MAX_RATIO "
                             "set the caps")
            tar.extractall(dest, members=members, filter="data")
    except tarfile.FilterError as e:
        raise MaliciousArtifact(f"archive member refused: {e}") from e
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error, lzma.LZMAError) as e:
        raise InputError("the upload is not a readable tar archive",
                         hint="send a tar (optionally gzip/bz2/xz compressed) of the folder"
                         ) from e


def _check_member(m: tarfile.TarInfo) -> None:
    if not (m.isfile() or m.isdir()):
        raise MaliciousArtifact(f"archive member {m.name[:200]!r} is a link or special file")
    parts = PurePosixPath(m.name).parts
    if m.name.startswith(("/", "\\")) or ".." in parts or "\x00" in m.name:
        raise MaliciousArtifact(
            f"archive member {m.name[:200]!r} has an absolute or parent path",
            hint="archive the folder with relative paths (tar -C folder -czf model.tgz .)")


__all__ = [
    "private_workdir",
    "safe_extract",
    "safe_suffix",
    "scratch_dir",
    "spool_into",
    "spooled_body",
    "upload_filename",
]
