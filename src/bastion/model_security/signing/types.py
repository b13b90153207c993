"""Value types of model signing: keys, identities, bundles and verified results.

Every value is a frozen dataclass with a ``to_dict()`` that returns JSON-safe
types, so the lead can store or return it as-is.

Example::

    key = TrustedKey(
        key_id="credit-2025",
        public_key_pem=pub_pem,
        identity="project:credit/signer:v2",
    )
    key.to_dict()["status"]  # "active"
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias


class KeyStatus(enum.Enum):
    """Whether a trusted key may still vouch for signatures.

    The values match ``bastion.core.crypto.KeyStatus`` for signing keys.
    """

    ACTIVE = "active"
    #: signs nothing new; still verifies what it signed before ``not_after``
    ROTATED = "rotated"
    #: verifies nothing, even mathematically valid signatures
    REVOKED = "revoked"


class HashAlgorithm(enum.Enum):
    """Per-file digest algorithms supported by OpenSSF model_signing.

    Use SHA256 (the default) for bundles the upstream CLI must verify:
    model_signing 1.1.1 cannot re-read the "blake2b" it records for BLAKE2.
    """

    SHA256 = "sha256"
    BLAKE2 = "blake2"
    BLAKE3 = "blake3"


class MismatchKind(enum.Enum):
    """How a model on disk differs from the manifest it was signed with."""

    EXTRA = "extra"  # a file on disk that the signature does not cover
    MISSING = "missing"  # a signed file that is not on disk
    DIGEST = "digest"  # a signed file whose bytes changed


class Stage(enum.Enum):
    """Stages reported to a progress callback."""

    HASHING = "hashing"
    SIGNING = "signing"
    VERIFYING = "verifying"
    COPYING = "copying"
    DONE = "done"


@dataclass(frozen=True)
class Progress:
    """A progress report; ``total_bytes`` is 0 when unknown."""

    stage: Stage
    done_bytes: int = 0
    total_bytes: int = 0
    item: str = ""


#: Callback receiving progress reports; the core never touches the terminal.
ProgressFn: TypeAlias = Callable[[Progress], None]


@dataclass(frozen=True)
class SignerIdentity:
    """Who signs: a key id of the project keyring and the identity it is bound to."""

    key_id: str
    identity: str  # e.g. "project:credit/signer:v2"

    def to_dict(self) -> dict[str, str]:
        return {"key_id": self.key_id, "identity": self.identity}


@dataclass(frozen=True)
class TrustedKey:
    """A public key the verifier trusts, bound to one signer identity.

    ``not_after`` ends the key's *signing* life (rotation): signatures whose
    recorded signing time is after it are refused, older ones still verify.
    ``status=REVOKED`` refuses every signature by the key.
    """

    key_id: str
    public_key_pem: bytes
    identity: str
    status: KeyStatus = KeyStatus.ACTIVE
    not_after: datetime | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "key_id": self.key_id,
            "public_key_pem": self.public_key_pem.decode("ascii", "replace"),
            "identity": self.identity,
            "status": self.status.value,
            "not_after": self.not_after.isoformat() if self.not_after else None,
        }


@dataclass(frozen=True)
class VerifiedSigner:
    """The signer a signature was proven to come from (the input to a policy)."""

    key_id: str
    identity: str
    key_fingerprint: str  # sha256 of the SPKI PEM, as model_signing's key hint

    def to_dict(self) -> dict[str, str]:
        return {
            "key_id": self.key_id,
            "identity": self.identity,
            "key_fingerprint": self.key_fingerprint,
        }


@dataclass(frozen=True)
class FileDigest:
    """One signed resource: a file (or ``file:start:end`` shard) and its digest."""

    name: str
    algorithm: str
    digest: str  # hex

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "algorithm": self.algorithm, "digest": self.digest}


@dataclass(frozen=True)
class Mismatch:
    """One difference between the signed manifest and the model on disk."""

    kind: MismatchKind
    name: str
    expected: str = ""
    actual: str = ""

    def describe(self) -> str:
        if self.kind is MismatchKind.EXTRA:
            return f"extra file not covered by the signature: {self.name}"
        if self.kind is MismatchKind.MISSING:
            return f"signed file missing: {self.name}"
        return f"digest mismatch for {self.name}: signed {self.expected}, found {self.actual}"

    def to_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind.value,
            "name": self.name,
            "expected": self.expected,
            "actual": self.actual,
        }


@dataclass(frozen=True)
class SignatureBundle:
    """A model signature: the Sigstore bundle JSON exactly as model_signing writes it.

    ``bundle`` is the artifact to store (and to pass to ``model_signing verify
    key --signature``); the other fields are convenience copies of what it says.
    """

    bundle: bytes
    signer: SignerIdentity
    key_fingerprint: str
    model_name: str
    root_digest: str  # sha256 over the resource digests (the in-toto subject)
    files: tuple[FileDigest, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "bundle": self.bundle.decode("utf-8"),
            "signer": self.signer.to_dict(),
            "key_fingerprint": self.key_fingerprint,
            "model_name": self.model_name,
            "root_digest": self.root_digest,
            "files": [f.to_dict() for f in self.files],
        }


@dataclass(frozen=True)
class VerifiedModel:
    """A model whose signature, signer and every file digest were verified."""

    model_name: str
    root_digest: str
    files: tuple[FileDigest, ...]
    signer: VerifiedSigner
    serialization: str  # "files" or "shards"
    ignored_paths: tuple[str, ...] = field(default=())

    def digest_of(self, name: str) -> str:
        """The verified digest of one whole-file resource (KeyError if absent)."""
        for f in self.files:
            if f.name == name:
                return f.digest
        raise KeyError(name)

    def to_dict(self) -> dict[str, object]:
        return {
            "model_name": self.model_name,
            "root_digest": self.root_digest,
            "files": [f.to_dict() for f in self.files],
            "signer": self.signer.to_dict(),
            "serialization": self.serialization,
            "ignored_paths": list(self.ignored_paths),
        }


__all__ = [
    "FileDigest",
    "HashAlgorithm",
    "KeyStatus",
    "Mismatch",
    "MismatchKind",
    "Progress",
    "ProgressFn",
    "SignatureBundle",
    "SignerIdentity",
    "Stage",
    "TrustedKey",
    "VerifiedModel",
    "VerifiedSigner",
]
