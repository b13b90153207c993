"""Interoperability with the real OpenSSF ``model_signing`` CLI (subprocess, offline)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec

from bastion.model_security.errors import ArtifactMismatch, SignerNotTrusted
from bastion.model_security.signing import (
    Identity,
    MismatchKind,
    SignerIdentity,
    TrustedKey,
    open_verified,
    sign_model,
    verify_model,
)

CLI = Path(sys.executable).with_name("model_signing")
ID = "project:credit/signer:v1"

pytestmark = pytest.mark.skipif(not CLI.exists(), reason="model_signing CLI not installed")


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path, bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    priv = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
    pub = key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    keydir = tmp_path / "keys"
    keydir.mkdir(mode=0o700)
    (keydir / "key.pem").write_bytes(priv)
    os.chmod(keydir / "key.pem", 0o600)
    (keydir / "key.pub").write_bytes(pub)
    model = tmp_path / "credit-model"
    (model / "tok").mkdir(parents=True)
    (model / "weights.safetensors").write_bytes(os.urandom(200_000))
    (model / "config.json").write_text('{"a": 1}')
    (model / "tok" / "vocab.txt").write_text("x\ny\n")
    return model, keydir / "key.pem", keydir / "key.pub", priv, pub


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def test_upstream_cli_verifies_bastion_signature(
    setup: tuple[Path, Path, Path, bytes, bytes], tmp_path: Path
) -> None:
    model, _, pub_path, priv, _ = setup
    sig = tmp_path / "bastion.sig"
    sig.write_bytes(sign_model(model, priv, signer=SignerIdentity("k1", ID)).bundle)
    ok = _cli("verify", "key", model, "--signature", sig, "--public_key", pub_path)
    assert ok.returncode == 0, ok.stderr
    assert "Verification succeeded" in ok.stdout
    # and the upstream CLI refuses it once a file is tampered (the test can fail)
    (model / "config.json").write_text('{"a": 2}')
    bad = _cli("verify", "key", model, "--signature", sig, "--public_key", pub_path)
    assert bad.returncode != 0


def test_bastion_verifies_upstream_signature(
    setup: tuple[Path, Path, Path, bytes, bytes], tmp_path: Path
) -> None:
    model, priv_path, _, _, pub = setup
    sig = tmp_path / "upstream.sig"
    done = _cli("sign", "key", model, "--signature", sig, "--private_key", priv_path)
    assert done.returncode == 0, done.stderr
    trusted = [TrustedKey("k1", pub, ID)]
    verified = verify_model(model, sig.read_bytes(), trusted_keys=trusted, policy=Identity(ID))
    assert {f.name for f in verified.files} == {
        "weights.safetensors",
        "config.json",
        "tok/vocab.txt",
    }
    with open_verified(model, sig.read_bytes(), trusted_keys=trusted, policy=Identity(ID)) as snap:
        assert snap.read_bytes("config.json") == b'{"a": 1}'


def test_extra_file_injection_into_upstream_signed_model_is_refused(
    setup: tuple[Path, Path, Path, bytes, bytes], tmp_path: Path
) -> None:
    model, priv_path, _, _, pub = setup
    sig = tmp_path / "upstream.sig"
    assert (
        _cli("sign", "key", model, "--signature", sig, "--private_key", priv_path).returncode == 0
    )
    (model / "tok" / "loader.py").write_text("import os")
    with pytest.raises(ArtifactMismatch) as e:
        verify_model(
            model, sig.read_bytes(), trusted_keys=[TrustedKey("k1", pub, ID)], policy=Identity(ID)
        )
    assert [(m.kind, m.name) for m in e.value.mismatches] == [(MismatchKind.EXTRA, "tok/loader.py")]


def test_upstream_signature_inside_model_folder_is_handled(
    setup: tuple[Path, Path, Path, bytes, bytes],
) -> None:
    # `model_signing sign` run from inside the model writes model.sig there and
    # records it as ignored in the signed manifest: Bastion honours that.
    model, priv_path, _, _, pub = setup
    sig = model / "model.sig"
    assert (
        _cli("sign", "key", model, "--signature", sig, "--private_key", priv_path).returncode == 0
    )
    verified = verify_model(
        model, sig.read_bytes(), trusted_keys=[TrustedKey("k1", pub, ID)], policy=Identity(ID)
    )
    assert "model.sig" in verified.ignored_paths


def test_upstream_signature_by_untrusted_key_is_refused(
    setup: tuple[Path, Path, Path, bytes, bytes], tmp_path: Path
) -> None:
    model, priv_path, _, _, _ = setup
    sig = tmp_path / "upstream.sig"
    assert (
        _cli("sign", "key", model, "--signature", sig, "--private_key", priv_path).returncode == 0
    )
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    other_pub = other.public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(SignerNotTrusted):
        verify_model(
            model,
            sig.read_bytes(),
            trusted_keys=[TrustedKey("k9", other_pub, ID)],
            policy=Identity(ID),
        )
