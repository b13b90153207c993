"""What binds training-run and evaluation nodes in the lineage graph.

- A ``training_run`` node (``<project>/<model>@<n>/run``) is bound by its spec
  and its inputs: the run recorded with the model version must hold a spec
  whose canonical digest is the node's digest, and the dataset versions on the
  graph's ``input`` edges must be exactly the ones the run and the model
  version name (same ids, same content digests).  A run recorded without its
  spec (registered from outside) is reported unverifiable.
- An ``evaluation`` node's digest is the digest of its signed statement blob,
  which is re-read, authenticated and re-hashed.

Example::

    graph.register_binder(NodeKind.TRAINING_RUN, training_run_binder(model_repo, graph))
    graph.register_rehash(NodeKind.EVALUATION, blob_rehash(blobs))
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Protocol

from pydantic import ValidationError

from bastion.core.errors import NotFound, VerificationFailed
from bastion.core.lineage.graph import Binder, LineageGraph, Node, NodeUnverifiable, Rehash
from bastion.model_security.training.spec import TrainingSpec
from bastion.model_security.values import ModelRef, ModelVersion


class _Versions(Protocol):
    def version(self, project: str, name: str, number: int) -> ModelVersion | None: ...


class _Chunks(Protocol):
    def iter_chunks(self, digest: str) -> Iterator[bytes]: ...


def training_run_binder(versions: _Versions, graph: LineageGraph) -> Binder:
    def bind(node: Node) -> str:
        v = _version_of(versions, node)
        if not v.training_run:
            raise VerificationFailed(f"{v.lineage_id} records no training run")
        run = json.loads(v.training_run)
        if not isinstance(run, dict) or "spec" not in run:
            raise NodeUnverifiable(f"the run of {v.lineage_id} was recorded without its spec")
        try:
            digest = TrainingSpec.model_validate(run["spec"]).digest()
        except ValidationError as e:
            raise VerificationFailed(f"the recorded spec of {v.lineage_id} is invalid: {e}") from e
        if digest != run.get("spec_digest") or digest.removeprefix("sha256:") != node.digest:
            raise VerificationFailed(
                f"the spec of {v.lineage_id} hashes to {digest}, not the recorded "
                f"{node.digest}"
            )
        inputs = {(e.src.id, e.src.digest) for e in graph.edges_into(node) if e.relation == "input"}
        recorded = {(str(d.get("dataset")), d.get("sha256")) for d in run.get("data", [])}
        trained_on = {tuple(t.split("#", 1)) for t in v.trained_on}
        if not inputs or inputs != recorded or inputs != trained_on:
            raise VerificationFailed(
                f"the inputs of {v.lineage_id}'s training run on the graph "
                f"({sorted(i for i, _ in inputs)}) differ from the recorded ones "
                f"({sorted(i for i, _ in recorded)})"
            )
        return f"training spec {digest[:19]}… and {len(inputs)} input(s)"

    return bind


def blob_rehash(blobs: _Chunks) -> Rehash:
    def rehash(node: Node) -> str | None:
        if node.digest is None:
            return None
        h = hashlib.sha256()
        for chunk in blobs.iter_chunks(node.digest):
            h.update(chunk)
        return h.hexdigest()

    return rehash


def _version_of(versions: _Versions, node: Node) -> ModelVersion:
    base = node.id.removesuffix("/run")
    project, _, ref = base.partition("/")
    r = ModelRef.parse(ref)
    v = versions.version(project, r.name, r.version) if r.version is not None else None
    if v is None:
        raise NotFound(f"no model version {base!r} for training run {node.id!r}")
    return v


__all__ = ["blob_rehash", "training_run_binder"]
