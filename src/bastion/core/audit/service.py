"""Reading, verifying and anchoring the audit log on behalf of a principal.

Every method authorizes first (``audit.read``, ``audit.verify`` or
``audit.checkpoint``), so commands and routes never decide permissions
themselves, and each call is itself an audit entry.

Example::

    trail = AuditTrail(access, log, keyring)
    report, extends = trail.verify(actor, against=read_checkpoint_file(path))
"""

from __future__ import annotations

from collections.abc import Callable

from bastion.core.access.service import AccessService
from bastion.core.access.values import Actor
from bastion.core.audit.entries import AuditEntry, AuditQuery, Checkpoint
from bastion.core.audit.log import AuditLog, ConsistencyReport, VerifyReport
from bastion.core.crypto.interface import SigningKeys

_RESOURCE = "system/audit"


class AuditTrail:
    def __init__(self, access: AccessService, log: AuditLog, keys: SigningKeys) -> None:
        self._access = access
        self._log = log
        self._keys = keys

    def verify(
        self,
        actor: Actor,
        *,
        against: Checkpoint | None = None,
        on_start: Callable[[int], None] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[VerifyReport, ConsistencyReport | None]:
        """Re-check the whole log; with ``against``, prove it extends that checkpoint.

        ``on_start`` receives the number of entries about to be checked (for a
        progress bar), once the caller is authorized."""
        self._access.authorize(actor, "audit.verify", _RESOURCE)
        if on_start is not None:
            on_start(self._log.head().size)
        report = self._log.verify(progress=progress)
        extends = self._log.prove_extends(against) if against is not None else None
        return report, extends

    def query(self, actor: Actor, q: AuditQuery) -> list[AuditEntry]:
        self._access.authorize(actor, "audit.read", _RESOURCE)
        return self._log.query(q)

    def checkpoints(self, actor: Actor) -> list[Checkpoint]:
        self._access.authorize(actor, "audit.read", _RESOURCE)
        return self._log.checkpoints()

    def checkpoint(self, actor: Actor) -> tuple[Checkpoint, str | None]:
        """Sign a checkpoint now; returns it with the public key that verifies it."""
        self._access.authorize(actor, "audit.checkpoint", _RESOURCE)
        cp = self._log.checkpoint()
        public = next(
            (k.public_pem for k in self._keys.signing_keys("audit") if k.key_id == cp.key_id),
            None,
        )
        return cp, public

    def reseed_witness(self, actor: Actor, anchor: Checkpoint) -> Checkpoint:
        self._access.authorize(
            actor,
            "audit.checkpoint",
            _RESOURCE,
            details={"witness": "re-seed", "against": anchor.tree_size},
        )
        return self._log.reseed_witness(anchor)

    def inclusion_proof(
        self, actor: Actor, seq: int, tree_size: int | None = None
    ) -> tuple[int, list[str]]:
        self._access.authorize(actor, "audit.read", _RESOURCE)
        size = tree_size or self._log.head().size
        return size, self._log.inclusion_proof(seq, size)

    def consistency_proof(self, actor: Actor, old_size: int, new_size: int) -> list[str]:
        self._access.authorize(actor, "audit.read", _RESOURCE)
        return self._log.consistency_proof(old_size, new_size)


__all__ = ["AuditTrail"]
