"""Layer-2 steps of the demo: train, scan, sign, evaluate, refuse tampering, see drift.

One function per control.  Each requires the specific evidence it shows: the
evaluation must have run at least one adversarial attack, the tampered copy
must be refused for exactly the changed file, the extra file (added to an
*untampered* copy that verifies first) for exactly that file.

Example::

    run_models(Runner(print), state, data_story)
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import polars as pl

from bastion.core.lineage.graph import Node, NodeKind
from bastion.data_security.service import IngestRequest
from bastion.demo.data_steps import DATASET, PROJECT, SOURCE, DataStory
from bastion.demo.foundation import DemoState
from bastion.demo.runner import DemoFailed, Runner, expect
from bastion.model_security.errors import ArtifactMismatch, MaliciousArtifact
from bastion.model_security.evaluation import RobustnessSuite
from bastion.model_security.lab import EVALUATION_PREDICATE
from bastion.model_security.registry import RegisterRequest, signer_identity
from bastion.model_security.signing import AllowedIdentities, MismatchKind, verify_statement
from bastion.model_security.values import Framework

MODEL = "credit-scorer"
SPEC = """\
label: Status
estimator: gradient_boosting
sensitive: [Age]
params: {max_depth: 3, n_estimators: 150}
seed: 7
"""


@dataclass
class ModelStory:
    data: DataStory
    model: str = ""
    evaluation: str = ""
    drift_html: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def ref(self) -> str:
        if not self.model:
            raise DemoFailed("no model: the training step did not succeed")
        return self.model


class _Payload:
    """A pickle payload that would run a shell command on load (never loaded here)."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, (f"touch {self.canary}",))


def train(st: DemoState, story: ModelStory) -> list[str]:
    v = st.ws.lab.train(st.admin, PROJECT, MODEL, SPEC, story.data.accepted_ref)
    run = json.loads(v.training_run or "{}")
    scan = json.loads(v.scan_report)
    expect(scan.get("verdict") == "safe", f"the trained model scanned {scan.get('verdict')!r}")
    expect(bool(v.signer_key_id), "the trained model is not signed")
    story.model = v.ref
    return [
        f"{v.ref} trained on {story.data.accepted_ref} (all accepted batches up to it), "
        f"holdout accuracy {run['holdout'].get('accuracy')}",
        f"scanned ({scan.get('verdict')}), signed by {v.signer_key_id} (OpenSSF model-signing)",
        f"code digest {run['code_digest'][:16]}…, "
        f"data digest {v.trained_on[0].split('#')[1][:16]}…",
    ]


def _eval_batch(st: DemoState, story: ModelStory) -> str:
    path = st.work / "batch-eval.csv"
    story.data.holdout.slice(800, 400).write_csv(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    res = st.ws.datasets.ingest(st.admin, IngestRequest(PROJECT, DATASET, path, SOURCE, digest))
    expect(res.accepted, "the evaluation batch was quarantined:\n" + res.report.render_text())
    return res.version.ref


def evaluate(st: DemoState, story: ModelStory) -> list[str]:
    eval_ref = _eval_batch(st, story)
    rec = st.ws.lab.evaluate(
        st.admin, PROJECT, story.ref(), eval_ref,
        sensitive=("Age",), immutable=("Age",), suite=RobustnessSuite(sample_size=100),
    )
    result = json.loads(rec.result)
    attacks = (result.get("robustness") or {}).get("attacks", [])
    ran = [a for a in attacks if a["status"] == "ran" and a["n_attacked"] > 0]
    skipped = [f"{a['attack']} ({a.get('reason', 'skipped')})" for a in attacks if a not in ran]
    expect(bool(ran), f"no adversarial attack ran (skipped: {', '.join(skipped) or 'none'})")
    expect(bool(result.get("fairness")), "no fairness result for Age")
    bundle = st.ws.lab.statement(st.admin, PROJECT, rec)
    statement = verify_statement(
        bundle,
        st.ws.models.trusted_keys(PROJECT),
        AllowedIdentities.of([signer_identity(PROJECT)]),
        predicate_type=EVALUATION_PREDICATE,
    )
    fair = result["fairness"][0]
    story.evaluation = rec.id
    return [
        f"accuracy {result['metrics']['accuracy']}, ROC-AUC {result['metrics'].get('roc_auc')}",
        "fairness (Age): demographic-parity difference "
        f"{fair['demographic_parity_difference']}, "
        f"equalized-odds difference {fair['equalized_odds_difference']}",
        *(
            f"attack {a['attack']} ran: success rate {a['success_rate']}, adversarial "
            f"accuracy {a['adversarial_accuracy']} (Age immutable)"
            for a in ran
        ),
        *(f"attack skipped: {s}" for s in skipped),
        "signed in-toto statement verified; subjects: "
        + ", ".join(s.name for s in statement.subjects),
    ]


def _fresh_copy(st: DemoState, story: ModelStory, name: str) -> Path:
    """An untampered copy of the signed model, verified before any attack on it."""
    copy = st.work / name
    with st.ws.models.checkout(st.admin, PROJECT, story.ref()) as (_, root):
        shutil.copytree(root, copy)
    st.ws.models.verify(st.admin, PROJECT, story.ref(), copy)
    return copy


def _refusal(st: DemoState, story: ModelStory, copy: Path) -> ArtifactMismatch:
    try:
        st.ws.models.verify(st.admin, PROJECT, story.ref(), copy)
    except ArtifactMismatch as e:
        return e
    raise DemoFailed(f"the altered copy {copy.name} verified")


def tampered_copy(st: DemoState, story: ModelStory) -> list[str]:
    copy = _fresh_copy(st, story, "tampered-model")
    target = next(copy.rglob("*.joblib"))
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    e = _refusal(st, story, copy)
    name = target.relative_to(copy).as_posix()
    found = [(m.kind, m.name) for m in e.mismatches]
    expect(found == [(MismatchKind.DIGEST, name)], f"expected a digest mismatch of {name}: {found}")
    m = e.mismatches[0]
    return [
        "untampered copy verified first; then one byte of "
        f"{name} flipped",
        f"refused: digest mismatch for {m.name}: signed {m.expected[:16]}…, "
        f"found {m.actual[:16]}…",
    ]


def extra_file(st: DemoState, story: ModelStory) -> list[str]:
    copy = _fresh_copy(st, story, "extra-file-model")
    (copy / "backdoor.py").write_text("print('hi')\n")
    e = _refusal(st, story, copy)
    found = [(m.kind, m.name) for m in e.mismatches]
    expect(found == [(MismatchKind.EXTRA, "backdoor.py")], f"expected only the extra file: {found}")
    return [
        "untampered copy verified first; then backdoor.py added",
        f"refused: {e.mismatches[0].describe()}",
    ]


def malicious_model(st: DemoState, story: ModelStory) -> list[str]:
    import joblib

    canary = st.work / "PWNED"
    evil = st.work / "evil-model"
    evil.mkdir()
    joblib.dump({"model": _Payload(canary)}, evil / "model.joblib")
    try:
        st.ws.models.register(
            st.admin, RegisterRequest(PROJECT, "evil-scorer", evil, Framework.SKLEARN)
        )
    except MaliciousArtifact as e:
        expect(not canary.exists(), "the payload RAN during scanning")
        return [
            f"refused: {e.message[:160]}",
            "payload never executed; bytes kept encrypted for forensics",
        ]
    raise DemoFailed("a malicious pickle was registered")


def drift(st: DemoState, story: ModelStory) -> list[str]:
    live = story.data.holdout.slice(800, 400).with_columns(
        (pl.col("Income") * 1.8).alias("Income"), (pl.col("Amount") * 1.5).alias("Amount")
    )
    html = st.work / "drift-report.html"
    report = st.ws.lab.drift(st.admin, PROJECT, story.data.accepted_ref, live, html=html)
    drifted = list(report.drifted_features)
    expect({"Income", "Amount"} <= set(drifted), f"drift not detected: {drifted}")
    story.drift_html = str(html)
    return [f"{report.verdict.value}: drifted {', '.join(drifted)}", f"HTML report: {html}"]


def model_lineage(st: DemoState, story: ModelStory) -> list[str]:
    result = st.ws.lineage.verify(Node(NodeKind.MODEL_VERSION, f"{PROJECT}/{story.ref()}"))
    expect(result.ok, f"model lineage failed: {result.to_dict()}")
    kinds = sorted({v.node.kind for v in result.checked})
    return [f"{len(result.checked)} artifacts verified from source to model ({', '.join(kinds)})"]


MODELS: tuple[tuple[str, Callable[[DemoState, ModelStory], list[str]]], ...] = (
    ("train on accepted data; scan and sign", train),
    ("evaluate: metrics, fairness, at least one adversarial attack; signed evidence", evaluate),
    ("tampered model copy refused for the changed file", tampered_copy),
    ("extra file in an untampered copy refused", extra_file),
    ("malicious pickle refused without executing it", malicious_model),
    ("lineage verified from source to model", model_lineage),
)
#: run after governance: an open drift alert on the training data fails the release gate
MONITORING: tuple[tuple[str, Callable[[DemoState, ModelStory], list[str]]], ...] = (
    ("drift in live inputs detected", drift),
)


def run_models(r: Runner, st: DemoState, data: DataStory) -> ModelStory:
    story = ModelStory(data)
    for name, control in MODELS:
        r.step("model", name, partial(control, st, story))
    return story


def run_monitoring(r: Runner, st: DemoState, story: ModelStory) -> None:
    for name, control in MONITORING:
        r.step("model", name, partial(control, st, story))


__all__ = ["MODEL", "MODELS", "MONITORING", "SPEC", "ModelStory", "run_models", "run_monitoring"]
