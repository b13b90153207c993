"""A dataset's audit policy: the thresholds of every ingestion check.

Stored as JSON on the dataset (editable by a data steward); unknown or
ill-typed fields are refused with the field named.

Example::

    policy = DatasetPolicy.from_json('{"poisoning": {"shift_alpha": 0.001}}')
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bastion.core.errors import BastionError, InputError
from bastion.data_security.checks.bias import BiasPolicy
from bastion.data_security.checks.pii import PiiPolicy
from bastion.data_security.checks.quality import QualityPolicy
from bastion.data_security.poisoning import PoisoningPolicy

T = TypeVar("T")


def _build(cls: type[T], section: str, overrides: dict[str, Any]) -> T:
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise InputError(
            f"policy section {section!r}: unknown field(s) {', '.join(unknown)}",
            hint=f"known fields: {', '.join(sorted(names))}",
        )
    values = dict(overrides)
    if cls is PiiPolicy and "declared_columns" in values:
        values["declared_columns"] = frozenset(values["declared_columns"])
    try:
        return cls(**values)
    except BastionError as e:
        raise InputError(f"policy section {section!r}: {e.message}") from e
    except (TypeError, ValueError) as e:
        raise InputError(f"policy section {section!r}: {e}") from e


class ErasureMode(enum.StrEnum):
    #: destroy the data keys of the versions an erasure supersedes (the default)
    SHRED = "shred"
    #: keep them (encrypted, never served): a legal hold or a retention duty
    RETAIN = "retain"


@dataclass(frozen=True)
class ErasurePolicy:
    """What an erasure request does with the versions it supersedes.

    ``retain`` needs a reason of at least 10 characters (e.g. "legal hold,
    case 2026-114"; GDPR Art. 17(3)(b) and (e) let a controller keep data a
    legal obligation or a legal claim requires): it is shown in every erasure
    report of the dataset."""

    mode: ErasureMode = ErasureMode.SHRED
    reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", ErasureMode(self.mode))
        if not isinstance(self.reason, str):
            raise InputError("erasure.reason must be text")
        if self.mode is ErasureMode.RETAIN and len(self.reason.strip()) < 10:
            raise InputError(
                "erasure.mode 'retain' needs a reason of at least 10 characters",
                hint='e.g. {"erasure": {"mode": "retain", "reason": "legal hold, case 2026-114"}}',
            )


@dataclass(frozen=True)
class DatasetPolicy:
    """All thresholds for one dataset; each section overrides the defaults."""

    quality: dict[str, Any] = field(default_factory=dict)
    pii: dict[str, Any] = field(default_factory=dict)
    bias: dict[str, Any] = field(default_factory=dict)
    poisoning: dict[str, Any] = field(default_factory=dict)
    positive_label: str | int | float | bool | None = None
    #: which source-lineage failures block (always true: fail closed)
    require_registered_source: bool = True
    #: erasure requests: {"mode": "shred"} (default) or {"mode": "retain", "reason": ...}
    erasure: dict[str, Any] = field(default_factory=dict)

    def quality_policy(self) -> QualityPolicy:
        return _build(QualityPolicy, "quality", self.quality)

    def pii_policy(self) -> PiiPolicy:
        return _build(PiiPolicy, "pii", self.pii)

    def bias_policy(self) -> BiasPolicy:
        return _build(BiasPolicy, "bias", self.bias)

    def poisoning_policy(self) -> PoisoningPolicy:
        return _build(PoisoningPolicy, "poisoning", self.poisoning)

    def erasure_policy(self) -> ErasurePolicy:
        return _build(ErasurePolicy, "erasure", self.erasure)

    def validate(self) -> DatasetPolicy:
        self.erasure_policy()
        self.quality_policy()
        self.pii_policy()
        self.bias_policy()
        self.poisoning_policy()
        return self

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, indent=2)

    @classmethod
    def from_json(cls, text: str) -> DatasetPolicy:
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise InputError(f"the policy is not valid JSON: {e}") from e
        if not isinstance(doc, dict):
            raise InputError("the policy must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise InputError(
                f"unknown policy section(s): {', '.join(unknown)}",
                hint=f"sections: {', '.join(sorted(known))}",
            )
        for section in ("quality", "pii", "bias", "poisoning", "erasure"):
            if not isinstance(doc.get(section, {}), dict):
                raise InputError(f"policy section {section!r} must be an object")
        return cls(**doc).validate()


__all__ = ["DatasetPolicy", "ErasureMode", "ErasurePolicy"]
