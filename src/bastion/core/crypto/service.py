"""Key management use cases: list, rotate and retire keys (all authorized)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bastion.core.audit.entries import Outcome
from bastion.core.crypto import ledger
from bastion.core.crypto.interface import KekInfo, KeyStatus, SigningKeyInfo
from bastion.core.crypto.keyring import LocalKeyring
from bastion.core.errors import Conflict

if TYPE_CHECKING:
    from bastion.core.access.service import AccessService
    from bastion.core.access.values import Actor
    from bastion.core.store.blobs import EncryptedBlobStore, Progress


@dataclass(frozen=True)
class RotationResult:
    new_version: int
    rewrapped: int


class KeyService:
    def __init__(
        self, access: AccessService, keyring: LocalKeyring, blobs: EncryptedBlobStore
    ) -> None:
        self._access = access
        self._keyring = keyring
        self._blobs = blobs

    def list(self, actor: Actor) -> tuple[list[KekInfo], list[SigningKeyInfo], dict[int, int]]:
        self._access.authorize(actor, "keys.read", "system/keys")
        return self._keyring.kek_versions(), self._keyring.signing_keys(), self._blobs.kek_usage()

    def rotate(self, actor: Actor, progress: Progress | None = None) -> RotationResult:
        """New KEK version; every data key is re-wrapped, no data re-encrypted."""
        self._access.authorize(actor, "keys.rotate", "system/keys")
        version = self._keyring.rotate_kek()
        count = self._blobs.rewrap(progress)
        self._access.record(
            actor,
            "keys.rotated",
            "system/keys",
            Outcome.OK,
            {"kek_version": version, "rewrapped": count},
        )
        return RotationResult(version, count)

    def retire(self, actor: Actor, version: int) -> None:
        self._access.authorize(actor, "keys.rotate", "system/keys")
        in_use = self._blobs.kek_usage().get(version, 0)
        if in_use:
            raise Conflict(
                f"KEK v{version} still wraps {in_use} data keys",
                hint="run `bastion keys rotate` first so they are re-wrapped",
            )
        self._keyring.retire_kek(version)
        self._access.record(
            actor, "keys.retired", "system/keys", Outcome.OK, {"kek_version": version}
        )

    def rotate_signing(self, actor: Actor, purpose: str) -> str:
        """New signing key for ``purpose``; the old one is retired (signs nothing
        more, verifies only what it signed before this entry on the audit log)."""
        self._access.authorize(actor, "keys.rotate", "system/keys")
        self._keyring.reload()
        old = [
            k.key_id for k in self._keyring.signing_keys(purpose) if k.status is KeyStatus.ACTIVE
        ]
        key_id = self._keyring.rotate_signing_key(purpose)
        self._access.record(
            actor,
            ledger.ROTATED,
            ledger.RESOURCE,
            Outcome.OK,
            {"key_id": key_id, "rotated": old, "purpose": purpose},
        )
        return key_id

    def revoke_signing(self, actor: Actor, key_id: str) -> None:
        """Revoke a signing key; the audit entry, not only the keyring, says so."""
        self._access.authorize(actor, "keys.rotate", "system/keys")
        self._keyring.revoke_signing_key(key_id)
        self._access.record(actor, ledger.REVOKED, ledger.RESOURCE, Outcome.OK, {"key_id": key_id})


__all__ = ["KeyService", "RotationResult"]
