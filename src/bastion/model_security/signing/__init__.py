"""Model signing and verification on OpenSSF ``model_signing``.

The pipeline is model_signing's: hash every file -> manifest -> in-toto
statement -> DSSE envelope -> Sigstore bundle.  Bastion adds what a regulated
project needs around it:

========================  ====================================================
``sign.py``               :func:`sign_model` (project ECDSA key, in memory),
                          :func:`sign_model_keyless` (fails closed offline)
``verify.py``             :func:`verify_model`: signature, key status, signer
                          policy, then every file (extra / missing / digest)
``snapshot.py``           :func:`open_verified`: verify into a private copy and
                          load from it (TOCTOU defence); :func:`read_verified`
``policy.py``             :class:`SignerPolicy` and composable policies
``statements.py``         signed in-toto statements for evaluations, approvals,
                          gate verdicts
``keys.py``               PEM loading, fingerprints, in-memory upstream signer
``types.py``              the frozen values (``TrustedKey``, ``VerifiedModel`` …)
========================  ====================================================

Every verification failure raises :class:`~bastion.model_security.errors.SignatureInvalid`
(``SignerNotTrusted`` or ``ArtifactMismatch``).  Bundles are interchangeable
with the upstream CLI: ``model_signing verify key`` verifies a Bastion-signed
model, and :func:`verify_model` verifies one signed by ``model_signing sign key``.

Example::

    from bastion.model_security.signing import (
        Identity, SignerIdentity, TrustedKey, sign_model, verify_model,
    )

    signer = SignerIdentity("k1", "project:credit/signer:v2")
    bundle = sign_model(model_dir, priv_pem, signer=signer)
    verify_model(model_dir, bundle.bundle,
                 trusted_keys=[TrustedKey("k1", pub_pem, "project:credit/signer:v2")],
                 policy=Identity("project:credit/signer:v2"))
"""

from __future__ import annotations

from bastion.model_security.signing.keys import key_fingerprint
from bastion.model_security.signing.policy import (
    AllOf,
    AllowedIdentities,
    AnyOf,
    Identity,
    IdentityPrefix,
    KeyIds,
    SignerPolicy,
)
from bastion.model_security.signing.sign import OFFLINE_ENV, sign_model, sign_model_keyless
from bastion.model_security.signing.snapshot import VerifiedSnapshot, open_verified, read_verified
from bastion.model_security.signing.statements import (
    Statement,
    Subject,
    sign_statement,
    verify_statement,
)
from bastion.model_security.signing.types import (
    FileDigest,
    HashAlgorithm,
    KeyStatus,
    Mismatch,
    MismatchKind,
    Progress,
    ProgressFn,
    SignatureBundle,
    SignerIdentity,
    Stage,
    TrustedKey,
    VerifiedModel,
    VerifiedSigner,
)
from bastion.model_security.signing.verify import verify_bundle, verify_model

__all__ = [
    "OFFLINE_ENV",
    "AllOf",
    "AllowedIdentities",
    "AnyOf",
    "FileDigest",
    "HashAlgorithm",
    "Identity",
    "IdentityPrefix",
    "KeyIds",
    "KeyStatus",
    "Mismatch",
    "MismatchKind",
    "Progress",
    "ProgressFn",
    "SignatureBundle",
    "SignerIdentity",
    "SignerPolicy",
    "Stage",
    "Statement",
    "Subject",
    "TrustedKey",
    "VerifiedModel",
    "VerifiedSigner",
    "VerifiedSnapshot",
    "key_fingerprint",
    "open_verified",
    "read_verified",
    "sign_model",
    "sign_model_keyless",
    "sign_statement",
    "verify_bundle",
    "verify_model",
    "verify_statement",
]
