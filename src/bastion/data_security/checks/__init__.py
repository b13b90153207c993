"""Ingestion audit checks: quality, PII/PHI and bias, with their shared report types.

Every check takes a polars DataFrame (one batch) and returns a
:class:`~bastion.data_security.checks.report.CheckResult`; an ingestion audit
collects them into an :class:`~bastion.data_security.checks.report.AuditReport`.

- ``report``  — ``Severity``, ``CheckResult``, ``AuditReport`` (shared by all checks)
- ``quality`` — null-rate jumps, range violations, duplicates, coercion failures, row counts
- ``pii``     — emails, phones, SSNs, cards, IBANs, IPs, birth dates, names (counts only)
- ``bias``    — group representation, base rates, demographic parity, four-fifths rule

Example::

    from bastion.data_security.checks import AuditReport
    report = AuditReport.of(df.height, run_quality_checks(df, reference_profile))
"""

from __future__ import annotations

# Only the report types load eagerly: they are what every detector imports, and
# the checks below pull in polars (bias defers fairlearn to first use).
from bastion.data_security.checks.bias import (
    BiasBaseline,
    BiasPolicy,
    BiasSpec,
    SensitiveAttribute,
    bias_baseline,
    check_bias,
)
from bastion.data_security.checks.pii import (
    PiiFinding,
    PiiKind,
    PiiPolicy,
    PiiScan,
    check_pii,
    pii_result,
    scan_pii,
)
from bastion.data_security.checks.quality import (
    QualityPolicy,
    check_coercion,
    check_duplicates,
    check_null_rates,
    check_ranges,
    check_row_count,
    run_quality_checks,
)
from bastion.data_security.checks.report import AuditReport, CheckResult, MetricValue, Severity

__all__ = [
    "AuditReport",
    "BiasBaseline",
    "BiasPolicy",
    "BiasSpec",
    "CheckResult",
    "MetricValue",
    "PiiFinding",
    "PiiKind",
    "PiiPolicy",
    "PiiScan",
    "QualityPolicy",
    "SensitiveAttribute",
    "Severity",
    "bias_baseline",
    "check_bias",
    "check_coercion",
    "check_duplicates",
    "check_null_rates",
    "check_pii",
    "check_ranges",
    "check_row_count",
    "pii_result",
    "run_quality_checks",
    "scan_pii",
]
