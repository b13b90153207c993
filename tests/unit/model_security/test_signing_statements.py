"""Signed in-toto statements, signer policies and the keyless fail-closed path."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec

from bastion.core.errors import InputError
from bastion.model_security.errors import SignatureInvalid, SignerNotTrusted, SigningUnavailable
from bastion.model_security.signing import (
    AllOf,
    AllowedIdentities,
    AnyOf,
    Identity,
    IdentityPrefix,
    KeyIds,
    KeyStatus,
    SignerIdentity,
    TrustedKey,
    VerifiedSigner,
    sign_model,
    sign_model_keyless,
    sign_statement,
    verify_statement,
)

ID = "project:credit/gate:v1"
EVAL = "https://bastion.dev/evaluation/v1"
DIGEST = "ab" * 32


def _keypair() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP384R1())
    priv = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
    pub = key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    return priv, pub


@pytest.fixture
def keys() -> tuple[bytes, bytes]:
    return _keypair()


def test_statement_round_trip_keeps_exact_values(keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    predicate = {"auc": 0.91, "n": 3, "passed": True, "notes": None, "groups": ["a", "b"]}
    env = sign_statement(EVAL, predicate, [("credit-v3", DIGEST)], priv)
    st = verify_statement(env, [TrustedKey("g1", pub, ID)], Identity(ID), predicate_type=EVAL)
    assert st.predicate == predicate and isinstance(st.predicate["n"], int)
    assert [(s.name, s.sha256) for s in st.subjects] == [("credit-v3", DIGEST)]
    assert st.signer.identity == ID and len(st.payload_sha256) == 64
    json.dumps(st.to_dict())


def test_tampered_statement_payload_is_refused(keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    doc = json.loads(sign_statement(EVAL, {"passed": False}, [("m", DIGEST)], priv))
    payload = base64.b64decode(doc["dsseEnvelope"]["payload"]).replace(b"false", b"true")
    doc["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_statement(json.dumps(doc).encode(), [TrustedKey("g1", pub, ID)], Identity(ID))


def test_statement_type_confusion_is_refused(keys: tuple[bytes, bytes], tmp_path: Path) -> None:
    # A model signature must not pass as an approval, nor one predicate as another.
    priv, pub = keys
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w").write_bytes(b"w")
    model_bundle = sign_model(tmp_path / "m", priv, signer=SignerIdentity("g1", ID)).bundle
    trusted = [TrustedKey("g1", pub, ID)]
    with pytest.raises(SignatureInvalid, match="expected"):
        verify_statement(model_bundle, trusted, Identity(ID), predicate_type=EVAL)
    approval = sign_statement("https://bastion.dev/approval/v1", {}, [("m", DIGEST)], priv)
    with pytest.raises(SignatureInvalid, match="expected"):
        verify_statement(approval, trusted, Identity(ID), predicate_type=EVAL)


def test_revoked_key_statement_is_refused(keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    env = sign_statement(EVAL, {}, [("m", DIGEST)], priv)
    with pytest.raises(SignerNotTrusted, match="revoked"):
        verify_statement(env, [TrustedKey("g1", pub, ID, status=KeyStatus.REVOKED)], Identity(ID))


def test_statement_by_other_project_identity_is_refused(keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    env = sign_statement(EVAL, {}, [("m", DIGEST)], priv)
    with pytest.raises(SignerNotTrusted):
        verify_statement(
            env, [TrustedKey("g1", pub, "project:other/gate:v1")], IdentityPrefix("project:credit/")
        )


def test_garbage_statement_is_refused(keys: tuple[bytes, bytes]) -> None:
    for junk in (b"", b"{", b'{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}'):
        with pytest.raises(SignatureInvalid):
            verify_statement(junk, [TrustedKey("g1", keys[1], ID)], Identity(ID))


def test_statement_input_errors(keys: tuple[bytes, bytes]) -> None:
    with pytest.raises(InputError):
        sign_statement(EVAL, {}, [], keys[0])
    with pytest.raises(InputError):
        sign_statement(EVAL, {}, [("m", "not-hex")], keys[0])
    with pytest.raises(InputError):
        sign_statement(EVAL, {"x": float("nan")}, [("m", DIGEST)], keys[0])


def _signer(identity: str, key_id: str = "k") -> VerifiedSigner:
    return VerifiedSigner(key_id=key_id, identity=identity, key_fingerprint="f")


def test_policies_compose() -> None:
    allowed = AnyOf(Identity("project:credit/a:v1"), IdentityPrefix("project:credit/bots:"))
    allowed.check(_signer("project:credit/a:v1"))
    allowed.check(_signer("project:credit/bots:release"))
    with pytest.raises(SignerNotTrusted, match="none of"):
        allowed.check(_signer("project:credit/b:v1"))
    pinned = AllOf(AllowedIdentities.of(["project:credit/a:v1"]), KeyIds(frozenset({"k2"})))
    with pytest.raises(SignerNotTrusted, match="pinned"):
        pinned.check(_signer("project:credit/a:v1", key_id="k1"))
    pinned.check(_signer("project:credit/a:v1", key_id="k2"))
    assert "any of" in allowed.describe()


def test_policies_that_would_trust_everyone_are_rejected() -> None:
    for bad in (lambda: AnyOf(), lambda: AllOf(), lambda: IdentityPrefix("")):
        with pytest.raises(InputError):
            bad()
    with pytest.raises(InputError):
        IdentityPrefix("project:")  # every project
    with pytest.raises(InputError):
        AllowedIdentities.of([])


def test_keyless_signing_fails_closed_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w").write_bytes(b"w")
    monkeypatch.setenv("BASTION_OFFLINE", "1")
    with pytest.raises(SigningUnavailable, match="needs network access to Fulcio/Rekor"):
        sign_model_keyless(tmp_path / "m")
    monkeypatch.delenv("BASTION_OFFLINE")
    with pytest.raises(SigningUnavailable, match="use key-based signing"):
        sign_model_keyless(tmp_path / "m", reachable=lambda: False)
