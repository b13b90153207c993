"""Bridges between model_signing manifests and Bastion values (internal).

Hashing always goes through model_signing's public ``hashing.Config`` so a
Bastion manifest is byte-for-byte what the upstream CLI computes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Literal

from model_signing import hashing, manifest

from bastion.core.errors import InputError
from bastion.model_security.errors import ArtifactMismatch, SignatureInvalid
from bastion.model_security.signing.types import (
    FileDigest,
    HashAlgorithm,
    Mismatch,
    MismatchKind,
)

_GIT_PATHS = (".git", ".gitattributes", ".github", ".gitignore")
# model_signing 1.1.1 records blake2 as "blake2b" but only accepts "blake2" back.
_HASH_TYPES: dict[str, Literal["sha256", "blake2", "blake3"]] = {
    "sha256": "sha256",
    "blake2": "blake2",
    "blake2b": "blake2",
    "blake3": "blake3",
}


def check_model_path(model_path: Path) -> Path:
    """The model path must be an existing file or directory (InputError otherwise)."""
    path = Path(model_path)
    if path.is_symlink() or not (path.is_dir() or path.is_file()):
        raise InputError(
            f"model path {path} is not an existing regular file or directory",
            hint="pass the folder (or single file) that holds the model artifacts",
        )
    return path


def relative_ignore_paths(paths: Iterable[str | Path]) -> tuple[str, ...]:
    """Validate user ignore paths: relative, inside the model, no '..'."""
    out: list[str] = []
    for p in paths:
        pure = PurePosixPath(str(p))
        if pure.is_absolute() or ".." in pure.parts or str(pure) in ("", "."):
            raise InputError(
                f"ignore path {p!s} must be relative to the model folder and stay inside it",
                hint='e.g. ignore_paths=("README.md", "runs/")',
            )
        out.append(str(pure))
    return tuple(out)


def signing_config(
    algorithm: HashAlgorithm,
    shard_size: int | None,
    ignore_paths: Sequence[str],
    ignore_git_paths: bool,
) -> hashing.Config:
    """The hashing configuration used to sign (strict by default: git paths are signed)."""
    config = hashing.Config()  # type: ignore[no-untyped-call]
    if shard_size is None:
        config.use_file_serialization(hashing_algorithm=algorithm.value)
    else:
        if shard_size <= 0:
            raise InputError(f"shard_size must be positive, got {shard_size}")
        config.use_shard_serialization(hashing_algorithm=algorithm.value, shard_size=shard_size)
    paths = list(ignore_paths) + (list(_GIT_PATHS) if ignore_git_paths else [])
    return config.set_ignored_paths(paths=paths, ignore_git_paths=False)


def verifying_config(expected: manifest.Manifest) -> hashing.Config:
    """The hashing configuration recorded (and signed) in a manifest.

    Like model_signing's ``_guess_hashing_config`` but with *only* the signed
    ignore paths: nothing outside the signature is silently skipped.
    """
    args = expected.serialization_type
    hash_type = _HASH_TYPES.get(str(args.get("hash_type")))
    if hash_type is None:
        raise SignatureInvalid(f"unsupported hash type {args.get('hash_type')!r} in the manifest")
    ignore = [str(p) for p in args.get("ignore_paths", ())]
    allow_symlinks = bool(args.get("allow_symlinks", False))
    config = hashing.Config()  # type: ignore[no-untyped-call]
    if args.get("method") == "files":
        config.use_file_serialization(hashing_algorithm=hash_type, allow_symlinks=allow_symlinks)
    elif args.get("method") == "shards":
        config.use_shard_serialization(
            hashing_algorithm=hash_type,
            shard_size=int(args["shard_size"]),
            allow_symlinks=allow_symlinks,
        )
    else:
        raise SignatureInvalid(
            f"unsupported serialization {args.get('method')!r} in the signed manifest"
        )
    return config.set_ignored_paths(paths=ignore, ignore_git_paths=False).set_allow_symlinks(
        allow_symlinks
    )


def hash_model(config: hashing.Config, model_path: Path) -> manifest.Manifest:
    """Hash a model; unreadable entries and symlinks become refusals."""
    try:
        return config.hash(model_path)
    except (ValueError, OSError) as e:
        raise ArtifactMismatch(
            f"model at {model_path} cannot be hashed: {e}",
            mismatches=(),
            hint="symbolic links and special files are refused inside a signed model",
        ) from e


def file_digests(m: manifest.Manifest) -> tuple[FileDigest, ...]:
    return tuple(
        FileDigest(name=rd.identifier, algorithm=rd.digest.algorithm, digest=rd.digest.digest_hex)
        for rd in m.resource_descriptors()
    )


def root_digest(m: manifest.Manifest) -> str:
    """The in-toto subject digest: sha256 over the sorted resource digests."""
    h = hashlib.sha256()
    for rd in m.resource_descriptors():
        h.update(rd.digest.digest_value)
    return h.hexdigest()


def diff(expected: manifest.Manifest, actual: manifest.Manifest) -> tuple[Mismatch, ...]:
    """Every difference, by name: extra files, missing files, changed digests."""
    exp = {rd.identifier: rd.digest.digest_hex for rd in expected.resource_descriptors()}
    act = {rd.identifier: rd.digest.digest_hex for rd in actual.resource_descriptors()}
    out = [Mismatch(MismatchKind.EXTRA, n, actual=act[n]) for n in sorted(act.keys() - exp)]
    out += [Mismatch(MismatchKind.MISSING, n, expected=exp[n]) for n in sorted(exp.keys() - act)]
    out += [
        Mismatch(MismatchKind.DIGEST, n, expected=exp[n], actual=act[n])
        for n in sorted(exp.keys() & act)
        if exp[n] != act[n]
    ]
    return tuple(out)


def ignored_paths_of(m: manifest.Manifest) -> tuple[str, ...]:
    return tuple(sorted(str(p) for p in m.serialization_type.get("ignore_paths", ())))


__all__ = [
    "check_model_path",
    "diff",
    "file_digests",
    "hash_model",
    "ignored_paths_of",
    "relative_ignore_paths",
    "root_digest",
    "signing_config",
    "verifying_config",
]
