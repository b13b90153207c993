"""The hand-written part of a model card, parsed strictly from YAML.

Only the fields below are accepted; an unknown field (a typo, or a fact such as
``metrics`` that Bastion itself fills in from signed evidence) is refused with
its path, never silently dropped.  Text is kept exactly as written: renderers
escape it, so HTML in a field shows as text and never becomes markup.

Example::

    spec = parse_card_yaml('''
    intended_use: Score consumer credit applications for manual review.
    out_of_scope_uses: [Fully automated rejection]
    owners: [alice@example.com]
    risk_tier: high
    limitations: [Trained on one bureau's applicants only]
    ''')
    spec.risk_tier  # RiskTier.HIGH
"""

from __future__ import annotations

import enum

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bastion.governance.errors import CardInvalid

_MAX_TEXT = 4000
_MAX_ITEMS = 50
_MAX_BYTES = 256 * 1024


class RiskTier(enum.StrEnum):
    """The model's risk tier (EU AI Act style: minimal to unacceptable)."""

    MINIMAL = "minimal"
    LIMITED = "limited"
    HIGH = "high"
    UNACCEPTABLE = "unacceptable"


class CardSpec(BaseModel):
    """What the ML engineer writes; every other card field comes from evidence."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    intended_use: str = Field(min_length=1, max_length=_MAX_TEXT)
    out_of_scope_uses: tuple[str, ...] = Field(default=(), max_length=_MAX_ITEMS)
    owners: tuple[str, ...] = Field(min_length=1, max_length=_MAX_ITEMS)
    risk_tier: RiskTier
    limitations: tuple[str, ...] = Field(default=(), max_length=_MAX_ITEMS)

    @field_validator("risk_tier", mode="before")
    @classmethod
    def _tier(cls, value: object) -> object:
        # strict mode refuses a plain string for an enum; YAML only has strings
        return RiskTier(value) if isinstance(value, str) and value in set(RiskTier) else value

    @field_validator("out_of_scope_uses", "owners", "limitations", mode="before")
    @classmethod
    def _items(cls, value: object) -> object:
        if isinstance(value, list):
            value = tuple(value)
        if isinstance(value, tuple):
            for item in value:
                if not isinstance(item, str) or not item.strip() or len(item) > _MAX_TEXT:
                    raise ValueError(f"each entry must be non-empty text of at most {_MAX_TEXT}")
        return value


def parse_card_yaml(text: str, *, source: str = "card file") -> CardSpec:
    """Parse and validate a card file; :class:`CardInvalid` names the field and the reason."""
    if len(text.encode("utf-8", "replace")) > _MAX_BYTES:
        raise CardInvalid(f"{source} is larger than {_MAX_BYTES} bytes")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CardInvalid(f"{source} is not valid YAML: {e}") from e
    if not isinstance(doc, dict):
        raise CardInvalid(
            f"{source} must be a YAML mapping of card fields",
            hint="fields: intended_use, out_of_scope_uses, owners, risk_tier, limitations",
        )
    try:
        return CardSpec.model_validate(doc)
    except ValidationError as e:
        problems = "; ".join(_describe(err) for err in e.errors())
        raise CardInvalid(
            f"{source} is not a valid model card: {problems}",
            hint="allowed fields: "
            + ", ".join(CardSpec.model_fields)
            + "; metrics, datasets, signer and scan are filled in by Bastion from evidence",
        ) from e


def _describe(err: object) -> str:
    assert isinstance(err, dict)
    where = ".".join(str(p) for p in err.get("loc", ())) or "(card)"
    if err.get("type") == "extra_forbidden":
        return f"unknown field {where!r}"
    if err.get("type") == "enum" or where == "risk_tier":
        return f"{where}: must be one of {', '.join(t.value for t in RiskTier)}"
    return f"{where}: {err.get('msg')}"


__all__ = ["CardSpec", "RiskTier", "parse_card_yaml"]
