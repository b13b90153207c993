"""Keyring-backed signers and verifiers for audit checkpoints and statements."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bastion.core.crypto.interface import KeyStatus, SigningKeys
from bastion.core.errors import KeyringDamaged


class KeyringSigner:
    """Signs with the active Ed25519 key for ``purpose`` (created on first use)."""

    def __init__(self, keys: SigningKeys, purpose: str) -> None:
        self._keys = keys
        self._purpose = purpose
        self._cached: tuple[str, Ed25519PrivateKey] | None = None

    def _key(self) -> tuple[str, Ed25519PrivateKey]:
        # Cached per process: a key rotated meanwhile by another process stays
        # valid for verification (rotated, not revoked), so this is safe.
        if self._cached is None:
            self._cached = self._keys.ed25519_key(self._purpose)
        return self._cached

    @property
    def key_id(self) -> str:
        return self._key()[0]

    def sign(self, data: bytes) -> bytes:
        return self._key()[1].sign(data)


class KeyringVerifier:
    """Verifies with any non-revoked Ed25519 key of ``purpose`` (rotated ones too)."""

    def __init__(self, keys: SigningKeys, purpose: str) -> None:
        self._keys = keys
        self._purpose = purpose

    def verify(self, key_id: str, signature: bytes, data: bytes) -> bool:
        for info in self._keys.signing_keys(self._purpose):
            if info.key_id != key_id or info.status == KeyStatus.REVOKED:
                continue
            try:
                public = serialization.load_pem_public_key(info.public_pem.encode())
            except ValueError as e:
                raise KeyringDamaged(
                    f"the public half of signing key {key_id} in the keyring is damaged",
                    hint="restore the keyring file from your backup",
                ) from e
            if not isinstance(public, Ed25519PublicKey):
                return False
            try:
                public.verify(signature, data)
                return True
            except InvalidSignature:
                return False
        return False


__all__ = ["KeyringSigner", "KeyringVerifier"]
