"""Signing models: key-based (per-project ECDSA) and keyless Sigstore.

The pipeline is model_signing's: hash every file -> manifest -> in-toto
statement -> DSSE envelope signed with the project key -> Sigstore bundle JSON.
The bytes returned are exactly what ``model_signing sign key`` writes, so the
upstream ``model_signing verify key`` CLI verifies a Bastion-signed model.

Example::

    bundle = sign_model(
        Path("models/credit-v3"),
        keyring_private_pem,
        signer=SignerIdentity("credit-2025", "project:credit/signer:v2"),
    )
    Path("credit-v3.sig").write_bytes(bundle.bundle)
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from model_signing import signing as ms_signing
from model_signing._signing import sign_sigstore_pb
from model_signing._signing import signing as ms_payload

from bastion.core.errors import InputError
from bastion.model_security.errors import SigningUnavailable
from bastion.model_security.signing import _manifest
from bastion.model_security.signing.keys import (
    InMemoryKeySigner,
    key_fingerprint,
    load_private_key,
)
from bastion.model_security.signing.types import (
    HashAlgorithm,
    Progress,
    ProgressFn,
    SignatureBundle,
    SignerIdentity,
    Stage,
)

#: Set (to anything but "" / "0") to refuse keyless signing without probing.
OFFLINE_ENV = "BASTION_OFFLINE"
_KEYLESS_UNAVAILABLE = "keyless signing needs network access to Fulcio/Rekor; use key-based signing"


def sign_model(
    model_path: Path,
    private_key_pem: bytes,
    *,
    signer: SignerIdentity,
    ignore_paths: Sequence[str | Path] = (),
    password: bytes | None = None,
    algorithm: HashAlgorithm = HashAlgorithm.SHA256,
    shard_size: int | None = None,
    ignore_git_paths: bool = False,
    progress: ProgressFn | None = None,
) -> SignatureBundle:
    """Sign every file under ``model_path`` with the project's ECDSA key.

    Bastion signs *every* file by default (git metadata included); only the
    relative ``ignore_paths`` given are left out, and they are recorded in
    the signed manifest.  The private key never touches the disk.
    """
    path = _manifest.check_model_path(model_path)
    _check_signer(signer)
    key = load_private_key(private_key_pem, password)
    config = _manifest.signing_config(
        algorithm, shard_size, _manifest.relative_ignore_paths(ignore_paths), ignore_git_paths
    )
    _report(progress, Stage.HASHING)
    manifest = _manifest.hash_model(config, path)
    _report(progress, Stage.SIGNING)
    signature = InMemoryKeySigner(key).sign(ms_payload.Payload(manifest))
    assert isinstance(signature, sign_sigstore_pb.Signature)  # the key signer's type
    bundle = signature.bundle.to_json().encode("utf-8")  # as Signature.write does
    _report(progress, Stage.DONE)
    return SignatureBundle(
        bundle=bundle,
        signer=signer,
        key_fingerprint=key_fingerprint(key.public_key()),
        model_name=manifest.model_name,
        root_digest=_manifest.root_digest(manifest),
        files=_manifest.file_digests(manifest),
    )


def sign_model_keyless(
    model_path: Path,
    *,
    identity_token: str | None = None,
    use_staging: bool = False,
    ignore_paths: Sequence[str | Path] = (),
    reachable: Callable[[], bool] | None = None,
) -> bytes:
    """Keyless Sigstore signing (Fulcio certificate + Rekor entry) via model_signing.

    Fails closed with :class:`SigningUnavailable` when ``BASTION_OFFLINE`` is
    set or Fulcio/Rekor cannot be reached (checked with a short timeout, so it
    never hangs).  ``reachable`` overrides the connectivity probe.
    """
    path = _manifest.check_model_path(model_path)
    ignore = _manifest.relative_ignore_paths(ignore_paths)
    if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
        raise SigningUnavailable(_KEYLESS_UNAVAILABLE, hint=f"{OFFLINE_ENV} is set")
    probe = reachable if reachable is not None else _sigstore_reachable
    if not probe():
        raise SigningUnavailable(_KEYLESS_UNAVAILABLE, hint="Fulcio/Rekor are not reachable")
    config = _manifest.signing_config(HashAlgorithm.SHA256, None, ignore, False)
    with tempfile.TemporaryDirectory(prefix="bastion-sig-") as tmp:
        out = Path(tmp) / "model.sig"
        try:
            ms_signing.Config().use_sigstore_signer(  # type: ignore[no-untyped-call]
                identity_token=identity_token, use_staging=use_staging
            ).set_hashing_config(config).sign(path, out)
        except Exception as e:  # any Sigstore failure means nothing was signed
            raise SigningUnavailable(f"keyless signing failed: {e}") from e
        return out.read_bytes()


def _sigstore_reachable(timeout: float = 2.0) -> bool:
    """True if a TCP connection to Fulcio opens within ``timeout`` (DNS included)."""

    def _connect() -> bool:
        with socket.create_connection(("fulcio.sigstore.dev", 443), timeout=timeout):
            return True

    # getaddrinfo has no timeout of its own: run it in a worker we can abandon.
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(_connect).result(timeout=timeout)
    except (OSError, FutureTimeout):
        return False
    finally:
        pool.shutdown(wait=False)


def _check_signer(signer: SignerIdentity) -> None:
    if not signer.key_id.strip() or not signer.identity.strip():
        raise InputError(
            "signer needs a key_id and an identity",
            hint='e.g. SignerIdentity("credit-2025", "project:credit/signer:v2")',
        )


def _report(progress: ProgressFn | None, stage: Stage) -> None:
    if progress is not None:
        progress(Progress(stage=stage))


__all__ = ["OFFLINE_ENV", "sign_model", "sign_model_keyless"]
