"""Signed in-toto v1 statements: evaluation results, approvals, gate verdicts.

A statement says something (``predicate``) about exact artifacts
(``subjects``: name + sha256).  It is serialised with RFC 8785 canonical JSON,
wrapped in a DSSE envelope signed with ECDSA over the DSSE PAE encoding
(``cryptography``; PAE from model_signing), and carried in the same Sigstore
bundle v0.3 layout model_signing uses for models, so one key format and one
verifier serve both.  A model signature is *not* accepted where a statement of
another type is expected: pass ``predicate_type`` to :func:`verify_statement`.

Example::

    env = sign_statement(
        "https://bastion.dev/evaluation/v1",
        {"auc": 0.91, "passed": True},
        [("credit-v3", verified.root_digest)],
        private_pem,
    )
    st = verify_statement(env, trusted_keys, policy,
                          predicate_type="https://bastion.dev/evaluation/v1")
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, cast

from cryptography.hazmat.primitives.asymmetric import ec
from model_signing._signing import sign_ec_key, sign_sigstore_pb
from sigstore_models import intoto as intoto_pb
from sigstore_models.bundle import v1 as bundle_pb

from bastion.core.canonical import JSON, canonical_json
from bastion.core.errors import InputError
from bastion.model_security.errors import SignatureInvalid
from bastion.model_security.signing.keys import (
    InMemoryKeySigner,
    InMemoryKeyVerifier,
    check_key_usable,
    load_private_key,
    load_public_key,
    parse_bundle,
    select_key,
    verified_signer,
)
from bastion.model_security.signing.policy import SignerPolicy, apply_policy
from bastion.model_security.signing.types import TrustedKey, VerifiedSigner

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# == model_signing's sign_sigstore_pb._BUNDLE_MEDIA_TYPE (checked by parse_bundle)
_BUNDLE_MEDIA_TYPE: Final = "application/vnd.dev.sigstore.bundle.v0.3+json"


@dataclass(frozen=True)
class Subject:
    """An artifact a statement speaks of: a name and its sha256 (hex)."""

    name: str
    sha256: str

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "digest": {"sha256": self.sha256}}


@dataclass(frozen=True)
class Statement:
    """A verified in-toto statement and who signed it."""

    predicate_type: str
    predicate: Mapping[str, JSON]
    subjects: tuple[Subject, ...]
    signer: VerifiedSigner
    payload_sha256: str  # digest of the signed payload: a stable id for the statement

    def to_dict(self) -> dict[str, object]:
        return {
            "predicate_type": self.predicate_type,
            "predicate": dict(self.predicate),
            "subjects": [s.to_dict() for s in self.subjects],
            "signer": self.signer.to_dict(),
            "payload_sha256": self.payload_sha256,
        }


def sign_statement(
    predicate_type: str,
    predicate: Mapping[str, JSON],
    subjects: Sequence[tuple[str, str]],
    private_key_pem: bytes,
    *,
    password: bytes | None = None,
) -> bytes:
    """Sign an in-toto v1 statement; return the Sigstore bundle (DSSE) JSON bytes."""
    if not predicate_type.strip():
        raise InputError("predicate_type must be a non-empty URI")
    subs = [_subject(name, digest) for name, digest in subjects]
    if not subs:
        raise InputError("a statement needs at least one subject (name, sha256)")
    statement: dict[str, JSON] = {
        "_type": STATEMENT_TYPE,
        "subject": [cast(JSON, s.to_dict()) for s in subs],
        "predicateType": predicate_type,
        "predicate": dict(predicate),
    }
    payload = canonical_json(statement)
    key = load_private_key(private_key_pem, password)
    raw = key.sign(
        sign_sigstore_pb.pae(payload), ec.ECDSA(sign_ec_key.get_ec_key_hash(key.public_key()))
    )
    # Same construction as model_signing's key signer, with our canonical payload.
    envelope = intoto_pb.Envelope(
        payload=base64.b64encode(payload),
        payload_type=PAYLOAD_TYPE,
        signatures=[intoto_pb.Signature(sig=base64.b64encode(raw), keyid="")],
    )
    bundle = bundle_pb.Bundle(
        media_type=_BUNDLE_MEDIA_TYPE,
        verification_material=InMemoryKeySigner(key)._get_verification_material(),
        dsse_envelope=envelope,
    )
    return bundle.to_json().encode("utf-8")


def verify_statement(
    envelope_bytes: bytes,
    trusted_keys: Sequence[TrustedKey],
    policy: SignerPolicy,
    *,
    predicate_type: str | None = None,
    signed_at: datetime | None = None,
    now: datetime | None = None,
) -> Statement:
    """Verify a signed statement's signature, signer and shape; return its content."""
    signature = parse_bundle(envelope_bytes)
    key, fingerprint = select_key(signature, trusted_keys)
    check_key_usable(key, signed_at, now)
    verifier = InMemoryKeyVerifier(load_public_key(key.public_key_pem, key_id=key.key_id))
    try:
        payload_type, payload = verifier.verify_envelope(signature.bundle)
    except Exception as e:  # InvalidSignature and friends: all refusals
        raise SignatureInvalid(
            f"the statement's signature does not verify with key {key.key_id!r}",
            hint="the envelope was altered or was not made by this key",
        ) from e
    signer = verified_signer(key, fingerprint)
    apply_policy(policy, signer)
    if payload_type != PAYLOAD_TYPE:
        raise SignatureInvalid(f"unexpected DSSE payload type {payload_type!r}")
    statement = _parse_statement(payload, signer)
    if predicate_type is not None and statement.predicate_type != predicate_type:
        raise SignatureInvalid(
            f"statement is a {statement.predicate_type!r}, expected {predicate_type!r}",
            hint="a signed statement of one kind never stands in for another",
        )
    return statement


def _subject(name: str, digest: str) -> Subject:
    if not name or not _SHA256.match(digest):
        raise InputError(
            f"subject ({name!r}, {digest!r}) needs a name and a lowercase hex sha256",
        )
    return Subject(name, digest)


def _parse_statement(payload: bytes, signer: VerifiedSigner) -> Statement:
    try:
        doc = json.loads(payload)
        if doc["_type"] != STATEMENT_TYPE:
            raise ValueError(f"_type is {doc['_type']!r}")
        subjects = tuple(
            Subject(str(s["name"]), str(s["digest"]["sha256"])) for s in doc["subject"]
        )
        ptype, predicate = doc["predicateType"], doc["predicate"]
        if not isinstance(ptype, str) or not isinstance(predicate, dict) or not subjects:
            raise ValueError("predicateType, predicate or subject malformed")
    except (ValueError, KeyError, TypeError) as e:
        raise SignatureInvalid(f"the signed payload is not an in-toto v1 statement: {e}") from e
    return Statement(
        predicate_type=ptype,
        predicate=predicate,
        subjects=subjects,
        signer=signer,
        payload_sha256=hashlib.sha256(payload).hexdigest(),
    )


__all__ = ["STATEMENT_TYPE", "Statement", "Subject", "sign_statement", "verify_statement"]
