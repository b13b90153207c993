"""The content-addressed, encrypted blob store.

Objects are addressed by the SHA-256 of their plaintext and stored as two
backend objects: ``<digest>.enc`` (the chunked AES-256-GCM stream, see
``bastion.core.crypto.envelope``) and ``<digest>.key`` (the data key wrapped by
the key manager, with the digest, size and file id as authenticated context).
The key object is published last, so an object is visible only once it is
complete; a crash mid-write leaves an invisible orphan that ``fsck`` removes.
Rotation re-wraps ``.key`` objects only; data is never re-encrypted.

Reads authenticate every chunk before releasing it and re-check the digest;
any flipped byte raises :class:`BlobCorrupted` naming the object.

Example::

    store = EncryptedBlobStore(LocalFolderBackend(root), keyring)
    info = store.put_bytes(b"hello")
    assert store.read_bytes(info.digest) == b"hello"
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bastion.core.crypto.envelope import (
    CHUNK_SIZE,
    ChunkAuthenticationFailed,
    StreamDecryptor,
    StreamEncryptor,
    header_prefix_size,
    parse_header,
)
from bastion.core.crypto.interface import KeyManager, WrappedKey
from bastion.core.errors import (
    BlobCorrupted,
    CryptoError,
    KeyringDamaged,
    NotFound,
    StorageError,
)
from bastion.core.store._adapters.local_folder import WritebackFile, storage_error
from bastion.core.store.interface import BlobInfo, Digest, ObjectBackend, as_digest

Progress = Callable[[int], None]


def _private(path: str, flags: int) -> int:
    """``open`` flags as given, mode 0600 (for ``io.FileIO``'s ``opener``)."""
    return os.open(path, flags, 0o600)


@dataclass(frozen=True)
class FsckReport:
    checked: int
    corrupted: tuple[str, ...]
    orphans_removed: int
    incomplete_removed: int
    #: leftovers seen (removed only when ``repaired``)
    orphans_found: int = 0
    incomplete_found: int = 0
    repaired: bool = False
    #: complete blobs nothing in the metadata references, past the grace period
    unreferenced_found: int = 0
    unreferenced_removed: int = 0

    @property
    def ok(self) -> bool:
        return not self.corrupted


def _names(digest: str) -> tuple[str, str]:
    base = f"objects/{digest[:2]}/{digest}"
    return base + ".enc", base + ".key"


def _context(digest: str, size: int, file_id: str) -> bytes:
    return f"blob|{digest}|{size}|{file_id}".encode()


def _read_full(source: BinaryIO, size: int) -> bytes:
    """Read ``size`` bytes or up to EOF: a raw file or a pipe may return short reads."""
    data = source.read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    got = len(data)
    while got < size and (more := source.read(size - got)):
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _chunks(source: BinaryIO, size: int) -> Iterator[tuple[int, bytes, bool]]:
    """Yield (index, chunk, is_final) reading one chunk ahead to know the last one."""
    current = _read_full(source, size)
    index = 0
    while True:
        following = _read_full(source, size) if len(current) == size else b""
        final = not following
        yield index, current, final
        if final:
            return
        current = following
        index += 1


class EncryptedBlobStore:
    """Content-addressed blobs, encrypted with a fresh data key each."""

    def __init__(self, backend: ObjectBackend, keys: KeyManager) -> None:
        self._backend = backend
        self._keys = keys

    # -- writes ---------------------------------------------------------------
    def put_file(self, path: Path, *, progress: Progress | None = None) -> BlobInfo:
        try:
            with open(path, "rb", buffering=0) as fh:
                return self.put_stream(fh, progress=progress)
        except FileNotFoundError:
            raise NotFound(f"file {path} does not exist") from None

    def put_bytes(self, data: bytes) -> BlobInfo:
        import io

        return self.put_stream(io.BytesIO(data))

    def put_iter(self, parts: Iterable[bytes]) -> BlobInfo:
        return self.put_stream(_IterReader(parts))  # type: ignore[arg-type]

    def put_stream(self, source: BinaryIO, *, progress: Progress | None = None) -> BlobInfo:
        data_key = os.urandom(32)
        enc = StreamEncryptor(data_key)
        hasher = hashlib.sha256()
        size = 0
        # Hash on a second thread while this one reads, encrypts and writes:
        # hashlib releases the GIL, so SHA-256 of chunk i overlaps the AES of
        # chunk i+1 and the I/O around it.  Only one hash is ever in flight, so
        # the chunks reach the hasher in order.
        with ThreadPoolExecutor(max_workers=1) as pool, self._backend.staged() as staged:
            out = staged.stream
            out.write(enc.header_bytes)
            hashed: Future[None] | None = None
            for index, chunk, final in _chunks(source, CHUNK_SIZE):
                sealed = enc.seal(index, chunk, final=final)
                if hashed is not None:
                    hashed.result()
                hashed = pool.submit(hasher.update, chunk)
                out.write(sealed)
                size += len(chunk)
                if progress is not None:
                    progress(len(chunk))
            if hashed is not None:
                hashed.result()
            digest = Digest(hasher.hexdigest())
            enc_name, key_name = _names(digest)
            if self._backend.exists(key_name) and self._backend.exists(enc_name):
                return self.info(digest)  # identical content already stored
            wrapped = self._keys.wrap(data_key, _context(digest, size, enc.header.file_id))
            staged.publish(enc_name)
        # The key record is published last: only now does the object exist.
        self._write_key(key_name, digest, size, enc.header.file_id, wrapped)
        return BlobInfo(digest, size, wrapped.kek_version)

    def _write_key(
        self, name: str, digest: str, size: int, file_id: str, wrapped: WrappedKey
    ) -> None:
        doc = {
            "v": 1,
            "digest": digest,
            "size": size,
            "file_id": file_id,
            "kek_id": wrapped.kek_id,
            "kek_version": wrapped.kek_version,
            "wrapped": base64.b64encode(wrapped.blob).decode("ascii"),
        }
        with self._backend.writer(name) as out:
            out.write(json.dumps(doc, sort_keys=True).encode())

    # -- reads ----------------------------------------------------------------
    def exists(self, digest: str) -> bool:
        enc_name, key_name = _names(as_digest(digest))
        return self._backend.exists(key_name) and self._backend.exists(enc_name)

    def info(self, digest: str) -> BlobInfo:
        d = as_digest(digest)
        doc = self._read_key_doc(d)
        return BlobInfo(d, int(str(doc["size"])), int(str(doc["kek_version"])))

    def iter_chunks(self, digest: str) -> Iterator[bytes]:
        """Yield authenticated plaintext chunks; raise BlobCorrupted on any tamper.

        Every chunk is authenticated before it is yielded; truncation is
        detected at the end of the stream, so treat the data as complete only
        once iteration finishes without error."""
        d = as_digest(digest)
        doc = self._read_key_doc(d)
        enc_name, _ = _names(d)
        try:
            yield from self._decrypt(d, doc, enc_name)
        except ChunkAuthenticationFailed as e:
            raise BlobCorrupted(
                f"blob {d} is corrupted: {e.message}",
                hint="restore it from backup; the stored bytes fail authentication",
            ) from None
        except KeyringDamaged:
            raise  # the keyring is damaged, not this blob: say so, not "blob corrupted"
        except CryptoError as e:
            raise BlobCorrupted(f"blob {d} cannot be decrypted: {e.message}") from None

    def _decrypt(self, d: Digest, doc: dict[str, object], enc_name: str) -> Iterator[bytes]:
        file_id, size = str(doc["file_id"]), int(str(doc["size"]))
        wrapped = WrappedKey(
            str(doc["kek_id"]),
            int(str(doc["kek_version"])),
            base64.b64decode(str(doc["wrapped"])),
        )
        data_key = self._keys.unwrap(wrapped, _context(d, size, file_id))
        hasher, total = hashlib.sha256(), 0
        # The digest is computed on a helper thread (hashlib releases the GIL)
        # while this one reads and decrypts the next chunk and the consumer
        # writes this one; the final digest check waits for every chunk.
        with self._backend.open(enc_name) as fh, _Hasher(hasher) as hashing:
            prefix = fh.read(header_prefix_size())
            header, header_len = parse_header(prefix)
            if header.file_id != file_id:
                raise ChunkAuthenticationFailed("data and key belong to different objects")
            dec = StreamDecryptor(data_key, prefix[:header_len], header)
            fh.seek(header_len)
            sealed_size = dec.sealed_chunk_size
            current = fh.read(sealed_size)
            index = 0
            while True:
                following = fh.read(sealed_size) if len(current) == sealed_size else b""
                final = not following
                plain = dec.open(index, current, final=final)
                hashing.update(plain, background=index > 0 or not final)
                total += len(plain)
                yield plain
                if final:
                    break
                current, index = following, index + 1
            hashing.wait()
        if total != size or hasher.hexdigest() != d:
            raise ChunkAuthenticationFailed("content does not match its digest")

    def read_bytes(self, digest: str) -> bytes:
        return b"".join(self.iter_chunks(digest))

    def copy_to(self, digest: str, dest: Path) -> None:
        """Decrypt into ``dest``; the file appears only after full verification."""
        tmp = dest.with_name(f".{dest.name}.{os.urandom(4).hex()}.part")
        try:
            # Decrypted bytes are for the user who asked: 0600 from the first byte, not
            # whatever the umask leaves (0644 let other local users read exports).
            with WritebackFile(tmp, "xb", opener=_private) as out:
                for chunk in self.iter_chunks(digest):
                    out.write(chunk)
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except OSError as e:
            raise storage_error(e, f"exporting blob to {dest}") from e
        finally:
            tmp.unlink(missing_ok=True)

    def _read_key_doc(self, d: Digest) -> dict[str, object]:
        _, key_name = _names(d)
        try:
            with self._backend.open(key_name) as fh:
                raw = fh.read(64 * 1024)
        except NotFound:
            raise NotFound(f"blob {d} does not exist") from None
        try:
            doc = json.loads(raw)
            if doc.get("digest") != d:
                raise ValueError("digest mismatch")
            # Fail closed on a damaged record: every field must be there and parse.
            int(str(doc["size"])), int(str(doc["kek_version"])), str(doc["file_id"])
            str(doc["kek_id"]), base64.b64decode(str(doc["wrapped"]), validate=True)
            return dict(doc)
        except (ValueError, AttributeError, KeyError, TypeError):
            raise BlobCorrupted(f"blob {d} is corrupted: its key record is unreadable") from None

    # -- maintenance ------------------------------------------------------------
    def digests(self) -> Iterator[Digest]:
        for name in self._backend.list("objects"):
            if name.endswith(".key"):
                yield Digest(name.rsplit("/", 1)[-1].removesuffix(".key"))

    def delete(self, digest: str) -> None:
        """Crypto-shred: the key record goes first, so the data is unreadable at once."""
        enc_name, key_name = _names(as_digest(digest))
        self._backend.delete(key_name)
        self._backend.delete(enc_name)

    def kek_usage(self) -> dict[int, int]:
        usage: dict[int, int] = {}
        for d in self.digests():
            v = self.info(d).kek_version
            usage[v] = usage.get(v, 0) + 1
        return usage

    def rewrap(self, progress: Progress | None = None) -> int:
        """Re-wrap every data key under the active KEK; return how many changed."""
        active, changed = self._keys.active_kek_version(), 0
        for d in list(self.digests()):
            doc = self._read_key_doc(d)
            if int(str(doc["kek_version"])) == active:
                continue
            context = _context(d, int(str(doc["size"])), str(doc["file_id"]))
            old = WrappedKey(
                str(doc["kek_id"]),
                int(str(doc["kek_version"])),
                base64.b64decode(str(doc["wrapped"])),
            )
            new = self._keys.wrap(self._keys.unwrap(old, context), context)
            self._write_key(_names(d)[1], d, int(str(doc["size"])), str(doc["file_id"]), new)
            changed += 1
            if progress is not None:
                progress(1)
        return changed

    def fsck(
        self,
        *,
        deep: bool = True,
        repair: bool = False,
        references: Callable[[], set[str]] | None = None,
        grace_s: float = 3600.0,
    ) -> FsckReport:
        """Verify every object; with ``repair``, also delete leftovers of
        interrupted writes (otherwise they are only counted: read-only).

        With ``references`` (every digest the metadata mentions), complete blobs
        that nothing references and that are older than ``grace_s`` are counted
        and, with ``repair``, crypto-shredded: what a failed or killed write left
        behind. The grace period spares blobs whose referencing row is still
        being committed; the candidates are listed *before* the references are
        read, so a blob referenced meanwhile is never taken."""
        candidates = self._unreferenced_candidates(grace_s) if references is not None else []
        referenced = references() if references is not None else set()
        unreferenced = [d for d in candidates if d not in referenced]
        if repair:
            for d in unreferenced:
                self.delete(d)
        incomplete = self._backend.cleanup_incomplete(remove=repair)
        orphans = 0
        keyed = set(self.digests())
        for name in list(self._backend.list("objects")):
            if name.endswith(".enc"):
                digest = name.rsplit("/", 1)[-1].removesuffix(".enc")
                if digest not in keyed:
                    if repair:
                        self._backend.delete(name)
                    orphans += 1
        corrupted: list[str] = []
        checked = 0
        for d in sorted(keyed):
            checked += 1
            if not deep:
                continue
            try:
                for _ in self.iter_chunks(d):
                    pass
            except (BlobCorrupted, NotFound, StorageError):
                corrupted.append(d)
        removed = (orphans, incomplete) if repair else (0, 0)
        return FsckReport(
            checked,
            tuple(corrupted),
            *removed,
            orphans,
            incomplete,
            repair,
            len(unreferenced),
            len(unreferenced) if repair else 0,
        )

    def _unreferenced_candidates(self, grace_s: float) -> list[Digest]:
        out: list[Digest] = []
        for d in self.digests():
            try:
                age = self._backend.age_seconds(_names(d)[1])
            except NotFound:
                continue
            if age > grace_s:
                out.append(d)
        return out


class _Hasher:
    """Feeds one hash in order, on a lazily started helper thread for big inputs."""

    def __init__(self, hasher: hashlib._Hash) -> None:
        self._hasher = hasher
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None

    def __enter__(self) -> _Hasher:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def update(self, data: bytes, *, background: bool) -> None:
        self.wait()
        if not background:  # a one-chunk object: a thread would cost more than it saves
            self._hasher.update(data)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending = self._pool.submit(self._hasher.update, data)

    def wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()


class _IterReader:
    """A minimal ``read(n)`` over an iterable of byte strings."""

    def __init__(self, parts: Iterable[bytes]) -> None:
        self._it = iter(parts)
        self._buf = bytearray()

    def read(self, n: int) -> bytes:
        while len(self._buf) < n:
            try:
                self._buf += next(self._it)
            except StopIteration:
                break
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out


__all__ = ["EncryptedBlobStore", "FsckReport"]
