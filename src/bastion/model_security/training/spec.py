"""The training spec: a small YAML / JSON / TOML document that says what to train.

Example (YAML)::

    label: default
    estimator: logistic_regression
    params: {C: 0.5}
    sensitive: [gender]          # excluded from features, kept for fairness
    exclude: [applicant_id]
    categorical: [region_code]   # numeric codes treated as categories
    test_fraction: 0.25
    seed: 7

``parse_spec(text, "yaml")`` returns a validated, frozen :class:`TrainingSpec`;
every problem is reported at once with its field path in a
:class:`~bastion.model_security.errors.TrainingSpecInvalid`.
"""

from __future__ import annotations

import enum
import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bastion.model_security.errors import TrainingSpecInvalid
from bastion.model_security.evaluation.metrics import Task
from bastion.model_security.training.estimators import EstimatorKind, ParamValue, check_params


class CategoricalEncoding(enum.StrEnum):
    ONEHOT = "onehot"  # OneHotEncoder(handle_unknown="ignore")
    ORDINAL = "ordinal"  # OrdinalEncoder, unknown -> -1 (fine for trees)


class SpecFormat(enum.StrEnum):
    YAML = "yaml"
    JSON = "json"
    TOML = "toml"


class TrainingSpec(BaseModel):
    """What to train: label, features, estimator and its hyper-parameters, split and seed."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)

    label: str = Field(min_length=1)
    estimator: EstimatorKind
    task: Task = Task.CLASSIFICATION
    features: tuple[str, ...] | None = None  # None: every column but label / exclude / sensitive
    exclude: tuple[str, ...] = ()
    sensitive: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()  # numeric columns to treat as categories
    categorical_encoding: CategoricalEncoding = CategoricalEncoding.ONEHOT
    params: dict[str, ParamValue] = Field(default_factory=dict, validate_default=True)
    test_fraction: float = Field(default=0.25, gt=0.0, lt=1.0)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)

    @field_validator("features", "exclude", "sensitive", "categorical")
    @classmethod
    def _unique(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None:
            duplicates = sorted({v for v in value if value.count(v) > 1})
            if duplicates:
                raise ValueError(f"duplicate column names: {', '.join(duplicates)}")
        return value

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, ParamValue], info: ValidationInfo) -> dict[str, ParamValue]:
        # a field validator (not the model one) so these show up beside other field errors
        kind, task = info.data.get("estimator"), info.data.get("task")
        if isinstance(kind, EstimatorKind) and isinstance(task, Task):
            problems = check_params(kind, task, value)
            if problems:
                raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TrainingSpec:
        problems: list[str] = []
        for group in ("features", "exclude", "sensitive", "categorical"):
            if self.label in (getattr(self, group) or ()):
                problems.append(f"{group}: must not contain the label column {self.label!r}")
        overlap = set(self.features or ()) & set(self.sensitive)
        if overlap:
            problems.append(
                f"features and sensitive overlap ({', '.join(sorted(overlap))}): sensitive "
                "columns are kept out of the model and only used for fairness"
            )
        if self.features is not None and not self.features:
            problems.append("features: must list at least one column (or be omitted)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def digest(self) -> str:
        """``sha256:<hex>`` of the canonical JSON of the spec (defaults filled in)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    def to_dict(self) -> dict[str, object]:
        return dict(self.model_dump(mode="json"))


def parse_spec(text: str, fmt: SpecFormat | str = SpecFormat.YAML) -> TrainingSpec:
    """Parse and validate a spec document; all problems at once in ``TrainingSpecInvalid``."""
    data = _load(text, SpecFormat(fmt))
    if not isinstance(data, dict):
        raise TrainingSpecInvalid(
            f"a training spec must be a mapping, got {type(data).__name__}",
            hint="start the document with 'label: <column>' and 'estimator: <name>'",
        )
    return spec_from_mapping(data)


def load_spec(path: Path) -> TrainingSpec:
    """Read a spec file; the format follows the suffix (.yaml / .yml / .json / .toml)."""
    suffix = path.suffix.lower().lstrip(".")
    fmt = {"yml": "yaml", "yaml": "yaml", "json": "json", "toml": "toml"}.get(suffix)
    if fmt is None:
        raise TrainingSpecInvalid(
            f"{path}: unknown spec format {path.suffix!r}", hint="use .yaml, .json or .toml"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise TrainingSpecInvalid(f"{path}: cannot read the spec: {e.strerror}") from e
    return parse_spec(text, fmt)


def spec_from_mapping(data: dict[str, Any]) -> TrainingSpec:
    """Validate an already-parsed mapping."""
    try:
        return TrainingSpec.model_validate(data)
    except ValidationError as e:
        raise TrainingSpecInvalid(
            "invalid training spec: " + "; ".join(_describe(err) for err in e.errors()),
            hint=f"estimators: {', '.join(k.value for k in EstimatorKind)}",
        ) from e


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error.get("loc", ())) or "spec"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        message = "unknown field"
    if error.get("type") == "enum" and where == "estimator":
        message = f"unknown estimator {error.get('input')!r}"
    if where == "spec" or message.startswith(where + "."):
        return message
    return f"{where}: {message}"


def _load(text: str, fmt: SpecFormat) -> object:
    try:
        if fmt is SpecFormat.JSON:
            return json.loads(text)
        if fmt is SpecFormat.TOML:
            import tomllib

            return tomllib.loads(text)
        import yaml

        return yaml.safe_load(text)
    except Exception as e:  # each parser has its own error type; all mean "not a document"
        raise TrainingSpecInvalid(
            f"the spec is not valid {fmt.value.upper()}: {e}",
            hint=f"check the {fmt.value.upper()} syntax near the reported position",
        ) from e


__all__ = [
    "CategoricalEncoding",
    "SpecFormat",
    "TrainingSpec",
    "load_spec",
    "parse_spec",
    "spec_from_mapping",
]
