"""Key material and bundles, bridged in memory to OpenSSF model_signing.

model_signing's key signer and verifier only take *paths* to PEM files; the
private key held by the keyring must never sit unencrypted on disk, so the two
small subclasses below take already-loaded key objects instead and reuse the
upstream ``sign`` / ``_verify_bundle`` code unchanged (same bundle bytes, same
DSSE PAE, same key hint).  ``tests/integration/.../test_signing_upstream_cli.py``
proves the round trip against the real ``model_signing`` CLI.

Example::

    fp = key_fingerprint(public_key_pem)     # the bundle's public-key hint
    bundle = parse_bundle(bundle_bytes)      # SignatureInvalid if garbage
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from model_signing._signing import sign_ec_key, sign_sigstore_pb
from sigstore_models.bundle import v1 as bundle_pb

from bastion.core.errors import InputError
from bastion.model_security.errors import SignatureInvalid, SignerNotTrusted
from bastion.model_security.signing.types import KeyStatus, TrustedKey, VerifiedSigner

_CURVES = ("secp256r1", "secp384r1", "secp521r1")


def load_private_key(pem: bytes, password: bytes | None = None) -> ec.EllipticCurvePrivateKey:
    """Load an EC private key (P-256/384/521) from PEM bytes; InputError otherwise."""
    try:
        key = serialization.load_pem_private_key(pem, password)
    except (ValueError, TypeError) as e:
        raise InputError(
            "the signing key is not a readable PEM private key",
            hint="pass the PKCS#8 PEM bytes of the project's ECDSA key (and its password)",
        ) from e
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in _CURVES:
        raise InputError(
            "the signing key must be an ECDSA key on P-256, P-384 or P-521",
            hint="model_signing bundles only support these curves",
        )
    return key


def load_public_key(pem: bytes, *, key_id: str = "") -> ec.EllipticCurvePublicKey:
    """Load an EC public key (SubjectPublicKeyInfo PEM); InputError otherwise."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as e:
        raise InputError(f"trusted key {key_id!r} is not a readable PEM public key") from e
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in _CURVES:
        raise InputError(f"trusted key {key_id!r} must be an ECDSA P-256/384/521 public key")
    return key


def key_fingerprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """sha256 hex of the SPKI PEM: the ``publicKey.hint`` model_signing writes."""
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(pem).hexdigest()


class InMemoryKeySigner(sign_ec_key.Signer):
    """model_signing's EC key signer, built from a key object instead of a path."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        # Deliberately not calling super().__init__: it reads the key from a path.
        self._private_key = private_key
        sign_ec_key._check_supported_ec_key(private_key.public_key())


class InMemoryKeyVerifier(sign_ec_key.Verifier):
    """model_signing's EC key verifier, built from a key object instead of a path."""

    def __init__(self, public_key: ec.EllipticCurvePublicKey) -> None:
        self._public_key = public_key
        sign_ec_key._check_supported_ec_key(public_key)

    def verify_envelope(self, bundle: bundle_pb.Bundle) -> tuple[str, bytes]:
        """Check the DSSE signature; return (payload type, payload bytes)."""
        payload_type, payload = self._verify_bundle(bundle)
        return payload_type, payload


def parse_bundle(data: bytes) -> sign_sigstore_pb.Signature:
    """Parse Sigstore bundle JSON the way ``sign_sigstore_pb.Signature.read`` does.

    Mirrors the upstream normalisation (old bundles without ``tlogEntries`` or
    ``hint``) but reads from bytes.  Any parse failure is a SignatureInvalid.
    """
    try:
        parsed = json.loads(data.decode("utf-8"))
        material = parsed["verificationMaterial"]
        material.setdefault("tlogEntries", [])
        if "publicKey" in material:
            material["publicKey"].setdefault("hint", None)
            for k in ("rawBytes", "keyDetails"):
                material["publicKey"].pop(k, None)
        bundle = bundle_pb.Bundle.from_dict(parsed)
    except Exception as e:  # any malformed input is a refusal, whatever the parser raised
        raise SignatureInvalid(
            "the signature bundle is not a valid Sigstore bundle (truncated or garbage)",
            hint="pass the bundle bytes exactly as sign_model or `model_signing sign` wrote them",
        ) from e
    if bundle.media_type != sign_sigstore_pb._BUNDLE_MEDIA_TYPE:
        raise SignatureInvalid(
            f"unsupported bundle media type {bundle.media_type!r}",
            hint="keyless (Fulcio/Rekor) bundles are not verifiable offline",
        )
    if bundle.dsse_envelope is None or not bundle.dsse_envelope.signatures:
        raise SignatureInvalid("the signature bundle carries no DSSE signature")
    return sign_sigstore_pb.Signature(bundle)


def bundle_key_hint(signature: sign_sigstore_pb.Signature) -> str | None:
    """The public-key hint recorded in a bundle (None for pre-1.0 bundles)."""
    material = signature.bundle.verification_material
    if material.public_key is None:
        return None
    hint = material.public_key.hint
    return str(hint) if hint else None


def check_trusted_keys(trusted_keys: Sequence[TrustedKey]) -> dict[str, TrustedKey]:
    """Index trusted keys by fingerprint; refuse duplicates (ambiguous trust)."""
    by_fp: dict[str, TrustedKey] = {}
    ids: set[str] = set()
    for tk in trusted_keys:
        fp = key_fingerprint(load_public_key(tk.public_key_pem, key_id=tk.key_id))
        if tk.key_id in ids or fp in by_fp:
            raise InputError(
                f"trusted key {tk.key_id!r} is listed twice (same id or same public key)",
                hint="each public key is bound to exactly one identity",
            )
        ids.add(tk.key_id)
        by_fp[fp] = tk
    return by_fp


def select_key(
    signature: sign_sigstore_pb.Signature, trusted_keys: Sequence[TrustedKey]
) -> tuple[TrustedKey, str]:
    """The trusted key whose fingerprint the bundle names (SignerNotTrusted if none)."""
    by_fp = check_trusted_keys(trusted_keys)
    hint = bundle_key_hint(signature)
    if hint is None:
        # Pre-1.0 bundles carry no hint: refuse rather than try every key,
        # so a signer is always named by the bundle itself.
        raise SignerNotTrusted(
            "the bundle does not name its signing key (pre-1.0 model_signing format)",
            hint="re-sign the model with model_signing >= 1.0 or Bastion",
        )
    if hint not in by_fp:
        raise SignerNotTrusted(
            f"the model was signed by an unknown key (fingerprint {hint[:16]}…)",
            hint="add the signer's public key to the project's trusted keys, if it is trusted",
        )
    return by_fp[hint], hint


def check_key_usable(key: TrustedKey, signed_at: datetime | None, now: datetime | None) -> None:
    """Apply revocation and rotation (``not_after``) to a key that signed something."""
    if key.status is KeyStatus.REVOKED:
        raise SignerNotTrusted(
            f"key {key.key_id!r} ({key.identity}) is revoked; its signatures are refused",
            hint="re-sign the artifact with the project's current key",
        )
    if key.not_after is None:
        return
    not_after = _aware(key.not_after)
    if signed_at is not None:
        if _aware(signed_at) > not_after:
            raise SignerNotTrusted(
                f"key {key.key_id!r} signed at {signed_at.isoformat()}, after its "
                f"signing life ended ({not_after.isoformat()})",
                hint="artifacts signed after a rotation must use the new key",
            )
        return
    current = _aware(now) if now is not None else datetime.now(UTC)
    if current > not_after:
        raise SignerNotTrusted(
            f"key {key.key_id!r} was rotated out on {not_after.isoformat()} and the "
            "signing time is unknown",
            hint="pass signed_at (the recorded signing time) to verify older artifacts",
        )


def verified_signer(key: TrustedKey, fingerprint: str) -> VerifiedSigner:
    return VerifiedSigner(key_id=key.key_id, identity=key.identity, key_fingerprint=fingerprint)


def _aware(t: datetime) -> datetime:
    # Naive datetimes are taken as UTC so comparisons never raise.
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


__all__ = [
    "InMemoryKeySigner",
    "InMemoryKeyVerifier",
    "bundle_key_hint",
    "check_key_usable",
    "check_trusted_keys",
    "key_fingerprint",
    "load_private_key",
    "load_public_key",
    "parse_bundle",
    "select_key",
    "verified_signer",
]
