"""Report types shared by every ingestion audit check.

Each check (contract, quality, PII, bias, poisoning, lineage) returns one
:class:`CheckResult`; an ingestion audit gathers them into an
:class:`AuditReport`.  A batch passes when no *blocking* check failed; any
failed blocking check means quarantine.  Reports are JSON-safe through
``to_dict()`` and human-readable through ``render_text()``.  PII checks put
counts in ``metrics`` and never raw values anywhere in a report.

Example::

    result = CheckResult(
        name="null_rate_jump", category="quality", passed=False, blocking=True,
        summary="column 'income': null rate 0.1% -> 35.0%",
        metrics={"income.null_rate": 0.35}, flagged_rows=(3, 17),
    )
    report = AuditReport(row_count=1000, checks=(result,))
    assert not report.passed
    print(report.render_text())
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

#: a JSON-safe metric value
MetricValue = float | int | str | None

#: default per-batch false-quarantine target on clean data (a policy may lower it)
FALSE_QUARANTINE_TARGET = 0.02
#: the most statistical blocking tests one batch runs (contract soft bounds, range,
#: null rates, the poisoning detectors, bias): the target is split among them
STATISTICAL_TESTS = 20


def check_alpha(target: float = FALSE_QUARANTINE_TARGET) -> float:
    """The level each statistical blocking test runs at so the batch stays at ``target``.

    Bonferroni over :data:`STATISTICAL_TESTS`: P(any of them fires on a clean
    batch) <= sum of their levels <= ``target``, whatever their dependence.
    """
    return target / STATISTICAL_TESTS


class Verdict(StrEnum):
    """Why a batch was accepted or quarantined (the most serious reason wins)."""

    ACCEPTED = "accepted"
    #: a poisoning detector (or source lineage) blocked: rows and evidence in its check
    POISONING_SUSPECTED = "poisoning_suspected"
    #: the data contract blocked: the batch breaks a rule, no sign of an attack
    CONTRACT_VIOLATION = "contract_violation"
    #: a quality check (range, nulls, duplicates, coercion, row count) blocked
    QUALITY_VIOLATION = "quality_violation"
    #: a PII or bias policy blocked
    POLICY_VIOLATION = "policy_violation"
    #: poisoning could not be checked (no pinned trusted reference): fail closed
    UNVERIFIED = "unverified"


@dataclass(frozen=True)
class Decision:
    """How a statistical check decided: its statistic against a threshold, and its p-value.

    ``p_value`` is the probability of a statistic at least this extreme on a
    clean batch from the trusted population; the check blocks when it is below
    ``alpha`` (see :func:`check_alpha`).  ``threshold`` is the statistic's
    blocking threshold where one exists in its own units.
    """

    statistic_name: str
    statistic: float
    p_value: float | None = None
    alpha: float | None = None
    threshold: float | None = None

    def to_dict(self) -> dict[str, MetricValue]:
        return {
            "statistic_name": self.statistic_name,
            "statistic": _json_safe(self.statistic),
            "p_value": _json_safe(self.p_value),
            "alpha": _json_safe(self.alpha),
            "threshold": _json_safe(self.threshold),
        }

    def render(self) -> str:
        parts = [f"{self.statistic_name}={self.statistic:.4g}"]
        if self.threshold is not None:
            parts.append(f"threshold {self.threshold:.4g}")
        if self.p_value is not None:
            parts.append(f"p={self.p_value:.3g}")
        if self.alpha is not None:
            parts.append(f"alpha {self.alpha:.3g}")
        return ", ".join(parts)


#: how many row indices ``render_text`` prints per check before truncating
_RENDER_ROWS = 20
#: how many detail lines ``render_text`` prints per check before truncating
_RENDER_DETAILS = 10


class Severity(StrEnum):
    """How serious a finding is: ``blocking`` findings quarantine the batch."""

    INFO = "info"
    WARNING = "warning"
    BLOCKING = "blocking"


def _json_safe(value: MetricValue) -> MetricValue:
    # NaN / inf are not JSON; a metric that could not be computed is None.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one audit check over one batch.

    ``flagged_rows`` are 0-based row indices within the batch; ``metrics``
    holds JSON-safe numbers/strings (NaN/inf become ``None`` in
    ``to_dict``).  A check that caps ``flagged_rows`` puts the full count in
    ``metrics["flagged_total"]`` (rendering uses it).  ``blocking`` says
    whether a failure of this check quarantines the batch.
    """

    name: str
    category: str
    passed: bool
    blocking: bool
    summary: str
    metrics: Mapping[str, MetricValue] = field(default_factory=dict)
    flagged_rows: tuple[int, ...] = ()
    details: tuple[str, ...] = ()
    #: the statistic, threshold and calibrated p-value behind the outcome (if statistical)
    decision: Decision | None = None

    def __post_init__(self) -> None:
        # Freeze the mapping so a shared result cannot be mutated behind a report.
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))
        object.__setattr__(self, "flagged_rows", tuple(int(r) for r in self.flagged_rows))
        object.__setattr__(self, "details", tuple(self.details))

    @property
    def severity(self) -> Severity:
        """``info`` when passed, else ``blocking`` or ``warning``."""
        if self.passed:
            return Severity.INFO
        return Severity.BLOCKING if self.blocking else Severity.WARNING

    def to_dict(self) -> dict[str, object]:
        """A JSON-safe dict of this result."""
        return {
            "name": self.name,
            "category": self.category,
            "passed": self.passed,
            "blocking": self.blocking,
            "severity": self.severity.value,
            "summary": self.summary,
            "metrics": {k: _json_safe(v) for k, v in self.metrics.items()},
            "flagged_rows": list(self.flagged_rows),
            "details": list(self.details),
            "decision": self.decision.to_dict() if self.decision is not None else None,
        }

    def render_text(self, *, max_rows: int = _RENDER_ROWS) -> str:
        """A few readable lines for this check."""
        mark = {"info": "PASS", "warning": "WARN", "blocking": "FAIL"}[self.severity.value]
        lines = [f"[{mark}] {self.category}/{self.name}: {self.summary}"]
        if self.decision is not None:
            lines.append(f"    ({self.decision.render()})")
        for detail in self.details[:_RENDER_DETAILS]:
            lines.append(f"    - {detail}")
        if len(self.details) > _RENDER_DETAILS:
            lines.append(f"    - ... {len(self.details) - _RENDER_DETAILS} more")
        if self.flagged_rows:
            total = self.metrics.get("flagged_total")
            total = total if isinstance(total, int) else len(self.flagged_rows)
            lines.append("    rows: " + _render_rows(self.flagged_rows, max_rows, total))
        return "\n".join(lines)


def _render_rows(rows: tuple[int, ...], max_rows: int, total: int | None = None) -> str:
    total = max(total or 0, len(rows))
    shown = ", ".join(str(r) for r in rows[:max_rows])
    if total > min(len(rows), max_rows):
        shown += f", ... ({total} rows in total)"
    return shown


@dataclass(frozen=True)
class AuditReport:
    """All check results for one batch of ``row_count`` rows."""

    row_count: int
    checks: tuple[CheckResult, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "checks", tuple(self.checks))

    @classmethod
    def of(cls, row_count: int, checks: Iterable[CheckResult]) -> AuditReport:
        """Build a report from any iterable of results."""
        return cls(row_count=row_count, checks=tuple(checks))

    @property
    def passed(self) -> bool:
        """True when no blocking check failed (warnings do not quarantine)."""
        return not self.blocking_failures

    @property
    def blocking_failures(self) -> tuple[CheckResult, ...]:
        """The failed checks whose failure quarantines the batch."""
        return tuple(c for c in self.checks if c.blocking and not c.passed)

    @property
    def warnings(self) -> tuple[CheckResult, ...]:
        """The failed checks that only warn."""
        return tuple(c for c in self.checks if not c.blocking and not c.passed)

    @property
    def flagged_rows(self) -> tuple[int, ...]:
        """Sorted union of rows flagged by any check."""
        rows: set[int] = set()
        for check in self.checks:
            rows.update(check.flagged_rows)
        return tuple(sorted(rows))

    @property
    def verdict(self) -> Verdict:
        """Accepted, or the most serious kind of blocking failure (poisoning first)."""
        kinds = {_kind(c) for c in self.blocking_failures}
        for kind in (
            Verdict.POISONING_SUSPECTED,
            Verdict.CONTRACT_VIOLATION,
            Verdict.QUALITY_VIOLATION,
            Verdict.POLICY_VIOLATION,
            Verdict.UNVERIFIED,
        ):
            if kind in kinds:
                return kind
        return Verdict.ACCEPTED

    @property
    def poisoning_rows(self) -> tuple[int, ...]:
        """Rows named by failed poisoning checks (the suspected poison, not quality noise)."""
        rows: set[int] = set()
        for check in self.checks:
            if not check.passed and _kind(check) is Verdict.POISONING_SUSPECTED:
                rows.update(check.flagged_rows)
        return tuple(sorted(rows))

    def by_category(self, category: str) -> tuple[CheckResult, ...]:
        """The results of one category (e.g. ``"pii"``)."""
        return tuple(c for c in self.checks if c.category == category)

    def to_dict(self) -> dict[str, object]:
        """A JSON-safe dict of the whole report."""
        return {
            "row_count": self.row_count,
            "passed": self.passed,
            "verdict": self.verdict.value,
            "blocking_failures": [c.name for c in self.blocking_failures],
            "reasons": {
                kind.value: [c.name for c in self.blocking_failures if _kind(c) is kind]
                for kind in Verdict
                if kind is not Verdict.ACCEPTED
            },
            "poisoning_rows": list(self.poisoning_rows),
            "flagged_rows": list(self.flagged_rows),
            "checks": [c.to_dict() for c in self.checks],
        }

    def render_text(self, *, max_rows: int = _RENDER_ROWS) -> str:
        """A readable report: verdict first, then failures, then passed checks."""
        verdict = "PASSED" if self.passed else f"QUARANTINE ({self.verdict.value})"
        failed = [c for c in self.checks if not c.passed]
        lines = [
            f"Audit {verdict}: {self.row_count} rows, {len(self.checks)} checks, "
            f"{len(self.blocking_failures)} blocking, {len(self.warnings)} warnings",
        ]
        suspects = self.poisoning_rows
        if suspects:
            lines.append(
                f"Poisoning suspected in {len(suspects)} row(s): "
                + _render_rows(suspects, max_rows)
            )
        flagged = self.flagged_rows
        if flagged:
            capped = any(
                isinstance(t := c.metrics.get("flagged_total"), int) and t > len(c.flagged_rows)
                for c in self.checks
            )
            count = f"at least {len(flagged)}" if capped else str(len(flagged))
            lines.append(f"Suspicious rows ({count}): " + _render_rows(flagged, max_rows))
        # Failures first (blocking before warnings) so the reader sees why at once.
        failed.sort(key=lambda c: (not c.blocking, c.category, c.name))
        for check in failed:
            lines.append(check.render_text(max_rows=max_rows))
        for check in self.checks:
            if check.passed:
                lines.append(check.render_text(max_rows=max_rows))
        return "\n".join(lines)


def _kind(check: CheckResult) -> Verdict:
    if check.name == "trusted_reference":
        return Verdict.UNVERIFIED
    if check.category in ("poisoning", "lineage"):
        return Verdict.POISONING_SUSPECTED
    if check.name == "data_contract":
        return Verdict.CONTRACT_VIOLATION
    if check.category == "quality":
        return Verdict.QUALITY_VIOLATION
    return Verdict.POLICY_VIOLATION


__all__ = [
    "FALSE_QUARANTINE_TARGET",
    "STATISTICAL_TESTS",
    "AuditReport",
    "CheckResult",
    "Decision",
    "MetricValue",
    "Severity",
    "Verdict",
    "check_alpha",
]
