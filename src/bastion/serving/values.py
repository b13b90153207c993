"""Value types of the serving layer: endpoints, deployments, the input schema, the
response policy.  An endpoint's history is its deployments, oldest first, kept forever.

Example::

    d.ref            # "scorer@3"
    d.state          # DeploymentState.ACTIVE
    schema.columns   # ("Seniority", "Income", ...) in the order the model wants them
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from bastion.core.canonical import JSON
from bastion.serving.canary_values import Canary
from bastion.serving.ood import OodPolicy, OodReference


class DeploymentState(enum.StrEnum):
    ACTIVE = "active"  # in service now (one per endpoint)
    SUPERSEDED = "superseded"  # replaced by a later deploy: a stable version to roll back to
    ROLLED_BACK = "rolled_back"  # taken out by a rollback: not a rollback target
    REVOKED = "revoked"  # its signature or scan no longer passes: out of service for good
    CANARY = "canary"  # served to a share of the traffic beside the active one (a canary)


class FieldKind(enum.StrEnum):
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    STRING = "string"


@dataclass(frozen=True)
class FieldSpec:
    """One input field: its type, whether it may be null, its range or its categories."""

    name: str
    kind: FieldKind
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, JSON]:
        return {"name": self.name, "kind": self.kind.value, "nullable": self.nullable,
                "minimum": self.minimum, "maximum": self.maximum,
                "allowed": list(self.allowed) if self.allowed is not None else None}

    @classmethod
    def from_dict(cls, d: dict[str, JSON]) -> FieldSpec:
        allowed = d.get("allowed")
        lo, hi = d.get("minimum"), d.get("maximum")
        return cls(str(d["name"]), FieldKind(str(d["kind"])), bool(d.get("nullable")),
                   float(lo) if isinstance(lo, int | float) else None,
                   float(hi) if isinstance(hi, int | float) else None,
                   tuple(str(a) for a in allowed) if isinstance(allowed, list) else None)


@dataclass(frozen=True)
class InputSchema:
    """The request rows an endpoint accepts, derived from the training data's contract."""

    fields: tuple[FieldSpec, ...]
    source: str  # "project/dataset contract vN" it was derived from
    #: the training distribution's bands (serving/ood.py), fixed at deploy time
    ood: OodReference | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def to_json(self) -> str:
        doc: dict[str, JSON] = {"source": self.source,
                                "fields": [f.to_dict() for f in self.fields]}
        if self.ood is not None:
            doc["ood"] = self.ood.to_dict()
        return json.dumps(doc, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> InputSchema:
        doc = json.loads(text)
        ood = OodReference.from_dict(doc["ood"]) if isinstance(doc.get("ood"), dict) else None
        return cls(tuple(FieldSpec.from_dict(f) for f in doc["fields"]), str(doc["source"]),
                   ood)


@dataclass(frozen=True)
class ResponsePolicy:
    """What a prediction answer reveals: raw scores ease model extraction."""

    decimals: int = 2  # scores rounded to this many decimals
    scores: bool = True  # False: the decision only
    ood: OodPolicy = OodPolicy.FLAG  # rows far outside the training data: flag or refuse

    def to_json(self) -> str:
        return json.dumps({"decimals": self.decimals, "scores": self.scores,
                           "ood": self.ood.value}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ResponsePolicy:
        doc = json.loads(text)
        return cls(int(doc["decimals"]), bool(doc["scores"]),
                   OodPolicy(doc.get("ood", OodPolicy.FLAG.value)))


@dataclass(frozen=True)
class Deployment:
    id: str
    project: str
    endpoint: str
    seq: int  # position in the endpoint's history (1, 2, ...)
    model: str
    version: int
    root_digest: str  # the signed root digest verified at deploy time
    state: DeploymentState
    schema: InputSchema
    policy: ResponsePolicy
    gate: str  # JSON: the release gate's verdict summary
    created_at: str
    created_by: str
    reason: str = ""  # "deploy", "rollback to #2", ...
    ended_at: str | None = None
    ended_by: str | None = None
    end_reason: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    def to_dict(self) -> dict[str, JSON]:
        return {
            "id": self.id, "endpoint": self.endpoint, "seq": self.seq, "model": self.ref,
            "root_digest": self.root_digest, "state": self.state.value,
            "reason": self.reason, "created_at": self.created_at, "created_by": self.created_by,
            "ended_at": self.ended_at, "ended_by": self.ended_by, "end_reason": self.end_reason,
            "gate": json.loads(self.gate), "input_fields": list(self.schema.columns),
        }


@dataclass(frozen=True)
class EndpointStatus:
    project: str
    endpoint: str
    active: Deployment | None
    history: tuple[Deployment, ...]  # oldest first
    canary: Canary | None = None  # the latest canary release (running or ended)

    def to_dict(self) -> dict[str, JSON]:
        return {"project": self.project, "endpoint": self.endpoint,
                "active": self.active.to_dict() if self.active else None,
                "history": [d.to_dict() for d in self.history],
                "canary": self.canary.to_dict() if self.canary else None}


__all__ = [
    "Deployment",
    "DeploymentState",
    "EndpointStatus",
    "FieldKind",
    "FieldSpec",
    "InputSchema",
    "ResponsePolicy",
]
