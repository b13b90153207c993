"""The model registry as wired into a real workspace (SQLite and PostgreSQL).

Real sklearn / xgboost / lightgbm / ONNX artifacts are registered: scanned,
signed with the project key (the upstream ``model_signing`` CLI verifies the
bundle), stored encrypted, bound to accepted training data in lineage, and
guarded by RBAC and the signing-key life cycle (rotation, revocation).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from bastion.core.access.values import Actor, PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.errors import AccessDenied, Conflict, InputError
from bastion.core.lineage.graph import Node, NodeKind
from bastion.data_security.service import DatasetNotUsable, IngestRequest
from bastion.demo.data_steps import credit_data
from bastion.model_security.errors import SignatureInvalid, SignerNotTrusted
from bastion.model_security.registry import RegisterRequest, signing_purpose
from bastion.model_security.values import Framework, ModelVersion, Stage

if TYPE_CHECKING:  # annotations only: another folder's conftest.py may shadow the name
    from conftest import WS

UPSTREAM_CLI = Path(sys.executable).with_name("model_signing")
P = "default"


# -- helpers ---------------------------------------------------------------------------
def _xy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)


def _sklearn(d: Path) -> Path:
    import joblib
    from sklearn.linear_model import LogisticRegression

    x, y = _xy()
    joblib.dump(LogisticRegression().fit(x, y), d / "model.joblib")
    return d / "model.joblib"


def _xgboost(d: Path) -> Path:
    import xgboost

    x, y = _xy()
    xgboost.XGBClassifier(n_estimators=8, max_depth=2).fit(x, y).save_model(d / "model.json")
    return d / "model.json"


def _lightgbm(d: Path) -> Path:
    import lightgbm

    x, y = _xy()
    model = lightgbm.LGBMClassifier(n_estimators=8, verbose=-1).fit(x, y)
    model.booster_.save_model(str(d / "model.txt"))
    return d / "model.txt"


def _onnx(d: Path) -> Path:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x, y = _xy()
    proto = to_onnx(LogisticRegression().fit(x, y), x[:1], target_opset=17)
    (d / "model.onnx").write_bytes(proto.SerializeToString())
    return d / "model.onnx"


def _folder(d: Path) -> Path:
    root = d / "bundle"
    (root / "tokenizer").mkdir(parents=True)
    _sklearn(root)
    (root / "config.json").write_text(json.dumps({"threshold": 0.5, "features": 4}))
    (root / "tokenizer" / "vocab.txt").write_text("income\nage\ndebt\n")
    return root


ARTIFACTS: dict[str, tuple[Callable[[Path], Path], Framework]] = {
    "sklearn-joblib": (_sklearn, Framework.SKLEARN),
    "xgboost-json": (_xgboost, Framework.XGBOOST),
    "lightgbm-text": (_lightgbm, Framework.LIGHTGBM),
    "onnx-skl2onnx": (_onnx, Framework.ONNX),
    "folder": (_folder, Framework.SKLEARN),
}


def _plain_files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())


def _assert_no_plaintext_in_blobs(home: Path, files: list[Path]) -> None:
    blobs = [p.read_bytes() for p in (home / "blobs").rglob("*") if p.is_file()]
    assert blobs
    for f in files:
        data = f.read_bytes()
        if len(data) < 24:
            continue
        windows = {data[:24], data[len(data) // 2 : len(data) // 2 + 24], data[-24:]}
        for w in windows:
            assert not any(w in b for b in blobs), f"plaintext of {f.name} found in a blob file"


def _user(w: WS, name: str, role: str | None) -> Actor:
    w.ws.access.create_principal(w.admin, name, PrincipalKind.USER)
    if role is not None:
        w.ws.access.bind(w.admin, name, role, P)
    return w.ws.access.authenticate(w.ws.access.create_token(w.admin, name).secret)


def _register(w: WS, name: str, path: Path, fw: Framework = Framework.SKLEARN) -> ModelVersion:
    return w.ws.models.register(w.admin, RegisterRequest(P, name, path, fw))


def _upstream_verify(w: WS, v: ModelVersion, root: Path, tmp: Path, pub_pem: str) -> None:
    sig = tmp / f"{v.name}-{v.version}.sig"
    sig.write_bytes(w.ws.blobs.read_bytes(v.bundle_digest))
    pub = tmp / f"{v.name}-{v.version}.pub"
    pub.write_text(pub_pem)
    done = subprocess.run(
        [str(UPSTREAM_CLI), "verify", "key", str(root), "--signature", str(sig),
         "--public_key", str(pub)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Verification succeeded" in done.stdout


# -- registration of real artifacts ------------------------------------------------------
def test_register_real_artifacts_scanned_signed_and_stored_encrypted(
    workspace: WS, tmp_path: Path
) -> None:
    w = workspace
    for kind, (make, framework) in ARTIFACTS.items():
        src = tmp_path / kind
        src.mkdir()
        path = make(src)
        plain = _plain_files(path)

        v = _register(w, kind, path, framework)

        assert (v.ref, v.stage, v.framework) == (f"{kind}@1", Stage.DRAFT, framework)
        assert json.loads(v.scan_report)["verdict"] == "safe"
        base = path if path.is_dir() else path.parent
        assert {f.path for f in v.manifest} == {p.relative_to(base).as_posix() for p in plain}
        for f in v.manifest:
            original = base / f.path
            assert f.digest == hashlib.sha256(original.read_bytes()).hexdigest()
            assert f.size == original.stat().st_size
        # signed by the project's (only, active) model-signing key
        keys = w.ws.keyring.signing_keys(signing_purpose(P))
        assert [k.key_id for k in keys] == [v.signer_key_id]
        assert w.ws.models.verify(w.admin, P, v.ref).root_digest == v.root_digest
        # the upstream OpenSSF CLI accepts the stored bundle over the stored bytes
        # (independent of the metadata database: run it once, on SQLite)
        if UPSTREAM_CLI.exists() and w.db_url.startswith("sqlite"):
            with w.ws.models.checkout(w.admin, P, v.ref) as (_, root):
                _upstream_verify(w, v, root, tmp_path, keys[0].public_pem)
        _assert_no_plaintext_in_blobs(w.home, plain)
    entries = w.ws.audit.query(AuditQuery(action="model.registered"))
    assert [(e.actor, e.resource) for e in entries] == [
        ("admin", f"project/{P}/model/{kind}") for kind in ARTIFACTS
    ]
    listed = w.reopen().models.versions(w.admin, P)
    assert sorted(v.name for v in listed) == sorted(ARTIFACTS)


def test_registered_models_load_back_with_identical_predictions(
    sqlite_workspace: WS, tmp_path: Path
) -> None:
    import lightgbm
    import onnx
    import xgboost

    w = sqlite_workspace
    x, _ = _xy()
    src = tmp_path / "src"
    src.mkdir()
    original = {k: make(src) for k, (make, _) in ARTIFACTS.items() if k != "folder"}
    for k, path in original.items():
        _register(w, k, path, ARTIFACTS[k][1])

    _, model = w.ws.models.load_sklearn(w.admin, P, "sklearn-joblib@1")
    import joblib

    expected = joblib.load(original["sklearn-joblib"]).predict_proba(x)
    assert np.allclose(model.predict_proba(x), expected)
    with w.ws.models.checkout(w.admin, P, "xgboost-json") as (_, root):
        booster = xgboost.Booster(model_file=str(root / "model.json"))
    ref = xgboost.Booster(model_file=str(original["xgboost-json"]))
    assert np.allclose(booster.predict(xgboost.DMatrix(x)), ref.predict(xgboost.DMatrix(x)))
    with w.ws.models.checkout(w.admin, P, "lightgbm-text") as (_, root):
        lgb = lightgbm.Booster(model_file=str(root / "model.txt"))
    ref_lgb = lightgbm.Booster(model_file=str(original["lightgbm-text"]))
    assert np.allclose(lgb.predict(x), ref_lgb.predict(x))
    with w.ws.models.checkout(w.admin, P, "onnx-skl2onnx") as (_, root):
        proto = onnx.load(str(root / "model.onnx"))
        onnx.checker.check_model(proto)
        assert root.exists()
    # the private snapshot is deleted once the checkout ends
    assert not root.exists()


# -- training data must be accepted ----------------------------------------------------
def _ingest_credit(w: WS, tmp: Path) -> tuple[str, str]:
    """An accepted and a quarantined version of a small credit dataset."""
    full = credit_data().drop_nulls()
    w.ws.datasets.register_source(w.admin, P, "bureau", datasets=("credit",))
    good = tmp / "history.csv"
    full.head(800).write_csv(good)
    ok = w.ws.datasets.ingest(
        w.admin,
        IngestRequest(P, "credit", good, "bureau", hashlib.sha256(good.read_bytes()).hexdigest(),
                      label="Status", sensitive=("Age",), positive_label="good"),
    )  # fmt: skip
    assert ok.accepted, ok.report.render_text()
    bad = tmp / "batch.csv"
    full.slice(800, 200).write_csv(bad)
    # the declared checksum does not match the bytes: quarantined at ingestion
    q = w.ws.datasets.ingest(w.admin, IngestRequest(P, "credit", bad, "bureau", "0" * 64))
    assert not q.accepted
    return ok.version.ref, q.version.ref


def test_trained_on_quarantined_dataset_is_refused_and_accepted_one_is_in_lineage(
    workspace: WS, tmp_path: Path
) -> None:
    w = workspace
    accepted, quarantined = _ingest_credit(w, tmp_path)
    model = _sklearn(tmp_path)
    with pytest.raises(DatasetNotUsable) as e:
        w.ws.models.register(
            w.admin, RegisterRequest(P, "scorer", model, Framework.SKLEARN, (quarantined,))
        )
    assert quarantined in e.value.message and "quarantined" in e.value.message
    assert w.ws.models.versions(w.admin, P) == []

    v = w.ws.models.register(
        w.admin, RegisterRequest(P, "scorer", model, Framework.SKLEARN, (accepted,))
    )
    dv = w.ws.datasets.version(w.admin, P, accepted)
    assert v.trained_on == (f"{P}/{accepted}#{dv.data_digest}",)
    edges = w.ws.lineage.edges_into(Node(NodeKind.MODEL_VERSION, v.lineage_id))
    assert [(e.src.kind, e.src.id, e.src.digest, e.relation) for e in edges] == [
        (NodeKind.DATASET_VERSION, f"{P}/{accepted}", dv.data_digest, "trained_on")
    ]
    result = w.ws.lineage.verify(Node(NodeKind.MODEL_VERSION, v.lineage_id))
    assert result.ok, result.to_dict()
    assert {c.node.kind for c in result.checked} >= {NodeKind.MODEL_VERSION,
                                                      NodeKind.DATASET_VERSION}  # fmt: skip


# -- RBAC ----------------------------------------------------------------------------------
def test_model_rbac_consumer_reviewer_engineer(workspace: WS, tmp_path: Path) -> None:
    w = workspace
    model = _sklearn(tmp_path)
    _register(w, "scorer", model)
    consumer = _user(w, "carol", "consumer")
    reviewer = _user(w, "rita", "reviewer")
    engineer = _user(w, "eddie", "ml-engineer")

    with pytest.raises(AccessDenied):
        w.ws.models.register(consumer, RegisterRequest(P, "evil", model, Framework.SKLEARN))
    with pytest.raises(AccessDenied):
        w.ws.models.load_sklearn(consumer, P, "scorer@1")
    with pytest.raises(AccessDenied):
        w.ws.models.versions(consumer, P)
    with pytest.raises(AccessDenied):
        w.ws.models.verify(consumer, P, "scorer@1")

    assert [v.ref for v in w.ws.models.versions(reviewer, P)] == ["scorer@1"]
    assert w.ws.models.verify(reviewer, P, "scorer@1").root_digest
    with pytest.raises(AccessDenied):
        w.ws.models.load_sklearn(reviewer, P, "scorer@1")
    with pytest.raises(AccessDenied), w.ws.models.checkout(reviewer, P, "scorer@1"):
        pass
    with pytest.raises(AccessDenied):
        w.ws.models.register(reviewer, RegisterRequest(P, "scorer", model, Framework.SKLEARN))

    v2 = w.ws.models.register(engineer, RegisterRequest(P, "scorer", model, Framework.SKLEARN))
    assert (v2.version, v2.created_by) == (2, "eddie")
    _, loaded = w.ws.models.load_sklearn(engineer, P, "scorer@2")
    assert hasattr(loaded, "predict_proba")

    denied = w.ws.audit.query(AuditQuery(outcome="denied"))
    assert {(e.actor, e.action) for e in denied} >= {
        ("carol", "model.register"),
        ("carol", "model.load"),
        ("rita", "model.load"),
        ("rita", "model.register"),
    }
    # nothing was stored for the refused registrations
    assert [v.ref for v in w.ws.models.versions(w.admin, P)] == ["scorer@1", "scorer@2"]


# -- the signing key life cycle --------------------------------------------------------------
def test_revoked_signing_key_fails_verification(workspace: WS, tmp_path: Path) -> None:
    w = workspace
    v = _register(w, "scorer", _sklearn(tmp_path))
    w.ws.keys.revoke_signing(w.admin, v.signer_key_id)
    with pytest.raises(SignerNotTrusted):
        w.ws.models.verify(w.admin, P, "scorer@1")
    with pytest.raises(SignatureInvalid):
        w.ws.models.load_sklearn(w.admin, P, "scorer@1")
    # a fresh key signs new versions; the revoked one stays untrusted
    v2 = _register(w, "scorer", _sklearn(tmp_path))
    assert v2.signer_key_id != v.signer_key_id
    assert w.ws.models.verify(w.admin, P, "scorer@2").signer.key_id == v2.signer_key_id
    with pytest.raises(SignerNotTrusted):
        w.ws.models.verify(w.admin, P, "scorer@1")
    revoked = w.ws.audit.query(AuditQuery(action="keys.signing_revoked"))
    assert len(revoked) == 1


def test_rotated_signing_key_old_versions_still_verify(workspace: WS, tmp_path: Path) -> None:
    w = workspace
    v1 = _register(w, "scorer", _sklearn(tmp_path))
    new_key = w.ws.keys.rotate_signing(w.admin, signing_purpose(P))
    assert new_key != v1.signer_key_id
    v2 = _register(w, "scorer", _sklearn(tmp_path))
    assert v2.signer_key_id == new_key
    assert w.ws.models.verify(w.admin, P, "scorer@1").signer.key_id == v1.signer_key_id
    assert w.ws.models.verify(w.admin, P, "scorer@2").signer.key_id == new_key
    # a reopened workspace (keyring read from disk) agrees
    other = w.reopen()
    assert other.models.verify(w.admin, P, "scorer@1").root_digest == v1.root_digest
    _, model = other.models.load_sklearn(w.admin, P, "scorer@1")
    assert hasattr(model, "predict")


def test_registry_survives_reopen_and_lists_versions(workspace: WS, tmp_path: Path) -> None:
    w = workspace
    for _ in range(3):
        _register(w, "scorer", _sklearn(tmp_path))
    other = w.reopen()
    listed = other.models.versions(w.admin, P, "scorer")
    assert [v.version for v in listed] == [1, 2, 3]
    assert other.models.version(w.admin, P, "scorer").version == 3
    assert other.models.version(w.admin, P, "scorer@latest").version == 3
    promoted = other.models.set_stage(w.admin, P, "scorer@2", Stage.CANDIDATE)
    assert promoted.stage is Stage.CANDIDATE
    assert w.ws.models.version(w.admin, P, "scorer@2").stage is Stage.CANDIDATE


def test_look_alike_model_name_differing_in_case_is_refused(workspace: WS, tmp_path: Path) -> None:
    _register(workspace, "credit-scorer", _sklearn(tmp_path))
    with pytest.raises(Conflict, match="case-insensitive"):
        again = tmp_path / "again"
        again.mkdir()
        _register(workspace, "Credit-Scorer", _sklearn(again))
    names = {v.name for v in workspace.ws.models.versions(workspace.admin, P)}
    assert names == {"credit-scorer"}


@pytest.mark.parametrize(
    "ref",
    ["credit-scorer@\u00b2", "credit-scorer@\u0661", "credit-scorer@" + "9" * 25, "scorer\n"],
)
def test_model_ref_with_unicode_digits_or_overflow_is_input_error(workspace: WS, ref: str) -> None:
    with pytest.raises(InputError):
        workspace.ws.models.version(workspace.admin, P, ref)
