"""Verify-then-load without a time-of-check / time-of-use gap.

Verifying a folder and *then* loading it from the same folder leaves a
window: the file can be swapped after its digest was checked (TOCTOU).  Two
defences close it:

* :func:`open_verified` copies every signed file into a private snapshot
  directory (``mkdtemp``: mode 0700, files 0400, opened with ``O_NOFOLLOW``)
  *hashing the very bytes it writes*, compares them with the signed
  manifest, and hands back a :class:`VerifiedSnapshot`.  Loaders read the
  snapshot, never the original: a later change to the original cannot reach
  them, and only signed files exist in the snapshot (an unsigned file that a
  signed ignore path let through is never there).
* :func:`read_verified` (and ``VerifiedSnapshot.read_bytes``) read a file
  into memory and hash that buffer before returning it: a file changed after
  verification is refused.  Use it for small files (configs, tokenizers).

Example::

    with open_verified(model_dir, bundle, trusted_keys=keys, policy=policy) as snap:
        model = restricted_joblib_load(snap.file("model.joblib"), policy)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Protocol

import blake3
from model_signing import manifest

from bastion.core.errors import InputError
from bastion.model_security.errors import ArtifactMismatch
from bastion.model_security.signing import _manifest
from bastion.model_security.signing.policy import SignerPolicy
from bastion.model_security.signing.types import (
    Mismatch,
    MismatchKind,
    Progress,
    ProgressFn,
    Stage,
    TrustedKey,
    VerifiedModel,
)
from bastion.model_security.signing.verify import verified_model, verify_bundle

_CHUNK = 4 << 20


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> object: ...

    def hexdigest(self) -> str: ...


_HASHES: dict[str, Callable[[], _Hasher]] = {
    "sha256": hashlib.sha256,
    "blake2": hashlib.blake2b,
    "blake2b": hashlib.blake2b,  # what model_signing records for blake2
    "blake3": blake3.blake3,
}


class VerifiedSnapshot:
    """A private, verified copy of a signed model; load from :meth:`file`.

    ``close()`` (or leaving the ``with`` block) deletes the copy.
    """

    def __init__(self, root: Path, model: VerifiedModel, single_file: str | None) -> None:
        self._root = root
        self._single = single_file
        self.model = model

    @property
    def path(self) -> Path:
        """The snapshot's model path (a folder, or the single model file)."""
        return self._root / self._single if self._single else self._root

    def file(self, name: str) -> Path:
        """Path of a signed file inside the snapshot (InputError if not signed)."""
        if self._single is not None and name in (".", self._single):
            return self._root / self._single
        if name not in _signed_pieces(self.model):
            raise InputError(f"{name!r} is not a signed file of model {self.model.model_name!r}")
        return self._root / name

    def read_bytes(self, name: str) -> bytes:
        """Read a signed file from the snapshot, re-checking its digest in memory."""
        key = "." if self._single is not None else name
        return _read_checked(self.file(name), key, self.model)

    def close(self) -> None:
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> VerifiedSnapshot:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_verified(
    model_path: Path,
    bundle_bytes: bytes,
    *,
    trusted_keys: Sequence[TrustedKey],
    policy: SignerPolicy,
    signed_at: datetime | None = None,
    now: datetime | None = None,
    workdir: Path | None = None,
    progress: ProgressFn | None = None,
) -> VerifiedSnapshot:
    """Verify a signed model into a private snapshot and return it (see module doc)."""
    path = _manifest.check_model_path(model_path)
    expected, signer = verify_bundle(
        bundle_bytes, trusted_keys=trusted_keys, policy=policy, signed_at=signed_at, now=now
    )
    args = expected.serialization_type
    sharded = args.get("method") == "shards"
    wanted = _expected_files(expected, sharded)
    try:
        listed = _list_files(path, _manifest.ignored_paths_of(expected), sharded)
    except OSError as e:  # an unreadable folder is a refusal, never a skipped folder
        raise ArtifactMismatch(f"model at {path} cannot be listed: {e}", mismatches=()) from e
    problems = [Mismatch(MismatchKind.EXTRA, n) for n in sorted(listed - wanted.keys())]
    problems += [Mismatch(MismatchKind.MISSING, n) for n in sorted(wanted.keys() - listed)]
    if problems:
        _refuse(path, problems)
    root = Path(tempfile.mkdtemp(prefix="bastion-verified-", dir=workdir))
    try:
        total = sum(os.lstat(_source(path, n)).st_size for n in wanted)
        done = 0
        # Files are copied in parallel: hashlib and file writes release the GIL.
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            jobs = {
                pool.submit(_copy_and_check, path, root, n, wanted[n], args): n
                for n in sorted(wanted)
            }
            for job in as_completed(jobs):
                size, mismatch = job.result()
                done += size
                if mismatch is not None:
                    problems.append(mismatch)
                if progress is not None:
                    progress(Progress(Stage.COPYING, done, total, jobs[job]))
        if problems:
            _refuse(path, problems)
    except OSError as e:  # a file vanished or turned into a symlink mid-copy: refuse
        shutil.rmtree(root, ignore_errors=True)
        raise ArtifactMismatch(
            f"model at {path} changed while it was being verified: {e}", mismatches=problems
        ) from e
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    single = path.name if path.is_file() else None
    return VerifiedSnapshot(root, verified_model(expected, signer), single)


def read_verified(model_path: Path, name: str, model: VerifiedModel) -> bytes:
    """Read one file of a verified model into memory; refuse it if it changed since."""
    path = Path(model_path)
    target = path if name == "." else path / name
    return _read_checked(target, name, model)


def _read_checked(target: Path, name: str, model: VerifiedModel) -> bytes:
    pieces = _signed_pieces(model).get(name)
    if pieces is None:
        raise InputError(f"{name!r} is not a signed file of model {model.model_name!r}")
    data = _read_nofollow(target)
    actual: list[tuple[int, int, str]] = []
    for start, end, algorithm, _ in pieces:
        stop = len(data) if end == -1 else end
        h = _HASHES[_hash_type(algorithm)]()
        h.update(data[start:stop])
        actual.append((start, end, h.hexdigest()))
    covered = len(data) if pieces[-1][1] == -1 else pieces[-1][1]
    expected = [(s, e, d) for s, e, _, d in pieces]
    if actual != expected or covered != len(data):
        raise ArtifactMismatch(
            f"{target} changed after it was verified",
            mismatches=[_piece_mismatch(name, expected, actual)],
            hint="someone modified the artifact between verification and load; refused",
        )
    return data


def _signed_pieces(model: VerifiedModel) -> dict[str, list[tuple[int, int, str, str]]]:
    """Signed file name -> (start, end, algorithm, digest) pieces; end=-1 for whole files."""
    out: dict[str, list[tuple[int, int, str, str]]] = {}
    for f in model.files:
        if "-sharded-" in f.algorithm:
            name, start, end = f.name.rsplit(":", 2)
            out.setdefault(name, []).append((int(start), int(end), f.algorithm, f.digest))
        else:
            out[f.name] = [(0, -1, f.algorithm, f.digest)]
    for pieces in out.values():
        pieces.sort()
    return out


def _hash_type(algorithm: str) -> str:
    base = algorithm.split("-sharded-")[0]
    return "blake2" if base == "blake2b" else base


def _expected_files(
    expected: manifest.Manifest, sharded: bool
) -> dict[str, list[tuple[int, int, str]]]:
    """Signed files -> their (start, end, digest) pieces (one piece, end=-1, if whole)."""
    out: dict[str, list[tuple[int, int, str]]] = {}
    for rd in expected.resource_descriptors():
        if sharded:
            name, start, end = rd.identifier.rsplit(":", 2)
            out.setdefault(name, []).append((int(start), int(end), rd.digest.digest_hex))
        else:
            out[rd.identifier] = [(0, -1, rd.digest.digest_hex)]
    for pieces in out.values():
        pieces.sort()
    return out


def _list_files(path: Path, ignored: Sequence[str], sharded: bool) -> set[str]:
    """Relative names of the files a signature must cover (symlinks refused)."""
    if path.is_file():
        return {"."}
    names: set[str] = set()
    ignore = [PurePosixPath(p) for p in ignored]
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False, onerror=_reraise):
        for entry in dirnames + filenames:
            full = Path(dirpath) / entry
            rel = PurePosixPath(full.relative_to(path).as_posix())
            if any(rel.is_relative_to(i) for i in ignore):
                continue
            mode = os.lstat(full).st_mode
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                _refuse(path, [Mismatch(MismatchKind.EXTRA, f"{rel} (not a regular file)")])
            # model_signing puts no shard of an empty file in a sharded manifest
            if not (sharded and os.lstat(full).st_size == 0):
                names.add(str(rel))
        dirnames[:] = [d for d in dirnames if not os.path.islink(Path(dirpath) / d)]
    return names


def _reraise(error: OSError) -> None:
    raise error


def _source(path: Path, name: str) -> Path:
    return path if name == "." else path / name


def _copy_and_check(
    path: Path,
    root: Path,
    name: str,
    pieces: list[tuple[int, int, str]],
    args: dict[str, object],
) -> tuple[int, Mismatch | None]:
    """Copy one file into the snapshot, hashing the bytes written; return size, mismatch."""
    dest = root / (path.name if name == "." else name)
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    new_hasher = _HASHES[str(args["hash_type"])]
    # the signed JSON goes through a protobuf Struct, so the size may read as 65536.0
    shard = int(float(str(args["shard_size"]))) if pieces[0][1] != -1 else 0
    actual: list[tuple[int, int, str]] = []
    src_fd = os.open(_source(path, name), os.O_RDONLY | os.O_NOFOLLOW)
    dst_fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(src_fd, "rb") as src, os.fdopen(dst_fd, "wb") as dst:
        h, start, offset = new_hasher(), 0, 0
        while chunk := src.read(min(_CHUNK, shard - (offset - start)) if shard else _CHUNK):
            h.update(chunk)
            dst.write(chunk)
            offset += len(chunk)
            if shard and offset - start == shard:
                actual.append((start, offset, h.hexdigest()))
                h, start = new_hasher(), offset
        if not shard:
            actual.append((0, -1, h.hexdigest()))
        elif offset > start:
            actual.append((start, offset, h.hexdigest()))
    os.chmod(dest, 0o400)
    return offset, (_piece_mismatch(name, pieces, actual) if actual != pieces else None)


def _piece_mismatch(
    name: str, expected: list[tuple[int, int, str]], actual: list[tuple[int, int, str]]
) -> Mismatch:
    def show(pieces: list[tuple[int, int, str]]) -> str:
        return ",".join(d if e == -1 else f"{s}:{e}={d[:12]}" for s, e, d in pieces)

    return Mismatch(MismatchKind.DIGEST, name, show(expected), show(actual))


def _read_nofollow(target: Path) -> bytes:
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        raise ArtifactMismatch(
            f"{target} cannot be read as a regular file: {e}",
            mismatches=[Mismatch(MismatchKind.MISSING, target.name)],
        ) from e
    with os.fdopen(fd, "rb") as f:
        return f.read()


def _refuse(path: Path, problems: Sequence[Mismatch]) -> None:
    raise ArtifactMismatch(
        f"model at {path} does not match its signature ({len(problems)} difference(s))",
        mismatches=problems,
        hint="the artifact was modified, or the bundle belongs to another model",
    )


__all__ = ["VerifiedSnapshot", "open_verified", "read_verified"]
