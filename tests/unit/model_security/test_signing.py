"""Key-based model signing: round trip and every attack on the artifact or signer."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec

from bastion.core.errors import BastionError, InputError, VerificationFailed
from bastion.model_security.errors import ArtifactMismatch, SignatureInvalid, SignerNotTrusted
from bastion.model_security.signing import (
    AllowedIdentities,
    HashAlgorithm,
    Identity,
    KeyStatus,
    MismatchKind,
    SignerIdentity,
    Stage,
    TrustedKey,
    sign_model,
    verify_model,
)

ID_V1 = "project:credit/signer:v1"
ID_V2 = "project:credit/signer:v2"


def _keypair() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    priv = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
    pub = key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    return priv, pub


def _model(root: Path, name: str = "credit-v1", seed: int = 0) -> Path:
    model = root / name
    (model / "tokenizer").mkdir(parents=True)
    (model / "weights.bin").write_bytes(bytes((i * 7 + seed) % 256 for i in range(50_000)))
    (model / "config.json").write_text(json.dumps({"layers": 3, "seed": seed}))
    (model / "tokenizer" / "vocab.txt").write_text("a\nb\nc\n")
    return model


@pytest.fixture
def keys() -> tuple[bytes, bytes]:
    return _keypair()


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return _model(tmp_path)


def _sign(model: Path, priv: bytes, identity: str = ID_V1, **kw: object) -> bytes:
    return sign_model(model, priv, signer=SignerIdentity("k1", identity), **kw).bundle  # type: ignore[arg-type]


def _verify(model: Path, bundle: bytes, pub: bytes, **kw: object) -> object:
    trusted = [TrustedKey("k1", pub, ID_V1)]
    return verify_model(model, bundle, trusted_keys=trusted, policy=Identity(ID_V1), **kw)  # type: ignore[arg-type]


def test_round_trip_returns_verified_digests(model: Path, keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    stages: list[Stage] = []
    signed = sign_model(
        model, priv, signer=SignerIdentity("k1", ID_V1), progress=lambda p: stages.append(p.stage)
    )
    verified = verify_model(
        model, signed.bundle, trusted_keys=[TrustedKey("k1", pub, ID_V1)], policy=Identity(ID_V1)
    )
    assert {f.name for f in verified.files} == {"config.json", "weights.bin", "tokenizer/vocab.txt"}
    assert verified.root_digest == signed.root_digest
    assert verified.signer.identity == ID_V1 and verified.signer.key_id == "k1"
    assert verified.files == signed.files
    assert stages[-1] is Stage.DONE
    json.dumps(verified.to_dict())
    json.dumps(signed.to_dict())


def test_bundle_is_upstream_sigstore_v03_dsse(model: Path, keys: tuple[bytes, bytes]) -> None:
    doc = json.loads(_sign(model, keys[0]))
    assert doc["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    assert statement["predicateType"] == "https://model_signing/signature/v1.0"
    assert doc["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"


def test_sharded_blake2_round_trip(model: Path, keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    bundle = _sign(model, priv, algorithm=HashAlgorithm.BLAKE2, shard_size=4096)
    verified = _verify(model, bundle, pub)
    assert verified.serialization == "shards"  # type: ignore[attr-defined]
    (model / "weights.bin").write_bytes(b"\xff" + (model / "weights.bin").read_bytes()[1:])
    with pytest.raises(ArtifactMismatch):
        _verify(model, bundle, pub)


def test_single_byte_tamper_is_refused(model: Path, keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    bundle = _sign(model, priv)
    data = bytearray((model / "weights.bin").read_bytes())
    data[1234] ^= 0x01
    (model / "weights.bin").write_bytes(bytes(data))
    with pytest.raises(ArtifactMismatch) as e:
        _verify(model, bundle, pub)
    assert [(m.kind, m.name) for m in e.value.mismatches] == [(MismatchKind.DIGEST, "weights.bin")]
    assert "weights.bin" in e.value.diagnostics()


def test_extra_file_injection_is_refused(model: Path, keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    bundle = _sign(model, priv)
    (model / "tokenizer" / "__init__.py").write_text("import os; os.system('id')")
    with pytest.raises(ArtifactMismatch) as e:
        _verify(model, bundle, pub)
    assert [(m.kind, m.name) for m in e.value.mismatches] == [
        (MismatchKind.EXTRA, "tokenizer/__init__.py")
    ]


def test_git_folder_injection_is_refused(model: Path, keys: tuple[bytes, bytes]) -> None:
    # Bastion signs strictly: unlike the upstream default, .git is not skipped.
    priv, pub = keys
    bundle = _sign(model, priv)
    (model / ".git").mkdir()
    (model / ".git" / "hooks").write_text("payload")
    with pytest.raises(ArtifactMismatch, match="1 difference"):
        _verify(model, bundle, pub)


def test_missing_file_is_refused(model: Path, keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    bundle = _sign(model, priv)
    (model / "config.json").unlink()
    with pytest.raises(ArtifactMismatch) as e:
        _verify(model, bundle, pub)
    assert [(m.kind, m.name) for m in e.value.mismatches] == [(MismatchKind.MISSING, "config.json")]


def test_renamed_file_is_refused(model: Path, keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    bundle = _sign(model, priv)
    (model / "config.json").rename(model / "config.old.json")
    with pytest.raises(ArtifactMismatch) as e:
        _verify(model, bundle, pub)
    kinds = {(m.kind, m.name) for m in e.value.mismatches}
    assert kinds == {(MismatchKind.EXTRA, "config.old.json"), (MismatchKind.MISSING, "config.json")}


def test_symlink_injection_is_refused(model: Path, keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    bundle = _sign(model, priv)
    (model / "weights.bin").unlink()
    os.symlink("/etc/hostname", model / "weights.bin")
    with pytest.raises(SignatureInvalid):
        _verify(model, bundle, pub)


def test_bundle_swap_from_another_model_is_refused(
    tmp_path: Path, model: Path, keys: tuple[bytes, bytes]
) -> None:
    priv, pub = keys
    other = _model(tmp_path, "credit-v2-poisoned", seed=1)
    bundle_of_model = _sign(model, priv)
    with pytest.raises(ArtifactMismatch) as e:
        _verify(other, bundle_of_model, pub)
    assert {m.kind for m in e.value.mismatches} == {MismatchKind.DIGEST}


@pytest.mark.parametrize(
    "garbage",
    [b"", b"not json", b"{}", b'{"mediaType": "x"}', b"\xff\xfe", b"[1,2,3]"],
)
def test_garbage_bundle_is_refused(model: Path, keys: tuple[bytes, bytes], garbage: bytes) -> None:
    with pytest.raises(SignatureInvalid):
        _verify(model, garbage, keys[1])


def test_truncated_bundle_is_refused(model: Path, keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    bundle = _sign(model, priv)
    for cut in (10, len(bundle) // 2, len(bundle) - 2):
        with pytest.raises(SignatureInvalid):
            _verify(model, bundle[:cut], pub)


def test_forged_manifest_in_bundle_is_refused(model: Path, keys: tuple[bytes, bytes]) -> None:
    # The attacker re-hashes a tampered model and splices the new manifest in.
    priv, pub = keys
    bundle = json.loads(_sign(model, priv))
    (model / "weights.bin").write_bytes(b"backdoored")
    attacker_priv, _ = _keypair()
    forged = json.loads(_sign(model, attacker_priv))
    bundle["dsseEnvelope"]["payload"] = forged["dsseEnvelope"]["payload"]
    with pytest.raises(SignatureInvalid, match="does not verify") as e:
        _verify(model, json.dumps(bundle).encode(), pub)
    assert not isinstance(e.value, ArtifactMismatch)


def test_unknown_key_signature_is_refused(model: Path, keys: tuple[bytes, bytes]) -> None:
    attacker_priv, _ = _keypair()
    bundle = _sign(model, attacker_priv)
    with pytest.raises(SignerNotTrusted, match="unknown key"):
        _verify(model, bundle, keys[1])


def test_revoked_key_signature_is_refused(model: Path, keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    bundle = _sign(model, priv)
    revoked = TrustedKey("k1", pub, ID_V1, status=KeyStatus.REVOKED)
    with pytest.raises(SignerNotTrusted, match="revoked"):
        verify_model(model, bundle, trusted_keys=[revoked], policy=Identity(ID_V1))


def test_identity_not_allowed_for_project_is_refused(
    model: Path, keys: tuple[bytes, bytes]
) -> None:
    # A perfectly valid key of another project must not vouch for this one.
    priv, pub = keys
    bundle = _sign(model, priv)
    other_project = TrustedKey("k1", pub, "project:marketing/signer:v1")
    with pytest.raises(SignerNotTrusted, match="not allowed"):
        verify_model(model, bundle, trusted_keys=[other_project], policy=Identity(ID_V1))


def test_rotated_key_still_verifies_old_versions(tmp_path: Path) -> None:
    old_priv, old_pub = _keypair()
    new_priv, new_pub = _keypair()
    rotation = datetime(2025, 6, 1, tzinfo=UTC)
    trusted = [
        TrustedKey("k1", old_pub, ID_V1, status=KeyStatus.ROTATED, not_after=rotation),
        TrustedKey("k2", new_pub, ID_V2),
    ]
    policy = AllowedIdentities.of([ID_V1, ID_V2])
    v1 = _model(tmp_path, "v1")
    v2 = _model(tmp_path, "v2", seed=2)
    old_bundle = sign_model(v1, old_priv, signer=SignerIdentity("k1", ID_V1)).bundle
    new_bundle = sign_model(v2, new_priv, signer=SignerIdentity("k2", ID_V2)).bundle
    before = rotation - timedelta(days=30)
    assert (
        verify_model(
            v1, old_bundle, trusted_keys=trusted, policy=policy, signed_at=before
        ).signer.key_id
        == "k1"
    )
    assert verify_model(v2, new_bundle, trusted_keys=trusted, policy=policy).signer.key_id == "k2"


def test_signature_by_rotated_key_after_rotation_is_refused(model: Path) -> None:
    priv, pub = _keypair()
    rotation = datetime(2025, 6, 1, tzinfo=UTC)
    rotated = TrustedKey("k1", pub, ID_V1, status=KeyStatus.ROTATED, not_after=rotation)
    bundle = _sign(model, priv)
    with pytest.raises(SignerNotTrusted, match="after its signing life"):
        verify_model(
            model,
            bundle,
            trusted_keys=[rotated],
            policy=Identity(ID_V1),
            signed_at=rotation + timedelta(seconds=1),
        )
    # Unknown signing time past the rotation: fail closed.
    with pytest.raises(SignerNotTrusted, match="signing time is unknown"):
        verify_model(model, bundle, trusted_keys=[rotated], policy=Identity(ID_V1))


def test_ignore_paths_are_signed_and_skipped(model: Path, keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    (model / "README.md").write_text("docs")
    bundle = _sign(model, priv, ignore_paths=("README.md",))
    (model / "README.md").write_text("edited docs")
    verified = _verify(model, bundle, pub)
    assert verified.ignored_paths == ("README.md",)  # type: ignore[attr-defined]


def test_bad_inputs_are_input_errors(
    model: Path, keys: tuple[bytes, bytes], tmp_path: Path
) -> None:
    priv, pub = keys
    with pytest.raises(InputError):
        sign_model(model, b"not a key", signer=SignerIdentity("k1", ID_V1))
    with pytest.raises(InputError):
        sign_model(tmp_path / "absent", priv, signer=SignerIdentity("k1", ID_V1))
    with pytest.raises(InputError):
        sign_model(model, priv, signer=SignerIdentity("k1", ID_V1), ignore_paths=("../x",))
    with pytest.raises(InputError):
        sign_model(model, priv, signer=SignerIdentity("", ID_V1))
    with pytest.raises(InputError, match="listed twice"):
        verify_model(
            model,
            _sign(model, priv),
            trusted_keys=[TrustedKey("a", pub, ID_V1), TrustedKey("b", pub, ID_V2)],
            policy=Identity(ID_V1),
        )


def test_every_refusal_is_a_verification_failed_not_value_error(
    model: Path, keys: tuple[bytes, bytes]
) -> None:
    priv, pub = keys
    bundle = _sign(model, priv)
    (model / "config.json").write_text("{}")
    with pytest.raises(BastionError) as e:
        _verify(model, bundle, pub)
    assert isinstance(e.value, VerificationFailed) and not isinstance(e.value, ValueError)


def test_library_errors_are_wrapped_with_cause(model: Path, keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    doc = json.loads(_sign(model, priv))
    doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(b"\x30\x06" + b"\0" * 6).decode()
    with pytest.raises(SignatureInvalid) as e:
        _verify(model, json.dumps(doc).encode(), pub)
    assert e.value.__cause__ is not None
