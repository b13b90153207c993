"""Storage ports: where bytes live, below encryption.

``ObjectBackend`` is the raw object store (a local folder now, an
S3-compatible bucket later).  It only ever sees ciphertext and internal
names; object names from users are never joined into paths.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import BinaryIO, NewType, Protocol

from bastion.core.errors import InputError

Digest = NewType("Digest", str)
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")


def as_digest(text: str) -> Digest:
    """Validate a hex SHA-256 digest (the only form of blob name we accept)."""
    value = text.strip().lower().removeprefix("sha256:")
    if not _DIGEST_RE.match(value):
        raise InputError(
            f"{text!r} is not a SHA-256 digest",
            hint="blob names are 64 lowercase hex characters, optionally prefixed 'sha256:'",
        )
    return Digest(value)


@dataclass(frozen=True)
class BlobInfo:
    digest: Digest
    size: int
    kek_version: int


class StagedObject(Protocol):
    """An object being written whose final name is known only at the end."""

    @property
    def stream(self) -> BinaryIO: ...

    def publish(self, name: str) -> None:
        """Make the bytes written so far durable and visible under ``name``."""
        ...


class ObjectBackend(Protocol):
    """Raw, atomic object storage for internal names (``objects/ab/<hex>.enc``)."""

    def writer(self, name: str) -> AbstractContextManager[BinaryIO]:
        """A writable stream published atomically under ``name`` when the block exits
        cleanly, and discarded without a trace when it raises."""
        ...

    def staged(self) -> AbstractContextManager[StagedObject]:
        """A staging area; unless ``publish`` is called the bytes vanish on exit."""
        ...

    def open(self, name: str) -> BinaryIO: ...

    def exists(self, name: str) -> bool: ...

    def delete(self, name: str) -> None: ...

    def list(self, prefix: str) -> Iterator[str]: ...

    def age_seconds(self, name: str) -> float:
        """Seconds since ``name`` was published (last modified)."""
        ...

    def cleanup_incomplete(self, *, remove: bool = True) -> int:
        """Remove (or with ``remove=False`` only count) leftovers of interrupted
        writes; return how many there were."""
        ...


__all__ = ["BlobInfo", "Digest", "ObjectBackend", "StagedObject", "as_digest"]
