"""Workspace backups: a consistent snapshot with a signed manifest, checked before use.

A backup is a folder::

    <dest>/manifest.json        every file below with its SHA-256 and size, signed
    <dest>/manifest.sig.json    Ed25519 signature of manifest.json (audit key)
    <dest>/workspace.json       {"database": "embedded"} (or the external URL)
    <dest>/keyring.json         the keyring, still wrapped by the master key
    <dest>/bastion.db           SQLite online-backup snapshot (embedded database only)
    <dest>/audit-head.json      the audit witness at the time of the snapshot
    <dest>/blobs/...            the encrypted objects (ciphertext, copied as is)

Order matters for consistency while writers run: the keyring is copied first
(a data key wrapped later would be missing from it), then the witness (it only
grows, so it never names more than the snapshot holds), then the database is
snapshotted with SQLite's online backup API (one consistent read transaction),
then the blobs. Blobs are written before the rows that reference them are
committed, so every blob the snapshot references is already on disk when the
blob folder is copied; extra blobs are harmless (``fsck --repair`` reclaims
them). The API token file (``credentials``) is never copied.

``check_backup`` re-hashes every file against the manifest before anything is
restored, so a truncated or edited backup is refused, not half-restored.

Example::

    manifest = write_backup(sources, Path("/mnt/backup/2026-12-04"), signer)
    check_backup(Path("/mnt/backup/2026-12-04"))
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bastion.core.errors import ConfigurationError, Conflict, InputError, IntegrityError

FORMAT = "bastion-backup/1"
_CHUNK = 1 << 20


class BackupCorrupted(IntegrityError):
    """A backup's files do not match its manifest (or the manifest is unsigned)."""

    code = "backup_corrupted"


@dataclass(frozen=True)
class BackupSources:
    """Where the parts of a live workspace are."""

    home: Path
    keyring: Path
    witness: Path
    blobs: Path
    sqlite_db: Path | None  # None when the metadata lives in an external database
    database_url: str | None  # the external URL, recorded in the backup's workspace.json


@dataclass(frozen=True)
class BackupFile:
    path: str  # relative, POSIX
    sha256: str
    size: int


@dataclass(frozen=True)
class BackupManifest:
    created_at: str
    source_home: str
    embedded_database: bool
    files: tuple[BackupFile, ...]

    def to_json(self) -> bytes:
        doc = {
            "format": FORMAT,
            "created_at": self.created_at,
            "source_home": self.source_home,
            "embedded_database": self.embedded_database,
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in self.files],
        }
        return json.dumps(doc, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> BackupManifest:
        try:
            doc = json.loads(data)
            if doc.get("format") != FORMAT:
                raise ValueError(f"unknown format {doc.get('format')!r}")
            files = tuple(
                BackupFile(str(f["path"]), str(f["sha256"]), int(f["size"])) for f in doc["files"]
            )
            return cls(
                str(doc["created_at"]),
                str(doc["source_home"]),
                bool(doc["embedded_database"]),
                files,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise BackupCorrupted(f"backup manifest is unreadable: {e}") from e


#: signs the manifest bytes; returns (key_id, signature)
Sign = Callable[[bytes], tuple[str, bytes]]
#: verifies (key_id, signature, data)
Verify = Callable[[str, bytes, bytes], bool]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _private_dirs(path: Path) -> None:
    # mkdir(parents=True) applies ``mode`` to the last folder only; every folder
    # of a backup holds secrets (ciphertext, the wrapped keyring), so each is 0700.
    if path.is_dir():
        return
    _private_dirs(path.parent)
    path.mkdir(mode=0o700)
    os.chmod(path, 0o700)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _copy_private(src: Path, dst: Path) -> None:
    _private_dirs(dst.parent)
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
        shutil.copyfileobj(fin, fout, _CHUNK)
        fout.flush()
        os.fsync(fout.fileno())


def _snapshot_sqlite(src: Path, dst: Path) -> None:
    # The online backup API copies a consistent snapshot while other
    # connections keep writing (WAL); a plain file copy could tear a page.
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    try:
        target = sqlite3.connect(dst)
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()


def _blob_files(blobs: Path) -> Iterator[Path]:
    # Only published objects: ``blobs/tmp`` holds in-flight writes (``*.part``).
    for path in sorted((blobs / "objects").rglob("*")):
        if path.is_file():
            yield path


def _empty_destination(dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InputError(
            f"backup destination {dest} exists and is not an empty folder",
            hint="name a new folder; a backup never overwrites anything",
        )
    _private_dirs(dest)
    os.chmod(dest, 0o700)


def write_backup(src: BackupSources, dest: Path, sign: Sign) -> BackupManifest:
    """Snapshot the workspace described by ``src`` into the new folder ``dest``."""
    _empty_destination(dest)
    _copy_private(src.keyring, dest / "keyring.json")
    keyring_digest = _sha256(dest / "keyring.json")
    # The witness before the database: it only grows, so the snapshot taken next
    # holds at least the entries it names (copied after, it could name entries
    # a writer committed after the snapshot, and the restore would read as a
    # truncated log).
    if src.witness.exists():
        _copy_private(src.witness, dest / "audit-head.json")
    config: dict[str, str] = {"database": "embedded"}
    if src.sqlite_db is not None:
        _snapshot_sqlite(src.sqlite_db, dest / "bastion.db")
    elif src.database_url is not None:
        config = {"database_url": src.database_url}
    for path in _blob_files(src.blobs):
        _copy_private(path, dest / "blobs" / path.relative_to(src.blobs))
    _write_private(dest / "workspace.json", json.dumps(config, indent=2).encode())
    files = tuple(
        BackupFile(p.relative_to(dest).as_posix(), _sha256(p), p.stat().st_size)
        for p in sorted(dest.rglob("*"))
        if p.is_file()
    )
    manifest = BackupManifest(
        datetime.now(UTC).isoformat(timespec="seconds"),
        str(src.home),
        src.sqlite_db is not None,
        files,
    )
    body = manifest.to_json()
    key_id, signature = sign(body)
    # A key rotated while the blobs were copied re-wrapped some blob keys with a
    # KEK the copied keyring lacks: such a backup would not restore. Refuse it.
    if _sha256(src.keyring) != keyring_digest:
        shutil.rmtree(dest, ignore_errors=True)
        raise Conflict(
            "the keyring changed while the backup was written (a key was rotated)",
            hint="run `bastion backup` again; nothing was kept",
        )
    _write_private(dest / "manifest.json", body)
    sig = {"key_id": key_id, "signature": signature.hex()}
    _write_private(dest / "manifest.sig.json", json.dumps(sig).encode())
    return manifest


def check_backup(src: Path) -> BackupManifest:
    """Re-hash every file of the backup at ``src``; raise ``BackupCorrupted`` on any mismatch."""
    try:
        manifest = BackupManifest.from_json((src / "manifest.json").read_bytes())
    except FileNotFoundError as e:
        raise ConfigurationError(
            f"{src} is not a Bastion backup (no manifest.json)",
            hint="name the folder `bastion backup` wrote",
        ) from e
    links = [p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_symlink()]
    if links:
        raise BackupCorrupted(
            f"backup {src} contains symbolic links ({', '.join(links[:5])}); a backup never does",
            hint="restore from another copy of the backup",
        )
    listed = {f.path for f in manifest.files}
    present = {
        p.relative_to(src).as_posix()
        for p in src.rglob("*")
        if p.is_file() and p.name not in ("manifest.json", "manifest.sig.json")
    }
    problems = [f"missing: {p}" for p in sorted(listed - present)]
    problems += [f"not in the manifest: {p}" for p in sorted(present - listed)]
    for f in manifest.files:
        path = src / f.path
        if f.path in present and (path.stat().st_size != f.size or _sha256(path) != f.sha256):
            problems.append(f"changed: {f.path}")
    if problems:
        raise BackupCorrupted(
            f"backup {src} does not match its manifest: " + "; ".join(problems[:10]),
            hint="restore from another copy of the backup",
        )
    return manifest


def check_signature(src: Path, verify: Verify) -> None:
    """Check the manifest's signature with the restored keyring's audit key."""
    try:
        doc = json.loads((src / "manifest.sig.json").read_text())
        signature = bytes.fromhex(str(doc["signature"]))
        ok = verify(str(doc["key_id"]), signature, (src / "manifest.json").read_bytes())
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BackupCorrupted(f"backup manifest signature is unreadable: {e}") from e
    if not ok:
        raise BackupCorrupted(
            "backup manifest signature does not verify with the backup's audit key",
            hint="the manifest was edited after the backup was written",
        )


def copy_backup(src: Path, dest: Path, manifest: BackupManifest) -> None:
    """Copy a checked backup into the new workspace folder ``dest``."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InputError(
            f"restore destination {dest} exists and is not empty",
            hint="restore into a new folder; a restore never overwrites a workspace",
        )
    _private_dirs(dest)
    for f in manifest.files:
        _copy_private(src / f.path, dest / f.path)


__all__ = [
    "BackupCorrupted",
    "BackupFile",
    "BackupManifest",
    "BackupSources",
    "check_backup",
    "check_signature",
    "copy_backup",
    "write_backup",
]
