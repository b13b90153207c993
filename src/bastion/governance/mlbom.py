"""The CycloneDX 1.6 ML-BOM of a model version.

The model is a ``machine-learning-model`` component (the BOM's subject) with its
``modelCard``; each training dataset version is a ``data`` component with its
SHA-256; the Python packages of the training environment are ``library``
components with PyPI purls — from the training-run record when it holds them,
else this interpreter's environment; the BOM property ``bastion:packages-source``
says which.  cyclonedx-python-lib builds and serialises the BOM; it does not yet
model ``modelCard``, so the card is added to the serialised JSON and the final
document is validated with the library's strict JSON-schema validator before it
is returned (an invalid BOM is a :class:`BomInvalid`, never shipped).

Example::

    text = ml_bom(card)   # JSON, validated against bom-1.6 (strict)
"""

from __future__ import annotations

import json
from typing import Any

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from bastion.governance.errors import BomInvalid
from bastion.governance.render import evidence_rows
from bastion.governance.values import ModelCard

_MODEL_REF = "model"


def _sha(digest: str) -> list[HashType]:
    return [HashType(alg=HashAlgorithm.SHA_256, content=digest)] if digest else []


def ml_bom(card: ModelCard) -> str:
    f = card.facts
    name, _, version = f.model.partition("@")
    model = Component(
        type=ComponentType.MACHINE_LEARNING_MODEL, name=f"{f.project}/{name}", version=version,
        bom_ref=_MODEL_REF, hashes=_sha(f.root_digest),
        properties=[Property(name="bastion:framework", value=f.framework),
                    Property(name="bastion:signer", value=f.signer_identity),
                    Property(name="bastion:scan", value=f.scan_verdict)],
    )  # fmt: skip
    bom = Bom()
    bom.metadata.component = model
    bom.metadata.properties.add(Property(name="bastion:packages-source", value=f.packages.source))
    data_refs = []
    for i, t in enumerate(f.training_data):
        ds, _, dv = t.dataset_version.partition("@")
        ref = f"data-{i}"
        data_refs.append(ref)
        bom.components.add(Component(
            type=ComponentType.DATA, name=ds, version=dv, bom_ref=ref, hashes=_sha(t.sha256),
            properties=[Property(name="bastion:source", value=s) for s in t.sources],
        ))  # fmt: skip
    for pkg, ver in f.packages.items:
        bom.components.add(Component(
            type=ComponentType.LIBRARY, name=pkg, version=ver, bom_ref=f"pypi-{pkg}-{ver}",
            purl=PackageURL("pypi", name=pkg, version=ver),
        ))  # fmt: skip
    doc: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
    doc["metadata"]["component"]["modelCard"] = _model_card(card, data_refs)
    text = json.dumps(doc, indent=2)
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise BomInvalid(f"the ML-BOM of {f.model} fails the CycloneDX 1.6 schema: {error}")
    return text


def _model_card(card: ModelCard, data_refs: list[str]) -> dict[str, Any]:
    f, c = card.facts, card.card
    params: dict[str, Any] = {"datasets": [{"ref": r} for r in data_refs]}
    if f.task:
        params["approach"] = {"type": "supervised"}
        params["task"] = f.task
    if f.estimator:
        params["architectureFamily"] = f.estimator
    metrics = [
        {"type": f"{kind}: {metric}", "value": value, "slice": dataset}
        for dataset, kind, metric, value in evidence_rows(card)
    ]
    props = [{"name": "bastion:evaluation",
              "value": f"{e.statement_sha256} {'verified' if e.verified else 'UNVERIFIED'}"}
             for e in f.evaluations]  # fmt: skip
    out: dict[str, Any] = {"bom-ref": "model-card", "modelParameters": params}
    if metrics:
        out["quantitativeAnalysis"] = {"performanceMetrics": metrics}
    if c is not None:
        out["considerations"] = {
            "useCases": [c.spec.intended_use],
            "technicalLimitations": list(c.spec.limitations),
        }
        props += [{"name": "bastion:risk-tier", "value": c.spec.risk_tier.value},
                  {"name": "bastion:card-version", "value": str(c.card_version)},
                  {"name": "bastion:card-sha256", "value": c.spec_sha256}]  # fmt: skip
        props += [{"name": "bastion:owner", "value": o} for o in c.spec.owners]
        props += [
            {"name": "bastion:out-of-scope-use", "value": u} for u in c.spec.out_of_scope_uses
        ]
    if props:
        out["properties"] = props
    return out


__all__ = ["ml_bom"]
