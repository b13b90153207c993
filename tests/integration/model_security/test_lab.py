"""The model lab in a real workspace: train from a spec on accepted credit data,
evaluate with a signed in-toto statement, monitor drift, under RBAC.

One workspace per module (SQLite) holds the shipped credit data: an accepted
training version, an accepted evaluation batch and a quarantined batch.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from bastion.core.access.values import Actor, PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.crypto.keyring import MasterKeySource
from bastion.core.errors import AccessDenied
from bastion.core.lineage.graph import Node, NodeKind
from bastion.data_security.service import DatasetNotUsable, IngestRequest
from bastion.demo.data_steps import credit_data
from bastion.model_security.errors import SignatureInvalid, SignerNotTrusted, TrainingSpecInvalid
from bastion.model_security.evaluation import AttackKind, RobustnessSuite
from bastion.model_security.lab import EVALUATION_PREDICATE, training_code_digest
from bastion.model_security.monitoring import DriftVerdict
from bastion.model_security.registry import signer_identity
from bastion.model_security.signing import AllowedIdentities, verify_statement
from bastion.model_security.values import ModelVersion
from bastion.workspace import Bastion

P = "default"
GB_SPEC = """\
label: Status
estimator: gradient_boosting
sensitive: [Age]
params: {n_estimators: 40, max_depth: 2}
seed: 7
"""
LR_SPEC = """\
label: Status
estimator: logistic_regression
sensitive: [Age]
params: {C: 1.0, max_iter: 500}
seed: 7
"""
# gradient attacks only: HopSkipJump costs seconds per row (covered by unit tests)
FAST_SUITE = RobustnessSuite(attacks=(AttackKind.FGSM, AttackKind.PGD), eps=0.5, sample_size=30)


@dataclass
class Lab:
    ws: Bastion
    admin: Actor
    train_ref: str
    eval_ref: str
    quarantined_ref: str
    holdout: pl.DataFrame
    work: Path
    models: dict[str, ModelVersion]

    def user(self, name: str, role: str) -> Actor:
        self.ws.access.create_principal(self.admin, name, PrincipalKind.USER)
        self.ws.access.bind(self.admin, name, role, P)
        return self.ws.access.authenticate(self.ws.access.create_token(self.admin, name).secret)


def _ingest(ws: Bastion, admin: Actor, frame: pl.DataFrame, path: Path, **kw: object) -> str:
    frame.write_csv(path)
    digest = str(kw.pop("sha256", hashlib.sha256(path.read_bytes()).hexdigest()))
    res = ws.datasets.ingest(
        admin,
        IngestRequest(P, "credit", path, "bureau", digest, **kw),  # type: ignore[arg-type]
    )
    return f"{res.version.ref}:{'accepted' if res.accepted else 'quarantined'}"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    work = tmp_path_factory.mktemp("lab")
    master = MasterKeySource.from_env_key(base64.b64encode(os.urandom(32)).decode())
    ws, token = Bastion.init(work / "ws", master)
    admin = ws.access.authenticate(token.secret)
    full = credit_data().drop_nulls().sample(fraction=1.0, shuffle=True, seed=3)
    ws.datasets.register_source(admin, P, "bureau", datasets=("credit",))
    train = _ingest(ws, admin, full.head(1200), work / "train.csv", label="Status",
                    sensitive=("Age",), positive_label="good")  # fmt: skip
    holdout = full.slice(1200, 400)
    evaluation = _ingest(ws, admin, holdout, work / "eval.csv")
    quarantined = _ingest(ws, admin, full.slice(1600, 200), work / "bad.csv", sha256="0" * 64)
    assert train.endswith(":accepted") and evaluation.endswith(":accepted"), (train, evaluation)
    assert quarantined.endswith(":quarantined")
    try:
        yield Lab(ws, admin, train.split(":")[0], evaluation.split(":")[0],
                  quarantined.split(":")[0], holdout, work, {})  # fmt: skip
    finally:
        ws.close()


def _trained(lab: Lab, name: str, spec: str) -> ModelVersion:
    if name not in lab.models:
        lab.models[name] = lab.ws.lab.train(lab.admin, P, name, spec, lab.train_ref)
    return lab.models[name]


# -- training -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "spec", "estimator"),
    [("gb-scorer", GB_SPEC, "gradient_boosting"), ("lr-scorer", LR_SPEC, "logistic_regression")],
)
def test_train_from_spec_registers_signed_version_with_training_run(
    lab: Lab, name: str, spec: str, estimator: str
) -> None:
    steps: list[str] = []
    v = lab.ws.lab.train(lab.admin, P, name, spec, lab.train_ref, progress=steps.append)
    lab.models[name] = v
    assert steps[0] == "training" and "registering" in steps and "signing" in steps
    dv = lab.ws.datasets.version(lab.admin, P, lab.train_ref)
    assert v.trained_on == (f"{P}/{lab.train_ref}#{dv.data_digest}",)
    assert json.loads(v.scan_report)["verdict"] == "safe"
    run = json.loads(v.training_run or "{}")
    assert run["code_digest"] == training_code_digest()
    assert run["spec"]["estimator"] == estimator and run["spec_digest"].startswith("sha256:")
    assert run["data"] == [{"dataset": f"{P}/{lab.train_ref}", "sha256": dv.data_digest}]
    assert run["n_train"] + run["n_test"] == 1200
    assert "Age" not in run["features"] and "Status" not in run["features"]
    assert 0.6 < run["holdout"]["accuracy"] <= 1.0
    expected = {"n_estimators": 40, "max_depth": 2} if estimator == "gradient_boosting" else {
        "C": 1.0, "max_iter": 500}  # fmt: skip
    assert expected.items() <= run["params"].items()
    # the stored artifact verifies and loads into a working pipeline
    assert lab.ws.models.verify(lab.admin, P, v.ref).root_digest == v.root_digest
    _, model = lab.ws.models.load_sklearn(lab.admin, P, v.ref)
    predictions = model.predict(lab.holdout.select(run["features"]).to_pandas())
    assert set(predictions) <= {"good", "bad"} and len(predictions) == 400
    # lineage: dataset -> training run -> model, all re-hashed intact
    (edge,) = lab.ws.lineage.edges_into(Node(NodeKind.MODEL_VERSION, v.lineage_id))
    assert (edge.src.kind, edge.relation, edge.src.digest) == (
        NodeKind.TRAINING_RUN, "trained", run["spec_digest"].removeprefix("sha256:"))  # fmt: skip
    result = lab.ws.lineage.verify(Node(NodeKind.MODEL_VERSION, v.lineage_id))
    assert result.ok, result.to_dict()
    kinds = {c.node.kind for c in result.checked}
    assert {NodeKind.MODEL_VERSION, NodeKind.TRAINING_RUN, NodeKind.DATASET_VERSION} <= kinds


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("label: Status\nestimator: xgb_magic\n", "unknown estimator 'xgb_magic'"),
        ("estimator: logistic_regression\n", "label"),
        ("label: Outcome\nestimator: logistic_regression\n", "Outcome"),
        ("label: Status\nestimator: logistic_regression\nparams: {C: -1}\n", "C"),
        ("label: [Status\n", "yaml"),
    ],
    ids=["unknown-estimator", "missing-label", "label-not-in-data", "bad-param", "bad-yaml"],
)
def test_bad_training_spec_gives_clear_error(lab: Lab, spec: str, expected: str) -> None:
    before = lab.ws.models.versions(lab.admin, P, "bad-spec")
    with pytest.raises(TrainingSpecInvalid) as e:
        lab.ws.lab.train(lab.admin, P, "bad-spec", spec, lab.train_ref)
    assert expected.lower() in e.value.diagnostics().lower()
    assert lab.ws.models.versions(lab.admin, P, "bad-spec") == before == []


def test_training_on_quarantined_data_is_refused(lab: Lab) -> None:
    with pytest.raises(DatasetNotUsable) as e:
        lab.ws.lab.train(lab.admin, P, "poisoned-scorer", LR_SPEC, lab.quarantined_ref)
    assert "quarantined" in e.value.message
    assert lab.ws.models.versions(lab.admin, P, "poisoned-scorer") == []


# -- evaluation with signed evidence -------------------------------------------------------
def test_evaluate_records_metrics_fairness_robustness_and_signed_statement(lab: Lab) -> None:
    v = _trained(lab, "lr-scorer", LR_SPEC)
    rec = lab.ws.lab.evaluate(
        lab.admin, P, v.ref, lab.eval_ref, sensitive=("Age",), immutable=("Home",),
        suite=FAST_SUITE,
    )  # fmt: skip
    dv = lab.ws.datasets.version(lab.admin, P, lab.eval_ref)
    assert (rec.model, rec.version, rec.dataset_ref, rec.dataset_digest) == (
        v.name, v.version, f"{P}/{lab.eval_ref}", dv.data_digest)  # fmt: skip
    result = json.loads(rec.result)
    metrics = result["metrics"]
    assert metrics["n"] == 400 and 0.5 < metrics["accuracy"] <= 1 and metrics["roc_auc"] > 0.5
    (fair,) = result["fairness"]
    assert fair["attribute"] == "Age" and len(fair["groups"]) >= 2
    assert sum(g["count"] for g in fair["groups"]) == 400
    assert 0 <= fair["demographic_parity_difference"] <= 1
    attacks = {a["attack"]: a for a in result["robustness"]["attacks"]}
    assert set(attacks) == {"fgsm", "pgd"}
    for a in attacks.values():
        assert a["status"] == "ran" and 0 <= a["success_rate"] <= 1
        assert a["n_rows"] == 30
        # the L-inf budget is eps standard deviations per feature, never exceeded
        assert a["perturbation_std_units"]["linf_mean"] <= 0.5 + 1e-6
    assert "Home" in result["robustness"]["fixed_features"]
    assert [e.id for e in lab.ws.lab.evaluations(lab.admin, P, v.ref)] == [rec.id]

    bundle = lab.ws.lab.statement(lab.admin, P, rec)
    assert hashlib.sha256(bundle).hexdigest() == rec.statement_digest
    statement = verify_statement(
        bundle,
        lab.ws.models.trusted_keys(P),
        AllowedIdentities.of([signer_identity(P)]),
        predicate_type=EVALUATION_PREDICATE,
    )
    assert {(s.name, s.sha256) for s in statement.subjects} == {
        (f"model:{v.lineage_id}", v.root_digest),
        (f"dataset:{P}/{lab.eval_ref}", dv.data_digest),
    }
    assert statement.predicate["result"] == result
    assert statement.signer.identity == signer_identity(P)
    # lineage and audit
    edges = lab.ws.lineage.edges_into(
        Node(NodeKind.EVALUATION, f"{v.lineage_id}/evaluation/{rec.id[:12]}")
    )
    assert {e.relation for e in edges} == {"evaluated", "evaluated_on"}
    entries = lab.ws.audit.query(AuditQuery(action="model.evaluated"))
    assert json.loads(entries[-1].details)["statement"] == rec.statement_digest

    # -- the evidence cannot be forged --
    _assert_forgeries_refused(lab, bundle)


def _assert_forgeries_refused(lab: Lab, bundle: bytes) -> None:
    keys = lab.ws.models.trusted_keys(P)
    policy = AllowedIdentities.of([signer_identity(P)])
    # 1. flip one byte of the signed payload (base64 inside the DSSE envelope)
    doc = json.loads(bundle)
    payload = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    payload["predicate"]["result"]["metrics"]["accuracy"] = 0.99
    doc["dsseEnvelope"]["payload"] = base64.b64encode(
        json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    ).decode()
    with pytest.raises(SignatureInvalid):
        verify_statement(json.dumps(doc).encode(), keys, policy)
    # 2. swap the subject digest (claim the evaluation was of another model)
    doc = json.loads(bundle)
    raw = base64.b64decode(doc["dsseEnvelope"]["payload"])
    doc["dsseEnvelope"]["payload"] = base64.b64encode(raw.replace(b'"sha256":"', b'"sha256":"0', 1)
                                                      ).decode()  # fmt: skip
    with pytest.raises(SignatureInvalid):
        verify_statement(json.dumps(doc).encode(), keys, policy)
    # 3. a raw bit flip in the bundle (start, middle, end) is a verification failure
    for at in (10, len(bundle) // 2, len(bundle) - 10):
        flipped = bytearray(bundle)
        flipped[at] ^= 0x01
        with pytest.raises(SignatureInvalid):
            verify_statement(bytes(flipped), keys, policy)
    # 4. a signer identity the policy does not allow
    with pytest.raises(SignerNotTrusted):
        verify_statement(bundle, keys, AllowedIdentities.of(["project:other/signer"]))
    # 5. the wrong kind of statement
    with pytest.raises(SignatureInvalid):
        verify_statement(bundle, keys, policy, predicate_type="https://example/approval/v1")


def test_evaluate_refuses_quarantined_dataset(lab: Lab) -> None:
    v = _trained(lab, "lr-scorer", LR_SPEC)
    with pytest.raises(DatasetNotUsable):
        lab.ws.lab.evaluate(lab.admin, P, v.ref, lab.quarantined_ref, suite=FAST_SUITE)


# -- drift ------------------------------------------------------------------------------------
def test_drift_shifted_inputs_detected_with_html_report(lab: Lab) -> None:
    shifted = lab.holdout.with_columns(
        (pl.col("Income") * 1.8).alias("Income"), (pl.col("Amount") * 1.5).alias("Amount")
    )
    html = lab.work / "drift.html"
    report = lab.ws.lab.drift(lab.admin, P, lab.train_ref, shifted, html=html)
    assert report.verdict is not DriftVerdict.NO_DRIFT
    assert {"Income", "Amount"} <= set(report.drifted_features)
    page = html.read_text()
    features = [f.name for f in report.features]
    assert "Status" not in features and len(features) == len(lab.holdout.columns) - 1
    assert page.count('<svg class="chart"') == len(features)
    for f in features:
        assert f'data-column="{f}"' in page

    calm = lab.ws.lab.drift(lab.admin, P, lab.train_ref, lab.holdout)
    assert calm.verdict is DriftVerdict.NO_DRIFT, calm.drifted_features
    # the reference is computed once and stored encrypted
    assert lab.ws.lab.drift_reference(lab.admin, P, lab.train_ref).columns


# -- RBAC ---------------------------------------------------------------------------------------
def test_lab_rbac_engineer_trains_and_evaluates_reviewer_and_consumer_cannot(lab: Lab) -> None:
    engineer = lab.user("eve-ml", "ml-engineer")
    reviewer = lab.user("rex-review", "reviewer")
    consumer = lab.user("cora-consumer", "consumer")
    v = lab.ws.lab.train(engineer, P, "eng-scorer", LR_SPEC, lab.train_ref)
    assert v.created_by == "eve-ml"
    rec = lab.ws.lab.evaluate(engineer, P, v.ref, lab.eval_ref, suite=FAST_SUITE)
    assert rec.created_by == "eve-ml"
    assert lab.ws.lab.drift(engineer, P, lab.train_ref, lab.holdout).verdict

    for actor in (reviewer, consumer):
        with pytest.raises(AccessDenied):
            lab.ws.lab.train(actor, P, "sneaky", LR_SPEC, lab.train_ref)
        with pytest.raises(AccessDenied):
            lab.ws.lab.evaluate(actor, P, v.ref, lab.eval_ref, suite=FAST_SUITE)
    # the reviewer may read the evidence; the consumer may not
    assert [e.id for e in lab.ws.lab.evaluations(reviewer, P, v.ref)] == [rec.id]
    assert lab.ws.lab.statement(reviewer, P, rec)
    with pytest.raises(AccessDenied):
        lab.ws.lab.evaluations(consumer, P, v.ref)
    with pytest.raises(AccessDenied):
        lab.ws.lab.drift(consumer, P, lab.train_ref, lab.holdout)
    assert lab.ws.models.versions(lab.admin, P, "sneaky") == []


def test_training_run_lineage_fits_postgresql_columns(tmp_path: Path, postgres_url: str) -> None:
    # PostgreSQL enforces VARCHAR(64) where SQLite does not: a "sha256:"-prefixed
    # training-spec digest on the graph made every `bastion train` fail there.
    master = MasterKeySource.from_env_key(base64.b64encode(os.urandom(32)).decode())
    ws, token = Bastion.init(tmp_path / "ws", master, database_url=postgres_url)
    try:
        admin = ws.access.authenticate(token.secret)
        full = credit_data().drop_nulls().sample(fraction=1.0, shuffle=True, seed=5)
        ws.datasets.register_source(admin, P, "bureau", datasets=("credit",))
        ref = _ingest(ws, admin, full.head(600), tmp_path / "t.csv", label="Status",
                      sensitive=("Age",), positive_label="good")  # fmt: skip
        assert ref.endswith(":accepted"), ref
        v = ws.lab.train(admin, P, "pg-scorer", LR_SPEC, ref.split(":")[0])
        result = ws.lineage.verify(Node(NodeKind.MODEL_VERSION, v.lineage_id))
        assert result.ok, result.to_dict()
        assert NodeKind.TRAINING_RUN in {c.node.kind for c in result.checked}
    finally:
        ws.close()
