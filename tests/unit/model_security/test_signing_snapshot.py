"""Verify-then-load: the TOCTOU defences of open_verified / read_verified."""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec

from bastion.core.errors import InputError
from bastion.model_security.errors import ArtifactMismatch, SignerNotTrusted
from bastion.model_security.signing import (
    Identity,
    KeyStatus,
    MismatchKind,
    SignerIdentity,
    Stage,
    TrustedKey,
    open_verified,
    read_verified,
    sign_model,
    verify_model,
)

ID = "project:credit/signer:v1"


@pytest.fixture
def keys() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    priv = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
    pub = key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    return priv, pub


@pytest.fixture
def model(tmp_path: Path) -> Path:
    m = tmp_path / "credit"
    (m / "sub").mkdir(parents=True)
    (m / "model.pkl").write_bytes(pickle.dumps({"coef": [0.1, 0.2, 0.3]}))
    (m / "weights.bin").write_bytes(os.urandom(300_000))
    (m / "sub" / "config.json").write_text('{"threshold": 0.5}')
    (m / "empty.txt").write_bytes(b"")
    return m


def _open(model: Path, bundle: bytes, pub: bytes, **kw: object):  # type: ignore[no-untyped-def]
    return open_verified(
        model,
        bundle,
        trusted_keys=[TrustedKey("k1", pub, ID)],
        policy=Identity(ID),
        **kw,  # type: ignore[arg-type]
    )


def _sign(model: Path, priv: bytes, **kw: object) -> bytes:
    return sign_model(model, priv, signer=SignerIdentity("k1", ID), **kw).bundle  # type: ignore[arg-type]


def test_snapshot_holds_exactly_the_signed_bytes(
    model: Path, keys: tuple[bytes, bytes], tmp_path: Path
) -> None:
    priv, pub = keys
    bundle = _sign(model, priv)
    seen: list[Stage] = []
    report = lambda p: seen.append(p.stage)  # noqa: E731
    with _open(model, bundle, pub, workdir=tmp_path, progress=report) as snap:
        root = snap.path
        assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
        for name in ("model.pkl", "weights.bin", "sub/config.json", "empty.txt"):
            assert snap.file(name).read_bytes() == (model / name).read_bytes()
            assert stat.S_IMODE(os.stat(snap.file(name)).st_mode) == 0o400
        assert pickle.loads(snap.read_bytes("model.pkl")) == {"coef": [0.1, 0.2, 0.3]}
        assert (
            snap.model.root_digest
            == verify_model(
                model, bundle, trusted_keys=[TrustedKey("k1", pub, ID)], policy=Identity(ID)
            ).root_digest
        )
    assert not root.exists()
    assert Stage.COPYING in seen


def test_artifact_swapped_after_verify_before_load_is_refused(
    model: Path, keys: tuple[bytes, bytes]
) -> None:
    # TOCTOU: verify the folder, then the attacker swaps the pickle before loading.
    priv, pub = keys
    verified = verify_model(
        model, _sign(model, priv), trusted_keys=[TrustedKey("k1", pub, ID)], policy=Identity(ID)
    )
    assert read_verified(model, "model.pkl", verified) == (model / "model.pkl").read_bytes()
    (model / "model.pkl").write_bytes(pickle.dumps({"coef": "evil"}))
    with pytest.raises(ArtifactMismatch, match="changed after it was verified") as e:
        read_verified(model, "model.pkl", verified)
    assert e.value.mismatches[0].kind is MismatchKind.DIGEST


def test_swap_of_original_after_snapshot_cannot_reach_the_loader(
    model: Path, keys: tuple[bytes, bytes]
) -> None:
    priv, pub = keys
    original = (model / "model.pkl").read_bytes()
    with _open(model, _sign(model, priv), pub) as snap:
        (model / "model.pkl").write_bytes(b"evil pickle")
        assert snap.file("model.pkl").read_bytes() == original
        assert snap.read_bytes("model.pkl") == original


def test_tampered_snapshot_file_is_refused_on_read(model: Path, keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    with _open(model, _sign(model, priv), pub) as snap:
        target = snap.file("sub/config.json")
        os.chmod(target, 0o600)
        target.write_text('{"threshold": 0.0}')
        with pytest.raises(ArtifactMismatch):
            snap.read_bytes("sub/config.json")


def test_extra_file_injection_is_refused_by_snapshot(
    model: Path, keys: tuple[bytes, bytes], tmp_path: Path
) -> None:
    priv, pub = keys
    bundle = _sign(model, priv)
    (model / "sub" / "evil.pkl").write_bytes(b"x")
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ArtifactMismatch) as e:
        _open(model, bundle, pub, workdir=work)
    assert [(m.kind, m.name) for m in e.value.mismatches] == [(MismatchKind.EXTRA, "sub/evil.pkl")]
    assert list(work.iterdir()) == []  # nothing left behind


def test_tampered_byte_is_refused_and_snapshot_removed(
    model: Path, keys: tuple[bytes, bytes], tmp_path: Path
) -> None:
    priv, pub = keys
    bundle = _sign(model, priv)
    data = bytearray((model / "weights.bin").read_bytes())
    data[-1] ^= 0xFF
    (model / "weights.bin").write_bytes(bytes(data))
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ArtifactMismatch) as e:
        _open(model, bundle, pub, workdir=work)
    assert [(m.kind, m.name) for m in e.value.mismatches] == [(MismatchKind.DIGEST, "weights.bin")]
    assert list(work.iterdir()) == []


def test_missing_and_renamed_files_are_refused_by_snapshot(
    model: Path, keys: tuple[bytes, bytes]
) -> None:
    priv, pub = keys
    bundle = _sign(model, priv)
    (model / "model.pkl").rename(model / "model2.pkl")
    with pytest.raises(ArtifactMismatch) as e:
        _open(model, bundle, pub)
    assert {(m.kind, m.name) for m in e.value.mismatches} == {
        (MismatchKind.EXTRA, "model2.pkl"),
        (MismatchKind.MISSING, "model.pkl"),
    }


def test_symlink_injection_is_refused_by_snapshot(model: Path, keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    bundle = _sign(model, priv)
    (model / "model.pkl").unlink()
    os.symlink("/etc/hostname", model / "model.pkl")
    with pytest.raises(ArtifactMismatch):
        _open(model, bundle, pub)


def test_sharded_snapshot_detects_tail_append(model: Path, keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    bundle = _sign(model, priv, shard_size=65_536)
    with _open(model, bundle, pub) as snap:
        assert snap.file("weights.bin").read_bytes() == (model / "weights.bin").read_bytes()
    with open(model / "weights.bin", "ab") as f:
        f.write(b"appended payload")
    with pytest.raises(ArtifactMismatch) as e:
        _open(model, bundle, pub)
    assert e.value.mismatches[0].name == "weights.bin"


def test_single_file_model_snapshot(tmp_path: Path, keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    artifact = tmp_path / "model.onnx"
    artifact.write_bytes(os.urandom(10_000))
    bundle = _sign(artifact, priv)
    with _open(artifact, bundle, pub) as snap:
        assert snap.path.name == "model.onnx"
        assert snap.path.read_bytes() == artifact.read_bytes()
        assert snap.read_bytes(".") == artifact.read_bytes()


def test_snapshot_checks_signer_before_copying(model: Path, keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    revoked = TrustedKey("k1", pub, ID, status=KeyStatus.REVOKED)
    with pytest.raises(SignerNotTrusted):
        open_verified(model, _sign(model, priv), trusted_keys=[revoked], policy=Identity(ID))


def test_unsigned_name_is_not_served(model: Path, keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    with _open(model, _sign(model, priv), pub) as snap, pytest.raises(InputError):
        snap.file("../../etc/passwd")
