"""Value types of the model-security layer."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from bastion.core.canonical import JSON
from bastion.core.names import parse_ref


class Framework(enum.StrEnum):
    SKLEARN = "sklearn"
    ONNX = "onnx"
    PYTORCH = "pytorch"
    XGBOOST = "xgboost"
    LIGHTGBM = "lightgbm"
    KERAS = "keras"


class Stage(enum.StrEnum):
    DRAFT = "draft"
    CANDIDATE = "candidate"
    APPROVED = "approved"
    DEPLOYED = "deployed"
    RETIRED = "retired"


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: int | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        return cls(*parse_ref("model", text))


@dataclass(frozen=True)
class ManifestFile:
    path: str  # relative, POSIX
    digest: str
    size: int


@dataclass(frozen=True)
class ModelVersion:
    id: str
    project: str
    name: str
    version: int
    framework: Framework
    stage: Stage
    manifest: tuple[ManifestFile, ...]
    root_digest: str
    bundle_digest: str
    signer_key_id: str
    signer_identity: str
    signed_at: str
    scan_report: str
    trained_on: tuple[str, ...]  # dataset lineage ids with digests "p/ds@v#sha"
    training_run: str | None
    created_at: str
    created_by: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def lineage_id(self) -> str:
        return f"{self.project}/{self.name}@{self.version}"

    def to_dict(self) -> dict[str, JSON]:
        return {
            "id": self.id,
            "project": self.project,
            "name": self.name,
            "version": self.version,
            "framework": self.framework.value,
            "stage": self.stage.value,
            "files": [{"path": f.path, "sha256": f.digest, "size": f.size} for f in self.manifest],
            "root_digest": self.root_digest,
            "signer": {"key_id": self.signer_key_id, "identity": self.signer_identity},
            "signed_at": self.signed_at,
            "scan": json.loads(self.scan_report),
            "trained_on": list(self.trained_on),
            "training_run": json.loads(self.training_run) if self.training_run else None,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class EvaluationRecord:
    id: str
    project: str
    model: str
    version: int
    dataset_ref: str
    dataset_digest: str
    result: str
    statement_digest: str
    created_at: str
    created_by: str

    def to_dict(self) -> dict[str, JSON]:
        return {
            "id": self.id,
            "model": f"{self.model}@{self.version}",
            "dataset": self.dataset_ref,
            "dataset_digest": self.dataset_digest,
            "result": json.loads(self.result),
            "statement_digest": self.statement_digest,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


__all__ = [
    "EvaluationRecord",
    "Framework",
    "ManifestFile",
    "ModelRef",
    "ModelVersion",
    "Stage",
]
