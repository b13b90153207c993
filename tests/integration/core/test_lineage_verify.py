"""``lineage verify`` can fail: missing nodes, broken bindings, nothing counted unchecked.

One SQLite workspace per module holds a registered source, an accepted credit
batch and a model trained on it (source -> raw batch -> dataset version ->
training run -> model version).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from bastion.core.access.values import Actor
from bastion.core.crypto.keyring import MasterKeySource
from bastion.core.lineage.graph import CheckStatus, LineageVerification, Node, NodeKind
from bastion.data_security.service import IngestRequest
from bastion.demo.data_steps import credit_data
from bastion.model_security.values import ModelVersion
from bastion.workspace import Bastion
from conftest import CLI

P = "default"
SPEC = """\
label: Status
estimator: logistic_regression
sensitive: [Age]
params: {C: 1.0, max_iter: 300}
seed: 7
"""


@dataclass
class Graph:
    ws: Bastion
    admin: Actor
    dataset_ref: str
    model: ModelVersion


@pytest.fixture(scope="module")
def g(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Graph]:
    work = tmp_path_factory.mktemp("lineage")
    master = MasterKeySource.from_env_key(base64.b64encode(os.urandom(32)).decode())
    ws, token = Bastion.init(work / "ws", master)
    admin = ws.access.authenticate(token.secret)
    ws.datasets.register_source(admin, P, "bureau", datasets=("credit",))
    path = work / "train.csv"
    credit_data().drop_nulls().head(600).write_csv(path)
    res = ws.datasets.ingest(
        admin,
        IngestRequest(P, "credit", path, "bureau", hashlib.sha256(path.read_bytes()).hexdigest(),
                      label="Status", sensitive=("Age",), positive_label="good"),
    )
    assert res.accepted, res.report.render_text()
    model = ws.lab.train(admin, P, "scorer", SPEC, res.version.ref)
    try:
        yield Graph(ws, admin, res.version.ref, model)
    finally:
        ws.close()


def statuses(result: LineageVerification) -> dict[str, CheckStatus]:
    return {v.node.kind: v.status for v in result.checked}


def model_node(g: Graph) -> Node:
    return Node(NodeKind.MODEL_VERSION, g.model.lineage_id)


def sql(g: Graph, statement: str, **params: object) -> None:
    with g.ws.engine.begin() as c:
        c.execute(sa.text(statement), params)


# -- missing nodes --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "node_id"),
    [
        (NodeKind.DATASET_VERSION, f"{P}/credit@99"),
        (NodeKind.MODEL_VERSION, f"{P}/ghost@1"),
        (NodeKind.SOURCE, f"{P}/never-registered"),
        (NodeKind.TRAINING_RUN, f"{P}/ghost@1/run"),
    ],
)
def test_lineage_verify_of_a_node_that_does_not_exist_fails(
    g: Graph, kind: str, node_id: str
) -> None:
    """It used to report OK (one node, "no stored artifact")."""
    result = g.ws.lineage.verify(Node(kind, node_id))
    assert not result.ok
    assert [v.status for v in result.checked] == [CheckStatus.MISSING]
    assert result.verified == 0


# -- every kind verified by what binds it ------------------------------------------------
def test_model_lineage_verifies_every_kind_by_what_binds_it(g: Graph) -> None:
    result = g.ws.lineage.verify(model_node(g))
    assert result.ok, result.to_dict()
    assert statuses(result) == {
        NodeKind.MODEL_VERSION: CheckStatus.VERIFIED,
        NodeKind.TRAINING_RUN: CheckStatus.VERIFIED,
        NodeKind.DATASET_VERSION: CheckStatus.VERIFIED,
        "raw_batch": CheckStatus.VERIFIED,
        NodeKind.SOURCE: CheckStatus.VERIFIED,
    }
    how = {v.node.kind: v.method or "" for v in result.checked}
    assert how[NodeKind.SOURCE].startswith("registration record")
    assert how[NodeKind.TRAINING_RUN].startswith("training spec")
    assert how[NodeKind.DATASET_VERSION] == "re-hashed"
    assert result.verified == len(result.checked) == 5


def test_node_kind_with_nothing_to_rehash_is_unverifiable_not_counted_as_verified(
    g: Graph,
) -> None:
    """A deployment node has no bytes and no binder: it used to count as verified."""
    deployment = Node(NodeKind.DEPLOYMENT, f"{P}/scoring-endpoint/1")
    g.ws.lineage.link(Node(NodeKind.MODEL_VERSION, g.model.lineage_id, g.model.root_digest),
                      deployment, "deployed")
    result = g.ws.lineage.verify(deployment)
    (dep,) = [v for v in result.checked if v.node.kind == NodeKind.DEPLOYMENT]
    assert dep.status is CheckStatus.UNVERIFIABLE and not dep.ok
    assert result.unverifiable == (dep,)
    assert result.verified == len(result.checked) - 1
    assert result.to_dict()["unverifiable"] == 1


def test_source_registration_row_deleted_attack_fails_lineage_verify(g: Graph) -> None:
    with g.ws.engine.begin() as c:
        rows = [dict(r._mapping) for r in c.execute(sa.text("SELECT * FROM sources"))]
        c.execute(sa.text("DELETE FROM sources WHERE name = 'bureau'"))
    try:
        result = g.ws.lineage.verify(Node(NodeKind.DATASET_VERSION, f"{P}/{g.dataset_ref}"))
        assert not result.ok
        assert statuses(result)[NodeKind.SOURCE] is CheckStatus.FAILED
    finally:
        with g.ws.engine.begin() as c:
            cols = list(rows[0])
            c.execute(
                sa.text(f"INSERT INTO sources ({', '.join(cols)}) "
                        f"VALUES ({', '.join(':' + k for k in cols)})"),
                rows,
            )
    assert g.ws.lineage.verify(Node(NodeKind.DATASET_VERSION, f"{P}/{g.dataset_ref}")).ok


def test_source_row_inserted_outside_bastion_attack_fails_lineage_verify(g: Graph) -> None:
    """A source written straight into the table has no registration on the audit log."""
    src = Node(NodeKind.SOURCE, f"{P}/forged")
    g.ws.lineage.link(src, Node("raw_batch", f"{P}/credit@77/raw", "ab" * 32), "delivered")
    sql(g, "INSERT INTO sources (project, name, description, trusted, require_checksum, "
           "created_at, created_by) VALUES ('default', 'forged', '', 1, 0, 'now', 'mallory')")
    result = g.ws.lineage.verify(src)
    assert not result.ok
    (v,) = result.checked
    assert v.status is CheckStatus.FAILED and "audit log" in (v.problem or "")


def test_training_spec_edited_in_the_database_attack_fails_lineage_verify(g: Graph) -> None:
    run = json.loads(g.model.training_run or "{}")
    forged = dict(run, spec=dict(run["spec"], params={"C": 1000.0, "max_iter": 300}))
    sql(g, "UPDATE model_versions SET training_run = :r WHERE id = :i",
        r=json.dumps(forged), i=g.model.id)
    try:
        result = g.ws.lineage.verify(model_node(g))
        assert not result.ok
        assert statuses(result)[NodeKind.TRAINING_RUN] is CheckStatus.FAILED
    finally:
        sql(g, "UPDATE model_versions SET training_run = :r WHERE id = :i",
            r=g.model.training_run, i=g.model.id)


def test_training_input_swapped_on_the_graph_attack_fails_lineage_verify(g: Graph) -> None:
    """An extra ``input`` edge claims the run also used another batch."""
    run_node = Node(NodeKind.TRAINING_RUN, f"{g.model.lineage_id}/run")
    other = Node(NodeKind.DATASET_VERSION, f"{P}/credit@42", "cd" * 32)
    g.ws.lineage.link(other, Node(run_node.kind, run_node.id,
                                  json.loads(g.model.training_run or "{}")["spec_digest"]),
                      "input")
    result = g.ws.lineage.verify(model_node(g))
    assert not result.ok
    assert statuses(result)[NodeKind.TRAINING_RUN] is CheckStatus.FAILED


def test_cli_lineage_verify_and_show_of_a_missing_node_fail(cli: CLI) -> None:
    assert cli.run("init").returncode == 0
    r = cli.run("lineage", "verify", "ghost@1", "--kind", "model_version")
    assert r.returncode == 4 and "MISSING model_version default/ghost@1" in r.stdout, r.output
    r = cli.run("lineage", "show", "ghost@1", "--kind", "model_version")
    assert r.returncode == 2 and "no model_version" in r.output, r.output
