"""Errors of the governance layer (all derive from ``BastionError``).

::

    GovernanceError
    ├── CardInvalid       a card file does not parse or fails validation (an InputError)
    ├── BomInvalid        the ML-BOM we built fails the CycloneDX schema (never shipped)
    ├── ProviderInvalid   a provider or assessment refused (bad date, rating, look-alike)
    ├── CatalogueInvalid  a compliance catalogue or framework name refused (an InputError)
    ├── ApprovalRefused   an approval breaks separation of duties, is stale or replayed
    │                     (a PolicyDenied)
    ├── ReleasePolicyInvalid  a release policy does not compile, names an unknown fact or
    │                     sets a threshold out of range (an InputError; names the line)
    ├── WaiverRefused     a waiver without expiry, for an unknown rule, or by the author
    └── GateFailed        promotion refused: the release gate has failing rules (a PolicyDenied)
"""

from __future__ import annotations

from bastion.core.errors import BastionError, InputError, PolicyDenied


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


class ApprovalRefused(GovernanceError, PolicyDenied):
    """Separation of duties, a stale digest or card version, a replay: refused and audited."""

    code = "approval_refused"


class ReleasePolicyInvalid(GovernanceError, InputError):
    """A release policy that cannot be used; the previous policy stays active."""

    code = "release_policy_invalid"


class WaiverRefused(GovernanceError, PolicyDenied):
    """A waiver that may not be granted (no or bad expiry, unknown rule, the author)."""

    code = "waiver_refused"


class GateFailed(GovernanceError, PolicyDenied):
    """The release gate has failing rules: the model version is not promoted."""

    code = "gate_failed"


__all__ = [
    "ApprovalRefused",
    "BomInvalid",
    "CardInvalid",
    "CatalogueInvalid",
    "GateFailed",
    "GovernanceError",
    "ProviderInvalid",
    "ReleasePolicyInvalid",
    "WaiverRefused",
]
