"""Verifying signed models: signature, signer policy, then every file digest.

Order matters: the bundle is parsed and its signature checked against a
*trusted* key first, the key's status and the project policy next, and only
then is the model hashed and compared file by file with the signed manifest.
Every failure is a :class:`SignatureInvalid` (``SignerNotTrusted`` or
``ArtifactMismatch`` naming each extra / missing / changed file); errors of
the underlying library are wrapped, never leaked as ``ValueError``.

Example::

    verified = verify_model(
        Path("models/credit-v3"),
        bundle_bytes,
        trusted_keys=[TrustedKey("credit-2025", pub_pem, "project:credit/signer:v2")],
        policy=Identity("project:credit/signer:v2"),
    )
    verified.root_digest
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from model_signing import manifest

from bastion.model_security.errors import ArtifactMismatch, SignatureInvalid
from bastion.model_security.signing import _manifest
from bastion.model_security.signing.keys import (
    InMemoryKeyVerifier,
    check_key_usable,
    load_public_key,
    parse_bundle,
    select_key,
    verified_signer,
)
from bastion.model_security.signing.policy import SignerPolicy, apply_policy
from bastion.model_security.signing.types import (
    Progress,
    ProgressFn,
    Stage,
    TrustedKey,
    VerifiedModel,
    VerifiedSigner,
)


def verify_bundle(
    bundle_bytes: bytes,
    *,
    trusted_keys: Sequence[TrustedKey],
    policy: SignerPolicy,
    signed_at: datetime | None = None,
    now: datetime | None = None,
) -> tuple[manifest.Manifest, VerifiedSigner]:
    """Check a model bundle's signature, key status and policy; return its manifest.

    Does not look at the model files: use :func:`verify_model` for that.
    """
    signature = parse_bundle(bundle_bytes)
    key, fingerprint = select_key(signature, trusted_keys)
    check_key_usable(key, signed_at, now)
    verifier = InMemoryKeyVerifier(load_public_key(key.public_key_pem, key_id=key.key_id))
    try:
        expected = verifier.verify(signature)
    except Exception as e:  # InvalidSignature, ValueError, KeyError from a forged payload
        raise SignatureInvalid(
            f"the bundle's signature does not verify with key {key.key_id!r}: "
            f"{type(e).__name__}: {e}",
            hint="the bundle was altered or was not made by this key",
        ) from e
    signer = verified_signer(key, fingerprint)
    apply_policy(policy, signer)
    return expected, signer


def verify_model(
    model_path: Path,
    bundle_bytes: bytes,
    *,
    trusted_keys: Sequence[TrustedKey],
    policy: SignerPolicy,
    signed_at: datetime | None = None,
    now: datetime | None = None,
    progress: ProgressFn | None = None,
) -> VerifiedModel:
    """Verify ``model_path`` against a bundle made by Bastion or ``model_signing sign key``.

    ``signed_at`` is the recorded signing time (the bundle has no trusted
    timestamp); it is needed for a key rotated out before ``now``.  Files on
    disk must match the signed manifest exactly: an added, removed, renamed
    or changed file is refused.  Only the ignore paths recorded *in the signed
    manifest* are skipped.
    """
    path = _manifest.check_model_path(model_path)
    if progress is not None:
        progress(Progress(Stage.VERIFYING))
    expected, signer = verify_bundle(
        bundle_bytes, trusted_keys=trusted_keys, policy=policy, signed_at=signed_at, now=now
    )
    if progress is not None:
        progress(Progress(Stage.HASHING))
    actual = _manifest.hash_model(_manifest.verifying_config(expected), path)
    check_same(expected, actual, path)
    if progress is not None:
        progress(Progress(Stage.DONE))
    return verified_model(expected, signer)


def check_same(expected: manifest.Manifest, actual: manifest.Manifest, where: Path) -> None:
    """Refuse with every mismatch named when ``actual`` differs from ``expected``."""
    mismatches = _manifest.diff(expected, actual)
    if mismatches:
        raise ArtifactMismatch(
            f"model at {where} does not match its signature ({len(mismatches)} difference(s))",
            mismatches=mismatches,
            hint="the artifact was modified, or the bundle belongs to another model",
        )


def verified_model(expected: manifest.Manifest, signer: VerifiedSigner) -> VerifiedModel:
    return VerifiedModel(
        model_name=expected.model_name,
        root_digest=_manifest.root_digest(expected),
        files=_manifest.file_digests(expected),
        signer=signer,
        serialization=str(expected.serialization_type.get("method", "")),
        ignored_paths=_manifest.ignored_paths_of(expected),
    )


__all__ = ["check_same", "verified_model", "verify_bundle", "verify_model"]
