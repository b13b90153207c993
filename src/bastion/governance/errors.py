"""Errors of the governance layer (all derive from ``BastionError``).

::

    GovernanceError
    ├── CardInvalid       a card file does not parse or fails validation (an InputError)
    └── BomInvalid        the ML-BOM we built fails the CycloneDX schema (never shipped)
"""

from __future__ import annotations

from bastion.core.errors import BastionError, InputError


class GovernanceError(BastionError):
    code = "governance_error"


class CardInvalid(GovernanceError, InputError):
    """A model-card file is not valid YAML, has unknown fields or a bad value."""

    code = "card_invalid"


class BomInvalid(GovernanceError):
    """The ML-BOM failed schema validation: a defect in Bastion, refused rather than shipped."""

    code = "bom_invalid"


__all__ = ["BomInvalid", "CardInvalid", "GovernanceError"]
