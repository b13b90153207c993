"""Lineage from source to dataset version: shown, verified by re-hashing the real
(encrypted) bytes, tampering detected and named, exported as OpenLineage events."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from data_security_support import PROJECT, CreditWS, blob_path, synthetic_frame, write_frame

from bastion.core.lineage.graph import Node, NodeKind, TreeNode
from bastion.core.lineage.openlineage_export import export_events
from bastion.data_security.service import IngestRequest
from bastion.data_security.values import DatasetVersion


@dataclass(frozen=True)
class Chain:
    name: str
    first: DatasetVersion
    second: DatasetVersion


@pytest.fixture(scope="module")
def chain(credit: CreditWS) -> Iterator[Chain]:
    """Two accepted versions of a dataset of its own (its blobs get tampered with)."""
    marker = uuid.uuid4().hex
    name = f"lineage-{marker[:8]}"
    credit.ws.datasets.register_source(credit.steward, PROJECT, "ledger", datasets=(name,))
    out = []
    for i in range(2):
        path, digest = write_frame(
            synthetic_frame(marker, rows=200, seed=i, offset=500 * i), credit.path("ledger")
        )
        res = credit.ws.datasets.ingest(
            credit.steward, IngestRequest(PROJECT, name, path, "ledger", digest)
        )
        assert res.accepted, res.report.render_text()
        out.append(res.version)
    yield Chain(name, out[0], out[1])


def _node(v: DatasetVersion) -> Node:
    return Node(NodeKind.DATASET_VERSION, v.lineage_id)


def _flatten(tree: TreeNode) -> list[tuple[str, str, str | None]]:
    out = [(tree.node.kind, tree.node.id, tree.relation)]
    for child in tree.children:
        out.extend(_flatten(child))
    return out


def test_upstream_shows_source_raw_batch_and_parent(credit: CreditWS, chain: Chain) -> None:
    tree = credit.ws.lineage.upstream(_node(chain.second))
    assert tree.node.id == f"{PROJECT}/{chain.name}@2"
    edges = _flatten(tree)
    assert ("raw_batch", f"{PROJECT}/{chain.name}@2/raw", "parsed") in edges
    assert ("source", f"{PROJECT}/ledger", "delivered") in edges
    assert ("dataset_version", f"{PROJECT}/{chain.name}@1", "parent") in edges
    assert ("raw_batch", f"{PROJECT}/{chain.name}@1/raw", "parsed") in edges
    # recorded digests are the content digests of the stored blobs
    raw = next(c for c in tree.children if c.node.kind == "raw_batch")
    assert raw.node.digest == chain.second.raw_digest
    assert "ledger" in tree.render()


def test_lineage_verify_passes_on_untouched_data(credit: CreditWS, chain: Chain) -> None:
    result = credit.ws.lineage.verify(_node(chain.second))
    assert result.ok, result.to_dict()
    checked = {(v.node.kind, v.node.id) for v in result.checked if v.actual is not None}
    assert ("dataset_version", f"{PROJECT}/{chain.name}@2") in checked
    assert ("dataset_version", f"{PROJECT}/{chain.name}@1") in checked
    assert ("raw_batch", f"{PROJECT}/{chain.name}@1/raw") in checked


def _flip_byte(path: Path, offset: int) -> bytes:
    original = path.read_bytes()
    data = bytearray(original)
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    return original


@pytest.mark.parametrize("which", ["data", "raw"])
def test_tampered_blob_fails_lineage_verify_naming_the_node(
    credit: CreditWS, chain: Chain, which: str
) -> None:
    if which == "data":  # the encrypted Parquet of the newest version
        digest, bad = chain.second.data_digest, f"{PROJECT}/{chain.name}@2"
    else:  # the raw delivery of the parent, one hop up
        digest, bad = chain.first.raw_digest, f"{PROJECT}/{chain.name}@1/raw"
    enc = blob_path(credit.home, digest)
    original = _flip_byte(enc, len(enc.read_bytes()) // 2)
    try:
        result = credit.ws.lineage.verify(_node(chain.second))
        assert not result.ok
        failed = [v for v in result.checked if not v.ok]
        assert [v.node.id for v in failed] == [bad]
        assert failed[0].problem and failed[0].actual is None
        assert not result.to_dict()["ok"]
    finally:
        enc.write_bytes(original)
    assert credit.ws.lineage.verify(_node(chain.second)).ok


def test_openlineage_export_writes_run_events(
    credit: CreditWS, chain: Chain, tmp_path: Path
) -> None:
    out = tmp_path / "lineage.jsonl"
    edges = [e for e in credit.ws.lineage.edges() if e.dst.project == PROJECT]
    count = export_events(edges, file=out)
    lines = out.read_text().splitlines()
    assert count == len(lines) > 0
    events = [json.loads(line) for line in lines]
    for ev in events:
        assert ev["eventType"] == "COMPLETE"
        assert ev["schemaURL"].startswith("https://openlineage.io/spec/")
        assert ev["producer"].startswith("https://") and ev["eventTime"]
        uuid.UUID(ev["run"]["runId"])
        assert ev["job"]["namespace"] and ev["job"]["name"].startswith("bastion.")
        assert ev["inputs"] and len(ev["outputs"]) == 1
    second = next(e for e in events if e["outputs"][0]["name"] == chain.second.lineage_id)
    facet = second["outputs"][0]["facets"]["version"]
    assert facet["datasetVersion"] == f"sha256:{chain.second.data_digest}"
    assert facet["_producer"] and facet["_schemaURL"]
    inputs = {i["name"] for i in second["inputs"]}
    assert inputs == {f"{chain.second.lineage_id}/raw", chain.first.lineage_id}
    # the raw delivery's event names the registered source as its input
    raw = next(e for e in events if e["outputs"][0]["name"] == f"{chain.second.lineage_id}/raw")
    assert raw["job"]["name"] == "bastion.delivered"
    assert [i["name"] for i in raw["inputs"]] == [f"{PROJECT}/ledger"]
