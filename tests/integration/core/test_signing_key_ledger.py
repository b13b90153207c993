"""Model-signing keys: a rotated key signs nothing more and verifies only what it
signed before; revocation is on the audit log, so editing the keyring cannot undo it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bastion.core.crypto.interface import KeyStatus
from bastion.core.crypto.ledger import SigningKeyLedger
from bastion.model_security.errors import SignerNotTrusted
from bastion.model_security.registry import RegisterRequest, signing_purpose
from bastion.model_security.values import Framework, ModelVersion
from conftest import WS

P = "default"


def model_file(d: Path, seed: int = 0) -> Path:
    import joblib
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 3))
    y = (x[:, 0] > 0).astype(int)
    d.mkdir(parents=True, exist_ok=True)
    joblib.dump(LogisticRegression().fit(x, y), d / "model.joblib")
    return d / "model.joblib"


def register(w: WS, tmp: Path, n: int) -> ModelVersion:
    path = model_file(tmp / f"m{n}", n)
    return w.ws.models.register(w.admin, RegisterRequest(P, "scorer", path, Framework.SKLEARN))


def keyring_doc(w: WS) -> dict[str, object]:
    doc: dict[str, object] = json.loads((w.home / "keyring.json").read_text())
    return doc


def set_status(w: WS, key_id: str, status: str) -> None:
    path = w.home / "keyring.json"
    doc = json.loads(path.read_text())
    for s in doc["signing"]:
        if s["key_id"] == key_id:
            s["status"] = status
    path.write_text(json.dumps(doc, indent=2, sort_keys=True))


def test_rotated_signing_key_can_no_longer_sign(workspace: WS, tmp_path: Path) -> None:
    w = workspace
    v1 = register(w, tmp_path, 1)
    new = w.ws.keys.rotate_signing(w.admin, signing_purpose(P))
    entries = {s["key_id"]: s for s in keyring_doc(w)["signing"]}  # type: ignore[attr-defined]
    assert entries[v1.signer_key_id]["status"] == KeyStatus.ROTATED.value
    assert "wrapped_private" not in entries[v1.signer_key_id]  # destroyed, not just flagged
    assert register(w, tmp_path, 2).signer_key_id == new
    events = SigningKeyLedger(w.ws.audit).events()
    assert events[v1.signer_key_id].rotated_at is not None
    assert w.ws.models.verify(w.admin, P, "scorer@1").signer.key_id == v1.signer_key_id


def test_keyring_restored_from_before_rotation_signs_with_old_key_attack_refused(
    workspace: WS, tmp_path: Path
) -> None:
    """The attacker puts back a keyring copy from before the rotation (old key
    active, private half intact): the next model is signed by the retired key.
    It used to verify; the audit log's rotation record refuses it."""
    w = workspace
    v1 = register(w, tmp_path, 1)
    before = (w.home / "keyring.json").read_bytes()  # the key was made on first use
    w.ws.keys.rotate_signing(w.admin, signing_purpose(P))
    (w.home / "keyring.json").write_bytes(before)
    w.ws.keyring.reload()
    v2 = register(w, tmp_path, 2)
    assert v2.signer_key_id == v1.signer_key_id  # signed by the retired key
    with pytest.raises(SignerNotTrusted, match="after its signing life ended"):
        w.ws.models.verify(w.admin, P, "scorer@2")
    # what it signed before the rotation still verifies
    assert w.ws.models.verify(w.admin, P, "scorer@1").root_digest == v1.root_digest


def test_keyring_edited_to_unrevoke_signing_key_attack_still_refused(
    workspace: WS, tmp_path: Path
) -> None:
    """Revocation was a plain field in the keyring: setting it back to ``active``
    re-trusted every signature by the revoked key."""
    w = workspace
    v1 = register(w, tmp_path, 1)
    w.ws.keys.revoke_signing(w.admin, v1.signer_key_id)
    with pytest.raises(SignerNotTrusted):
        w.ws.models.verify(w.admin, P, "scorer@1")
    set_status(w, v1.signer_key_id, "active")
    other = w.reopen()
    with pytest.raises(SignerNotTrusted, match="revoked"):
        other.models.verify(w.admin, P, "scorer@1")
    with pytest.raises(SignerNotTrusted, match="revoked"):
        w.ws.models.verify(w.admin, P, "scorer@1")


def test_keyring_edited_to_unrotate_key_attack_still_bounded(
    workspace: WS, tmp_path: Path
) -> None:
    """Flipping a rotated key back to ``active`` in the file does not lift the
    rotation the audit log records."""
    w = workspace
    v1 = register(w, tmp_path, 1)
    w.ws.keys.rotate_signing(w.admin, signing_purpose(P))
    set_status(w, v1.signer_key_id, "active")
    keys = {k.key_id: k for k in w.ws.models.trusted_keys(P)}
    assert keys[v1.signer_key_id].not_after is not None
    assert keys[v1.signer_key_id].status.value == "rotated"


def test_model_signed_at_is_taken_from_the_audit_log_not_the_table(
    workspace: WS, tmp_path: Path
) -> None:
    """Back-dating ``signed_at`` in the model table does not help a retired key."""
    import sqlalchemy as sa

    w = workspace
    register(w, tmp_path, 1)
    before = (w.home / "keyring.json").read_bytes()
    w.ws.keys.rotate_signing(w.admin, signing_purpose(P))
    (w.home / "keyring.json").write_bytes(before)
    w.ws.keyring.reload()
    v2 = register(w, tmp_path, 2)
    with w.ws.engine.begin() as c:
        c.execute(
            sa.text("UPDATE model_versions SET signed_at = :t WHERE id = :i"),
            {"t": "2000-01-01T00:00:00+00:00", "i": v2.id},
        )
    with pytest.raises(SignerNotTrusted):
        w.ws.models.verify(w.admin, P, "scorer@2")
