"""Value types of the third-party register: providers, assessments and their checks.

An assessment is validated here, before anything is stored: a strict request
(:class:`AssessmentRequest`) becomes a frozen :class:`Assessment` or a
:class:`ProviderInvalid` naming the field, the value and how to fix it.

Example::

    req = AssessmentRequest(("personal", "financial"), True, ("ISO 27001",),
                            "2026-11-01", "2027-11-01", "medium")
    fields = validate_assessment(req, today=dt.date(2026, 12, 5))
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import unicodedata
from dataclasses import dataclass
from typing import TypeVar

from bastion.core.canonical import JSON
from bastion.core.names import check_name
from bastion.governance.errors import ProviderInvalid


class ProviderKind(enum.StrEnum):
    MODEL = "model"  # an external model (a foundation model, a vendor's scorer)
    API = "api"  # an external API the pipeline sends data to
    DATA = "data"  # an external data source (a bureau, a broker)


class RiskRating(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class DataCategory(enum.StrEnum):
    """What an organisation sends to (or receives from) a provider."""

    NONE = "none"
    ANONYMOUS = "anonymous"
    PSEUDONYMOUS = "pseudonymous"
    PERSONAL = "personal"
    SPECIAL_CATEGORY = "special-category"  # GDPR Art. 9
    HEALTH = "health"  # PHI under HIPAA
    FINANCIAL = "financial"
    CHILDREN = "children"
    BIOMETRIC = "biometric"
    CONFIDENTIAL = "confidential"  # business secrets, model weights


#: categories that make a DPA (GDPR Art. 28) or a BAA (HIPAA) necessary
PERSONAL_CATEGORIES = frozenset(
    {
        DataCategory.PERSONAL,
        DataCategory.SPECIAL_CATEGORY,
        DataCategory.HEALTH,
        DataCategory.FINANCIAL,
        DataCategory.CHILDREN,
        DataCategory.BIOMETRIC,
    }
)


class ProviderStatus(enum.StrEnum):
    CURRENT = "current"
    UNASSESSED = "unassessed"
    EXPIRED = "expired"


def check_provider_name(name: str) -> str:
    """The one name rule of :mod:`bastion.core.names` (ASCII, full match)."""
    return check_name("provider", name, max_length=100)


_SEPARATORS = re.compile(r"[-_.]")
_CONFUSABLE = str.maketrans({"0": "o", "1": "l", "i": "l", "5": "s", "3": "e", "8": "b"})


def lookalike_key(name: str) -> str:
    """The key two provider names collide on.

    Stricter than :func:`bastion.core.names.name_key` (case only): a vendor's
    name is typed by many people, so ``Open-AI``, ``open_ai``, ``0penai`` and
    ``openal`` are one provider, and ``rn`` reads as ``m``, ``vv`` as ``w``.
    """
    key = _SEPARATORS.sub("", name.casefold())
    return key.replace("rn", "m").replace("vv", "w").translate(_CONFUSABLE)


def _text(field_name: str, value: str, max_length: int) -> str:
    text = unicodedata.normalize("NFC", value).strip()
    if not text or len(text) > max_length:
        raise ProviderInvalid(
            f"{field_name} {value[:60]!r} must be 1-{max_length} characters",
            hint=f"shorten or fill in {field_name}",
        )
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise ProviderInvalid(
                f"{field_name} {text[:60]!r} contains the character U+{ord(ch):04X}",
                hint="use printable characters only (no control or bidi characters)",
            )
    return text


def _date(field_name: str, value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except (ValueError, AttributeError) as e:
        raise ProviderInvalid(
            f"{field_name} {value!r} is not a date",
            hint=f"write {field_name} as YYYY-MM-DD",
        ) from e


E = TypeVar("E", bound=enum.StrEnum)


def _choice(kind: type[E], field_name: str, value: str) -> E:
    try:
        return kind(value.strip().lower())
    except ValueError:
        valid = ", ".join(m.value for m in kind)
        raise ProviderInvalid(
            f"unknown {field_name} {value!r}", hint=f"use one of: {valid}"
        ) from None


def check_description(value: str) -> str:
    """A provider's description: printable, folded to one line, at most 500 characters."""
    folded = " ".join(value.split())
    return _text("description", folded, 500) if folded else ""


def parse_kind(value: str) -> ProviderKind:
    """``model`` / ``api`` / ``data``, or :class:`ProviderInvalid` listing them."""
    return _choice(ProviderKind, "provider kind", value)


@dataclass(frozen=True)
class Provider:
    project: str
    name: str
    kind: ProviderKind
    description: str
    created_at: str
    created_by: str

    @property
    def lineage_id(self) -> str:
        return f"{self.project}/{self.name}"

    def to_dict(self) -> dict[str, JSON]:
        return {
            "project": self.project,
            "name": self.name,
            "kind": self.kind.value,
            "description": self.description,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class AssessmentRequest:
    """An assessment as typed by a person (CLI options, a JSON body)."""

    data_sent: tuple[str, ...]
    dpa: bool
    certifications: tuple[str, ...]
    reviewed_on: str
    expires_on: str
    risk: str
    notes: str = ""


@dataclass(frozen=True)
class Assessment:
    """One stored assessment of a provider (assessments are versioned, never edited)."""

    project: str
    provider: str
    assessment_version: int
    data_sent: tuple[DataCategory, ...]
    dpa: bool
    certifications: tuple[str, ...]
    reviewed_on: dt.date
    expires_on: dt.date
    risk: RiskRating
    notes: str
    sha256: str
    created_at: str
    created_by: str

    def content(self) -> dict[str, JSON]:
        """What the digest binds (the assessment itself, not who stored it)."""
        return {
            "provider": f"{self.project}/{self.provider}",
            "data_sent": [c.value for c in self.data_sent],
            "dpa": self.dpa,
            "certifications": list(self.certifications),
            "reviewed_on": self.reviewed_on.isoformat(),
            "expires_on": self.expires_on.isoformat(),
            "risk": self.risk.value,
            "notes": self.notes,
        }

    def to_dict(self) -> dict[str, JSON]:
        return {
            **self.content(),
            "provider": self.provider,
            "assessment_version": self.assessment_version,
            "sha256": self.sha256,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class ProviderState:
    """A provider, its latest assessment (if any) and what that means today."""

    provider: Provider
    latest: Assessment | None
    status: ProviderStatus
    reason: str

    def to_dict(self) -> dict[str, JSON]:
        return {
            **self.provider.to_dict(),
            "status": self.status.value,
            "reason": self.reason,
            "assessment": self.latest.to_dict() if self.latest else None,
        }


def state_of(provider: Provider, latest: Assessment | None, today: dt.date) -> ProviderState:
    if latest is None:
        return ProviderState(provider, None, ProviderStatus.UNASSESSED, "never assessed")
    if latest.expires_on <= today:
        why = f"assessment v{latest.assessment_version} expired on {latest.expires_on}"
        return ProviderState(provider, latest, ProviderStatus.EXPIRED, why)
    why = f"assessment v{latest.assessment_version} valid until {latest.expires_on}"
    return ProviderState(provider, latest, ProviderStatus.CURRENT, why)


@dataclass(frozen=True)
class ValidAssessment:
    data_sent: tuple[DataCategory, ...]
    dpa: bool
    certifications: tuple[str, ...]
    reviewed_on: dt.date
    expires_on: dt.date
    risk: RiskRating
    notes: str


def validate_assessment(req: AssessmentRequest, *, today: dt.date) -> ValidAssessment:
    """Check every field of ``req``; raise :class:`ProviderInvalid` on the first bad one."""
    risk = _choice(RiskRating, "risk rating", req.risk)
    if not req.data_sent:
        raise ProviderInvalid(
            "say what data is sent to the provider",
            hint="list categories (use 'none' when nothing is sent): "
            + ", ".join(c.value for c in DataCategory),
        )
    sent = tuple(sorted({_choice(DataCategory, "data category", c) for c in req.data_sent}))
    if DataCategory.NONE in sent and len(sent) > 1:
        raise ProviderInvalid("data category 'none' cannot be combined with other categories")
    if len(req.certifications) > 20:
        raise ProviderInvalid("at most 20 certifications per assessment")
    certs = tuple(sorted({_text("certification", c, 100) for c in req.certifications}))
    reviewed, expires = _date("review date", req.reviewed_on), _date("expiry", req.expires_on)
    if reviewed > today:
        raise ProviderInvalid(
            f"review date {reviewed} is in the future (today is {today})",
            hint="record an assessment once it has been reviewed",
        )
    if expires <= reviewed:
        raise ProviderInvalid(
            f"expiry {expires} is not after the review date {reviewed}",
            hint="an assessment expires after it was reviewed: fix one of the two dates",
        )
    if expires <= today:
        raise ProviderInvalid(
            f"expiry {expires} is already past (today is {today})",
            hint="an expired assessment assesses nothing: review the provider again",
        )
    notes = _text("notes", req.notes, 2000) if req.notes.strip() else ""
    return ValidAssessment(sent, bool(req.dpa), certs, reviewed, expires, risk, notes)


__all__ = [
    "PERSONAL_CATEGORIES",
    "Assessment",
    "AssessmentRequest",
    "DataCategory",
    "Provider",
    "ProviderKind",
    "ProviderState",
    "ProviderStatus",
    "RiskRating",
    "ValidAssessment",
    "check_description",
    "check_provider_name",
    "lookalike_key",
    "parse_kind",
    "state_of",
    "validate_assessment",
]
