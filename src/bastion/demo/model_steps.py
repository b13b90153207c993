"""Layer-2 steps of the demo: train, scan, sign, evaluate, refuse tampering, see drift."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import polars as pl

from bastion.core.lineage.graph import Node, NodeKind
from bastion.data_security.service import IngestRequest
from bastion.demo.data_steps import DATASET, PROJECT, SOURCE, DataStory
from bastion.demo.foundation import DemoState
from bastion.demo.runner import DemoFailed, Runner, expect
from bastion.model_security.errors import MaliciousArtifact, SignatureInvalid
from bastion.model_security.evaluation import RobustnessSuite
from bastion.model_security.lab import EVALUATION_PREDICATE
from bastion.model_security.registry import RegisterRequest, signer_identity
from bastion.model_security.signing import AllowedIdentities, verify_statement
from bastion.model_security.values import Framework

MODEL = "credit-scorer"
SPEC = """\
label: Status
estimator: gradient_boosting
sensitive: [Age]
params: {max_depth: 3, n_estimators: 150}
seed: 7
"""


class _Payload:
    """A pickle payload that would run a shell command on load (never loaded here)."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, (f"touch {self.canary}",))


def run_models(r: Runner, st: DemoState, story: DataStory) -> dict[str, str]:
    ws, admin = st.ws, st.admin
    out: dict[str, str] = {}

    def train() -> list[str]:
        v = ws.lab.train(admin, PROJECT, MODEL, SPEC, story.accepted_ref)
        run = json.loads(v.training_run or "{}")
        out["model"] = v.ref
        scan = json.loads(v.scan_report)
        return [
            f"{v.ref} trained on {story.accepted_ref} (all accepted batches up to it), "
            f"holdout accuracy {run['holdout'].get('accuracy')}",
            f"scanned ({scan.get('verdict')}), signed by {v.signer_key_id} (OpenSSF model-signing)",
            f"code digest {run['code_digest'][:16]}…, "
            f"data digest {v.trained_on[0].split('#')[1][:16]}…",
        ]

    def evaluate() -> list[str]:
        path = st.work / "batch-eval.csv"
        story.holdout.slice(800, 400).write_csv(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        res = ws.datasets.ingest(admin, IngestRequest(PROJECT, DATASET, path, SOURCE, digest))
        expect(res.accepted, "the evaluation batch was quarantined:\n" + res.report.render_text())
        out["eval_ref"] = res.version.ref
        rec = ws.lab.evaluate(
            admin,
            PROJECT,
            out["model"],
            res.version.ref,
            sensitive=("Age",),
            immutable=("Age",),
            suite=RobustnessSuite(sample_size=100),
        )
        result = json.loads(rec.result)
        bundle = ws.lab.statement(admin, PROJECT, rec)
        statement = verify_statement(
            bundle,
            ws.models.trusted_keys(PROJECT),
            AllowedIdentities.of([signer_identity(PROJECT)]),
            predicate_type=EVALUATION_PREDICATE,
        )
        attacks = result["robustness"]["attacks"] if result.get("robustness") else []
        ran = [a for a in attacks if a["status"] == "ran"]
        fair = result["fairness"][0]
        out["evaluation"] = rec.id
        return [
            f"accuracy {result['metrics']['accuracy']}, ROC-AUC {result['metrics'].get('roc_auc')}",
            "fairness (Age): demographic-parity difference "
            f"{fair['demographic_parity_difference']}, "
            f"equalized-odds difference {fair['equalized_odds_difference']}",
            *(
                f"attack {a['attack']}: success rate {a['success_rate']}, adversarial accuracy "
                f"{a['adversarial_accuracy']} (Age immutable)"
                for a in ran
            ),
            "signed in-toto statement verified; subjects: "
            + ", ".join(s.name for s in statement.subjects),
        ]

    def tampered_copy() -> list[str]:
        with ws.models.checkout(admin, PROJECT, out["model"]) as (_, root):
            copy = st.work / "tampered-model"
            shutil.copytree(root, copy)
        target = next(copy.rglob("*.joblib"))
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
        try:
            ws.models.verify(admin, PROJECT, out["model"], copy)
        except SignatureInvalid as e:
            evidence = [f"tampered copy refused: {e.message.splitlines()[0][:150]}"]
        else:
            raise DemoFailed("a tampered model copy verified")
        (copy / "backdoor.py").write_text("print('hi')\n")
        target.write_bytes(bytes(data))
        try:
            ws.models.verify(admin, PROJECT, out["model"], copy)
            raise DemoFailed("an extra file was accepted")
        except SignatureInvalid:
            evidence.append("extra file in the model folder refused")
        return evidence

    def malicious_model() -> list[str]:
        canary = st.work / "PWNED"
        evil = st.work / "evil-model"
        evil.mkdir()
        import joblib

        joblib.dump({"model": _Payload(canary)}, evil / "model.joblib")
        try:
            ws.models.register(
                admin, RegisterRequest(PROJECT, "evil-scorer", evil, Framework.SKLEARN)
            )
        except MaliciousArtifact as e:
            expect(not canary.exists(), "the payload RAN during scanning")
            return [
                f"refused: {e.message[:160]}",
                "payload never executed; bytes kept encrypted for forensics",
            ]
        raise DemoFailed("a malicious pickle was registered")

    def drift() -> list[str]:
        live = story.holdout.slice(800, 400).with_columns(
            (pl.col("Income") * 1.8).alias("Income"), (pl.col("Amount") * 1.5).alias("Amount")
        )
        html = st.work / "drift-report.html"
        report = ws.lab.drift(admin, PROJECT, story.accepted_ref, live, html=html)
        drifted = list(report.drifted_features)
        expect({"Income", "Amount"} <= set(drifted), f"drift not detected: {drifted}")
        out["drift_html"] = str(html)
        return [f"{report.verdict.value}: drifted {', '.join(drifted)}", f"HTML report: {html}"]

    def model_lineage() -> list[str]:
        result = ws.lineage.verify(Node(NodeKind.MODEL_VERSION, f"{PROJECT}/{out['model']}"))
        expect(result.ok, f"model lineage failed: {result.to_dict()}")
        kinds = sorted({v.node.kind for v in result.checked})
        return [
            f"{len(result.checked)} artifacts re-hashed from source to model ({', '.join(kinds)})"
        ]

    r.step("model", "train on accepted data; scan and sign", train)
    r.step("model", "evaluate: metrics, fairness, adversarial; signed evidence", evaluate)
    r.step("model", "tampered model copy refused", tampered_copy)
    r.step("model", "malicious pickle refused without executing it", malicious_model)
    r.step("model", "drift in live inputs detected", drift)
    r.step("model", "lineage verified from source to model", model_lineage)
    return out


__all__ = ["MODEL", "SPEC", "run_models"]
