"""Ports of the audit log: where entries, the head and checkpoints are kept."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from bastion.core.audit.entries import AuditEntry, AuditQuery, AuditRecord, Checkpoint, Head

#: given the locked head and the records, return the sealed entries, the new
#: head and any checkpoints to store in the same transaction
Sealer = Callable[[Head, Sequence[AuditRecord]], tuple[list[AuditEntry], Head, list[Checkpoint]]]


class AuditRepository(Protocol):
    def append(self, records: Sequence[AuditRecord], sealer: Sealer) -> list[AuditEntry]:
        """Lock the head, seal, insert and move the head in ONE transaction."""
        ...

    def head(self) -> Head: ...

    def iter_entries(self, batch: int = 10_000) -> Iterator[AuditEntry]:
        """Every stored entry in ``seq`` order (as stored, tampered or not)."""
        ...

    def query(self, q: AuditQuery) -> list[AuditEntry]: ...

    def add_checkpoint(self, cp: Checkpoint) -> None: ...

    def checkpoints(self) -> list[Checkpoint]: ...


class CheckpointSigner(Protocol):
    @property
    def key_id(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...


class CheckpointVerifier(Protocol):
    def verify(self, key_id: str, signature: bytes, data: bytes) -> bool: ...


__all__ = ["AuditRepository", "CheckpointSigner", "CheckpointVerifier", "Sealer"]
