"""PII/PHI detection over a batch: which columns hold which kinds, how often.

Large batches are sampled (``PiiPolicy.sample_size`` rows, seeded) and the
counts are reported *from the sample*, with the sample size stated.  Findings
name columns, kinds, counts and fractions — never a value.

Example::

    scan = scan_pii(batch, PiiPolicy(declared_columns=frozenset({"email"})))
    for f in scan.findings:
        print(f.column, f.kind, f.fraction)
    result = check_pii(batch)            # a CheckResult for the audit report
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

import polars as pl

from bastion.data_security.checks import pii_rules as rules
from bastion.data_security.checks.report import CheckResult, MetricValue
from bastion.data_security.errors import AuditConfigError
from bastion.data_security.profile import LogicalType, logical_type


class PiiKind(StrEnum):
    """The kinds of personal data the scanner recognises."""

    EMAIL = "email"
    PHONE = "phone"
    SSN = "us_ssn"
    CARD = "payment_card"
    IBAN = "iban"
    IPV4 = "ipv4"
    IPV6 = "ipv6"
    BIRTH_DATE = "birth_date"
    PERSON_NAME = "person_name"


@dataclass(frozen=True)
class PiiPolicy:
    """How to scan and how to judge what is found."""

    sample_size: int = 100_000
    #: report a column/kind only when at least this share of its sampled values match
    min_fraction: float = 0.01
    #: columns known (and approved) to carry personal data: reported, never blocking
    declared_columns: frozenset[str] = frozenset()
    #: whether undeclared PII quarantines the batch (else it warns)
    undeclared_is_blocking: bool = False
    seed: int = 0
    #: reference day for age plausibility (None: today)
    as_of: date | None = None

    def __post_init__(self) -> None:
        if self.sample_size < 1:
            raise AuditConfigError("PiiPolicy.sample_size must be >= 1")
        if not 0.0 <= self.min_fraction <= 1.0:
            raise AuditConfigError("PiiPolicy.min_fraction must be in [0, 1]")


@dataclass(frozen=True)
class PiiFinding:
    """``count`` of ``sampled`` non-null values in ``column`` look like ``kind``."""

    column: str
    kind: PiiKind
    count: int
    sampled: int
    declared: bool

    @property
    def fraction(self) -> float:
        return self.count / self.sampled if self.sampled else 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "column": self.column,
            "kind": self.kind.value,
            "count": self.count,
            "sampled_values": self.sampled,
            "fraction": self.fraction,
            "declared": self.declared,
        }


@dataclass(frozen=True)
class PiiScan:
    """All findings of one scan; ``sample_rows`` of ``rows`` were examined."""

    rows: int
    sample_rows: int
    findings: tuple[PiiFinding, ...] = field(default_factory=tuple)

    @property
    def sampled(self) -> bool:
        return self.sample_rows < self.rows

    def to_dict(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "sample_rows": self.sample_rows,
            "sampled": self.sampled,
            "findings": [f.to_dict() for f in self.findings],
        }


_TEXT_RULES: tuple[tuple[PiiKind, Callable[[pl.Series], pl.Series]], ...] = (
    (PiiKind.EMAIL, rules.email_mask),
    (PiiKind.PHONE, rules.phone_mask),
    (PiiKind.CARD, rules.card_mask),
    (PiiKind.IBAN, rules.iban_mask),
    (PiiKind.IPV4, rules.ipv4_mask),
    (PiiKind.IPV6, rules.ipv6_mask),
)


def _text_findings(name: str, values: pl.Series) -> dict[PiiKind, int]:
    s = values.cast(pl.String).str.strip_chars()
    counts = {kind: int(fn(s).sum()) for kind, fn in _TEXT_RULES}
    counts[PiiKind.SSN] = int(rules.ssn_mask(s, allow_bare=rules.is_ssn_name(name)).sum())
    if rules.is_person_name_column(name):
        counts[PiiKind.PERSON_NAME] = int(rules.person_name_values(s).sum())
    # A value can look like an IPv4 and a phone (dotted digits); the stricter IP wins.
    if counts[PiiKind.IPV4]:
        counts[PiiKind.PHONE] = int((rules.phone_mask(s) & ~rules.ipv4_mask(s)).sum())
    return counts


def _birth_dates(name: str, values: pl.Series, as_of: date) -> int:
    """Count values that are plausible birth dates for a date-like column."""
    if values.dtype == pl.String:
        parsed = values.str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
        if parsed.null_count() > values.len() // 10:
            return 0  # not a date column
        values = parsed.drop_nulls()
    if values.is_empty() or rules.is_event_date_name(name):
        return 0
    ages = rules.plausible_ages(values, as_of)
    plausible = ages.is_between(0, 120)
    if rules.is_birth_date_name(name):
        return int(plausible.sum())
    # Without a telling name, the column must look like adults' birth dates.
    median = ages.median()
    if not isinstance(median, int | float) or not 18 <= median <= 95:
        return 0
    return int(plausible.sum()) if plausible.mean() >= 0.99 else 0  # type: ignore[operator]


def scan_pii(df: pl.DataFrame, policy: PiiPolicy | None = None) -> PiiScan:
    """Scan string, integer (for card numbers) and date columns for personal data."""
    policy = policy or PiiPolicy()
    sample = (
        df if df.height <= policy.sample_size else df.sample(policy.sample_size, seed=policy.seed)
    )
    as_of = policy.as_of or date.today()
    findings: list[PiiFinding] = []
    for name, dtype in sample.schema.items():
        lt = logical_type(dtype)
        values = sample.get_column(name).drop_nulls()
        if values.is_empty():
            continue
        counts: dict[PiiKind, int] = {}
        if lt == LogicalType.STRING:
            counts = _text_findings(name, values)
            counts[PiiKind.BIRTH_DATE] = _birth_dates(name, values.cast(pl.String), as_of)
        elif lt == LogicalType.INTEGER:
            counts[PiiKind.CARD] = int(rules.card_mask(values.cast(pl.String)).sum())
        elif lt in (LogicalType.DATE, LogicalType.DATETIME):
            counts[PiiKind.BIRTH_DATE] = _birth_dates(name, values.cast(pl.Date), as_of)
        for kind, count in counts.items():
            if count and count / values.len() >= policy.min_fraction:
                findings.append(
                    PiiFinding(name, kind, count, values.len(), name in policy.declared_columns)
                )
    return PiiScan(rows=df.height, sample_rows=sample.height, findings=tuple(findings))


def pii_result(scan: PiiScan, policy: PiiPolicy | None = None) -> CheckResult:
    """Turn a scan into a CheckResult (counts and fractions only, never values)."""
    policy = policy or PiiPolicy()
    metrics: dict[str, MetricValue] = {"rows": scan.rows, "sample_rows": scan.sample_rows}
    details: list[str] = []
    undeclared = [f for f in scan.findings if not f.declared]
    for f in scan.findings:
        metrics[f"{f.column}.{f.kind.value}.count"] = f.count
        metrics[f"{f.column}.{f.kind.value}.fraction"] = round(f.fraction, 6)
        tag = "declared" if f.declared else "UNDECLARED"
        details.append(
            f"column {f.column!r}: {f.kind.value} in {f.count} of {f.sampled} "
            f"sampled non-null values ({f.fraction:.1%}) [{tag}]"
        )
    where = (
        f"a sample of {scan.sample_rows} of {scan.rows} rows"
        if scan.sampled
        else f"all {scan.rows} rows"
    )
    columns = sorted({f.column for f in undeclared})
    summary = (
        f"undeclared personal data in {len(columns)} column(s) "
        f"({', '.join(columns)}); scanned {where}"
        if undeclared
        else f"no undeclared personal data; scanned {where}"
    )
    return CheckResult(
        name="pii_scan",
        category="pii",
        passed=not undeclared,
        blocking=policy.undeclared_is_blocking,
        summary=summary,
        metrics=metrics,
        details=tuple(details),
    )


def check_pii(df: pl.DataFrame, policy: PiiPolicy | None = None) -> CheckResult:
    """Scan ``df`` and judge the findings under ``policy``."""
    return pii_result(scan_pii(df, policy), policy)


__all__ = ["PiiFinding", "PiiKind", "PiiPolicy", "PiiScan", "check_pii", "pii_result", "scan_pii"]
