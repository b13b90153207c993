"""The key-management port.

A ``KeyManager`` wraps and unwraps per-object data keys under versioned
key-encryption keys (KEKs) and holds signing keys.  The local keyring
implements it; a KMS or Vault-transit adapter implements the same Protocol.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True)
class WrappedKey:
    """A data key encrypted under KEK ``kek_version`` of key manager ``kek_id``."""

    kek_id: str
    kek_version: int
    blob: bytes


class KeyStatus(enum.StrEnum):
    ACTIVE = "active"
    ROTATED = "rotated"  # still verifies what it signed; signs nothing new
    RETIRED = "retired"  # KEK only: no data key may be wrapped under it any more
    REVOKED = "revoked"  # signing key: signatures by it no longer verify


class KeyAlgorithm(enum.StrEnum):
    ED25519 = "ed25519"
    ECDSA_P256 = "ecdsa-p256"


@dataclass(frozen=True)
class SigningKeyInfo:
    key_id: str
    purpose: str
    algorithm: KeyAlgorithm
    status: KeyStatus
    public_pem: str
    created_at: str


@dataclass(frozen=True)
class KekInfo:
    version: int
    status: KeyStatus
    created_at: str


class KeyManager(Protocol):
    """Wraps data keys; the only component that ever sees a key-encryption key."""

    @property
    def kek_id(self) -> str: ...

    def active_kek_version(self) -> int: ...

    def wrap(self, data_key: bytes, context: bytes) -> WrappedKey: ...

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes: ...

    def kek_versions(self) -> list[KekInfo]: ...


class SigningKeys(Protocol):
    """Holds private signing keys; hands out public keys for verification."""

    def ed25519_key(self, purpose: str) -> tuple[str, Ed25519PrivateKey]: ...

    def ecdsa_key(self, purpose: str) -> tuple[str, EllipticCurvePrivateKey]: ...

    def signing_keys(self, purpose: str | None = None) -> list[SigningKeyInfo]: ...


__all__ = [
    "KekInfo",
    "KeyAlgorithm",
    "KeyManager",
    "KeyStatus",
    "SigningKeyInfo",
    "SigningKeys",
    "WrappedKey",
]
