"""Errors of the governance layer (all derive from ``BastionError``).

::

    GovernanceError
    ├── CardInvalid       a card file does not parse or fails validation (an InputError)
    ├── BomInvalid        the ML-BOM we built fails the CycloneDX schema (never shipped)
    ├── ProviderInvalid   a provider or assessment refused (bad date, rating, look-alike)
    └── CatalogueInvalid  a compliance catalogue or framework name refused (an InputError)
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


class ProviderInvalid(GovernanceError, InputError):
    """A third-party provider or its assessment is refused (what, which field, how to fix)."""

    code = "provider_invalid"


class CatalogueInvalid(GovernanceError, InputError):
    """A compliance control catalogue does not validate, or names an unknown framework/check."""

    code = "catalogue_invalid"


__all__ = ["BomInvalid", "CardInvalid", "CatalogueInvalid", "GovernanceError", "ProviderInvalid"]
