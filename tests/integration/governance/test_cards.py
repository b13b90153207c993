"""Model cards in a real workspace (SQLite): a trained, evaluated credit model,
versioned card edits through the one audited ``authorize``, facts from verified
signed statements, and the CycloneDX ML-BOM validated against the schema."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bastion.core.access.values import Actor, PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.crypto.keyring import MasterKeySource
from bastion.core.errors import AccessDenied
from bastion.data_security.service import IngestRequest
from bastion.demo.data_steps import credit_data
from bastion.governance.errors import CardInvalid
from bastion.governance.mlbom import ml_bom
from bastion.governance.render import render_html, render_markdown
from bastion.model_security.evaluation import AttackKind, RobustnessSuite
from bastion.model_security.lab import EVALUATION_PREDICATE
from bastion.model_security.signing import sign_statement
from bastion.model_security.values import ModelVersion
from bastion.workspace import Bastion

P = "default"
SPEC = "label: Status\nestimator: logistic_regression\nparams: {C: 1.0, max_iter: 300}\nseed: 7\n"
CARD = """\
intended_use: Rank credit applications for manual review.
out_of_scope_uses: [Automated rejection without a human]
owners: [alice@example.com]
risk_tier: high
limitations: [Trained on one bureau's applicants only]
"""


@dataclass
class Env:
    ws: Bastion
    admin: Actor
    model: ModelVersion

    def user(self, name: str, role: str) -> Actor:
        self.ws.access.create_principal(self.admin, name, PrincipalKind.USER)
        self.ws.access.bind(self.admin, name, role, P)
        return self.ws.access.authenticate(self.ws.access.create_token(self.admin, name).secret)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("cards")
    master = MasterKeySource.from_env_key(base64.b64encode(os.urandom(32)).decode())
    ws, token = Bastion.init(work / "ws", master)
    admin = ws.access.authenticate(token.secret)
    full = credit_data().drop_nulls().sample(fraction=1.0, shuffle=True, seed=3)
    ws.datasets.register_source(admin, P, "bureau", datasets=("credit",))
    refs = []
    for i, frame in enumerate((full.head(800), full.slice(800, 300))):
        path = work / f"b{i}.csv"
        frame.write_csv(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        kw = {"label": "Status", "sensitive": ("Age",), "positive_label": "good"} if i == 0 else {}
        res = ws.datasets.ingest(admin, IngestRequest(P, "credit", path, "bureau", digest, **kw))  # type: ignore[arg-type]
        assert res.accepted
        refs.append(res.version.ref)
    model = ws.lab.train(admin, P, "scorer", SPEC, refs[0])
    suite = RobustnessSuite(attacks=(AttackKind.FGSM,), eps=0.5, sample_size=20)
    ws.lab.evaluate(admin, P, model.ref, refs[1], sensitive=("Age",), suite=suite)
    try:
        yield Env(ws, admin, model)
    finally:
        ws.close()


def test_card_round_trip_versioning_and_audited_edits(env: Env) -> None:
    eng = env.user("eve-eng", "ml-engineer")
    first = env.ws.cards.edit(eng, P, env.model.ref, CARD)
    second = env.ws.cards.edit(
        eng, P, env.model.ref, CARD.replace("risk_tier: high", "risk_tier: limited")
    )
    assert (first.card_version, second.card_version) == (1, 2)
    card = env.ws.cards.card(env.admin, P, env.model.ref)
    assert card.card is not None and card.card.card_version == 2
    assert card.card.spec.risk_tier.value == "limited"
    old = env.ws.cards.card(env.admin, P, env.model.ref, card_version=1)
    assert old.card is not None and old.card.spec.risk_tier.value == "high"
    d = card.to_dict()
    assert d["intended_use"] == "Rank credit applications for manual review."
    assert d["owners"] == ["alice@example.com"]
    assert [h.card_version for h in env.ws.cards.history(env.admin, P, env.model.ref)] == [1, 2]
    edits = env.ws.audit.query(AuditQuery(action="card.edited", actor="eve-eng"))
    assert [json.loads(e.details)["card_version"] for e in edits] == [1, 2]
    assert json.loads(edits[0].details)["card_sha256"] == first.spec_sha256


def test_card_with_unknown_field_is_refused_audited_and_changes_nothing(env: Env) -> None:
    before = len(env.ws.cards.history(env.admin, P, env.model.ref))
    with pytest.raises(CardInvalid, match="unknown field 'metrics'"):
        env.ws.cards.edit(env.admin, P, env.model.ref, CARD + "metrics: {auc: 0.99}\n")
    assert len(env.ws.cards.history(env.admin, P, env.model.ref)) == before
    assert env.ws.audit.query(AuditQuery(action="card.refused"))


def test_card_edit_by_a_reviewer_is_refused_and_audited(env: Env) -> None:
    rev = env.user("rita-rev", "reviewer")
    with pytest.raises(AccessDenied):
        env.ws.cards.edit(rev, P, env.model.ref, CARD)
    denied = env.ws.audit.query(AuditQuery(action="card.edit", actor="rita-rev"))
    assert denied and denied[-1].outcome == "denied"
    env.ws.cards.card(rev, P, env.model.ref)  # a reviewer may read it


def test_card_html_injection_rendered_as_text(env: Env) -> None:
    evil = CARD.replace(
        "Rank credit",
        "<script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=y> Rank",
    )
    env.ws.cards.edit(env.admin, P, env.model.ref, evil)
    card = env.ws.cards.card(env.admin, P, env.model.ref)
    html_out, md_out = render_html(card), render_markdown(card)
    for out in (html_out, md_out):
        assert "<script>" not in out and "<img" not in out
        assert "&lt;script&gt;" in out
    assert "](javascript" not in md_out
    env.ws.cards.edit(env.admin, P, env.model.ref, CARD)


def test_evaluation_facts_come_from_the_verified_signed_statement(env: Env) -> None:
    card = env.ws.cards.card(env.admin, P, env.model.ref)
    (ev,) = card.facts.evaluations
    assert ev.verified and ev.problem is None
    assert "accuracy" in ev.result["metrics"]  # type: ignore[operator]
    assert any("bureau" in s for s in card.facts.training_data[0].sources)
    assert card.facts.scan_verdict == "safe"


def test_evaluation_result_inflated_in_the_database_does_not_reach_the_card(env: Env) -> None:
    before = env.ws.cards.card(env.admin, P, env.model.ref).facts.evaluations[0].result
    with env.ws.engine.begin() as c:
        c.execute(sa.text("UPDATE evaluations SET result = :r"),
                  {"r": json.dumps({"metrics": {"accuracy": 1.0}})})  # fmt: skip
    after = env.ws.cards.card(env.admin, P, env.model.ref).facts.evaluations[0].result
    assert after == before and after["metrics"]["accuracy"] != 1.0  # type: ignore[index]


def test_forged_evaluation_statement_signed_by_an_attacker_key_is_unverified(env: Env) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())  # fmt: skip
    m = env.model
    forged = sign_statement(
        EVALUATION_PREDICATE,
        {"result": {"metrics": {"accuracy": 0.999}}},
        [(f"model:{m.lineage_id}", m.root_digest)],
        pem,
    )
    digest = env.ws.blobs.put_bytes(forged).digest
    with env.ws.engine.begin() as c:
        original = c.execute(sa.text("SELECT statement_digest FROM evaluations")).scalar_one()
        c.execute(sa.text("UPDATE evaluations SET statement_digest = :d"), {"d": digest})
    try:
        card = env.ws.cards.card(env.admin, P, m.ref)
        (ev,) = card.facts.evaluations
        assert not ev.verified and ev.result == {} and ev.problem
        assert "UNVERIFIED" in render_markdown(card) and "0.999" not in render_markdown(card)
        assert "0.999" not in ml_bom(card)
    finally:
        with env.ws.engine.begin() as c:
            c.execute(sa.text("UPDATE evaluations SET statement_digest = :d"), {"d": original})


def test_ml_bom_validates_against_the_cyclonedx_schema(env: Env) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    card = env.ws.cards.card(env.admin, P, env.model.ref)
    text = ml_bom(card)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    doc = json.loads(text)
    subject = doc["metadata"]["component"]
    assert subject["type"] == "machine-learning-model"
    assert subject["hashes"][0]["content"] == env.model.root_digest
    assert subject["modelCard"]["considerations"]["useCases"]
    data = [c for c in doc["components"] if c["type"] == "data"]
    assert data[0]["hashes"][0]["content"] == env.model.trained_on[0].split("#")[1]
    libs = {c["name"] for c in doc["components"] if c["type"] == "library"}
    assert "scikit-learn" in libs
    props = {p["name"]: p["value"] for p in doc["metadata"]["properties"]}
    # a model trained by Bastion: the packages are the ones its training run recorded
    assert props["bastion:packages-source"] == "training-run-record"
