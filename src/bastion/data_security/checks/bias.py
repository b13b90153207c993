"""Bias audit of a labelled batch: representation, base rates and parity per group.

For each declared sensitive attribute (numeric ones binned, the binning
stated) the audit reports each group's share and label base rate, the
demographic-parity difference and the disparate-impact ratio (four-fifths
rule) computed with fairlearn, and — against a :class:`BiasBaseline` of the
reference data — flags groups whose base rate or share moved drastically
(the signature of label-flipping poisoning aimed at one group).

A base-rate shift *blocks* only when it is both large (``base_rate_shift_block``)
and significant: its two-proportion z test, Bonferroni-corrected over every
(attribute, group) compared in the batch, must fall below ``policy.alpha`` — the
bias audit's one share of the batch's false-quarantine budget
(:func:`~bastion.data_security.checks.report.check_alpha`), so a clean batch is
not refused by chance however many groups it has.  Each result carries that
decision (largest z, adjusted p-value, level).

Group statistics are aggregated in polars first; fairlearn then runs on one
weighted row per (group, label), so a million-row batch costs milliseconds.

Example::

    spec = BiasSpec(label="approved", sensitive=(SensitiveAttribute("gender"),
                                                  SensitiveAttribute("age")))
    baseline = bias_baseline(reference_df, spec)
    results = check_bias(batch, spec, baseline=baseline)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from bastion.data_security.checks.bias_stats import (
    AttributeStats,
    BiasBaseline,
    GroupStats,
    attribute_stats,
    default_bins,
)
from bastion.data_security.checks.report import (
    FALSE_QUARANTINE_TARGET,
    CheckResult,
    Decision,
    MetricValue,
    check_alpha,
)
from bastion.data_security.errors import AuditConfigError
from bastion.data_security.profile import DatasetProfile


@dataclass(frozen=True)
class SensitiveAttribute:
    """A protected attribute; ``bins`` are bin edges for a numeric attribute."""

    name: str
    bins: tuple[float, ...] | None = None


@dataclass(frozen=True)
class BiasSpec:
    """Which column is the label, what counts as positive, which attributes to audit."""

    label: str
    sensitive: tuple[SensitiveAttribute, ...]
    positive_label: str | int | float | bool = 1

    def __post_init__(self) -> None:
        if not self.sensitive:
            raise AuditConfigError("BiasSpec.sensitive must name at least one attribute")


@dataclass(frozen=True)
class BiasPolicy:
    """Thresholds of the bias audit."""

    four_fifths: float = 0.8
    disparate_impact_blocking: bool = False
    parity_difference_warn: float = 0.1
    base_rate_shift_warn: float = 0.05
    base_rate_shift_block: float = 0.15
    representation_shift_warn: float = 0.10
    min_group_size: int = 30
    max_flagged: int = 1000
    #: per-batch false-quarantine target on clean data; the bias audit gets one share
    false_quarantine_target: float = FALSE_QUARANTINE_TARGET

    def __post_init__(self) -> None:
        if not 0 < self.four_fifths <= 1:
            raise AuditConfigError("BiasPolicy.four_fifths must be in (0, 1]")
        if not 0 < self.false_quarantine_target <= 1:
            raise AuditConfigError("BiasPolicy.false_quarantine_target must be in (0, 1]")
        if self.base_rate_shift_warn > self.base_rate_shift_block:
            raise AuditConfigError("BiasPolicy: warn shift must not exceed the block shift")

    @property
    def alpha(self) -> float:
        """The family-wise level of every blocking bias test of one batch together."""
        return check_alpha(self.false_quarantine_target)


def _fairlearn_parity(groups: Sequence[GroupStats]) -> tuple[float, float, dict[str, float]]:
    """(parity difference, parity ratio, selection rate by group) via fairlearn."""
    # Lazy: fairlearn pulls in pandas/sklearn, seconds of import nobody else needs.
    from fairlearn.metrics import MetricFrame, selection_rate

    y = np.array([v for _ in groups for v in (1, 0)])
    names = np.array([g.group for g in groups for _ in (1, 0)])
    weights = np.array([w for g in groups for w in (g.positives, g.count - g.positives)], float)
    frame = MetricFrame(
        metrics={"selection_rate": selection_rate},
        y_true=y,
        y_pred=y,
        sensitive_features=names,
        sample_params={"selection_rate": {"sample_weight": weights}},
    )
    rates = {str(k): float(v) for k, v in frame.by_group["selection_rate"].items()}
    # With y_pred = label, the between-groups difference / ratio of selection
    # rates *is* fairlearn's demographic_parity_difference / _ratio; one
    # MetricFrame gives both without recomputing the groups twice.
    dpd = float(frame.difference(method="between_groups")["selection_rate"])
    dpr = float(frame.ratio(method="between_groups")["selection_rate"])
    return dpd, dpr, rates


def _shift_z(batch: GroupStats, ref: GroupStats) -> float:
    """Two-proportion z statistic of the base-rate change."""
    pooled = (batch.positives + ref.positives) / (batch.count + ref.count)
    se = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / batch.count + 1 / ref.count))
    return abs(batch.base_rate - ref.base_rate) / se


@dataclass
class _Evidence:
    """The strongest base-rate shift of one attribute (for its ``Decision``)."""

    z: float = 0.0
    p_adjusted: float = 1.0


def _comparable(stats: AttributeStats, ref: AttributeStats | None, policy: BiasPolicy) -> int:
    """How many groups of ``stats`` get a base-rate test against ``ref``."""
    if ref is None:
        return 0
    ref_groups = {g.group: g for g in ref.groups}
    return sum(
        1
        for g in stats.groups
        if g.group in ref_groups
        and min(g.count, ref_groups[g.group].count) >= policy.min_group_size
    )


def _judge(
    stats: AttributeStats,
    policy: BiasPolicy,
    baseline: AttributeStats | None,
    tests: int,
    evidence: _Evidence,
) -> tuple[bool, bool, list[str], dict[str, MetricValue], list[tuple[str, bool]]]:
    """(warn, block, details, metrics, [(group, flag positives?)]) for one attribute."""
    name = stats.attribute
    details = [f"binning: {stats.binning_text}"] if stats.binning_text else []
    metrics: dict[str, MetricValue] = {}
    warn = block = False
    for g in stats.groups:
        metrics[f"{name}[{g.group}].count"] = g.count
        metrics[f"{name}[{g.group}].base_rate"] = round(g.base_rate, 6)
    large = [g for g in stats.groups if g.count >= policy.min_group_size]
    if len(large) >= 2:
        dpd, dpr, _rates = _fairlearn_parity(large)
        metrics[f"{name}.demographic_parity_difference"] = round(dpd, 6)
        metrics[f"{name}.disparate_impact_ratio"] = round(dpr, 6) if math.isfinite(dpr) else None
        if dpr < policy.four_fifths:
            warn = True
            block = block or policy.disparate_impact_blocking
            details.append(
                f"four-fifths rule fails: disparate-impact ratio {dpr:.2f} < {policy.four_fifths}"
            )
        if dpd >= policy.parity_difference_warn:
            warn = True
            details.append(f"demographic-parity difference {dpd:.2f}")
    small = [g.group for g in stats.groups if g.count < policy.min_group_size]
    if small:
        details.append(
            f"groups below {policy.min_group_size} rows left out of parity: " + ", ".join(small)
        )
    flag: list[tuple[str, bool]] = []
    if baseline is not None:
        w, b, more, flag = _compare(stats, baseline, policy, metrics, tests, evidence)
        warn, block = warn or w, block or b
        details += more
    return warn, block, details, metrics, flag


def _compare(
    stats: AttributeStats,
    ref: AttributeStats,
    policy: BiasPolicy,
    metrics: dict[str, MetricValue],
    tests: int,
    evidence: _Evidence,
) -> tuple[bool, bool, list[str], list[tuple[str, bool]]]:
    warn = block = False
    details: list[str] = []
    flag: list[tuple[str, bool]] = []
    ref_groups = {g.group: g for g in ref.groups}
    batch_groups = {g.group: g for g in stats.groups}
    for g in stats.groups:
        r = ref_groups.get(g.group)
        if r is None:
            if g.count >= policy.min_group_size:
                warn = True
                details.append(f"group {g.group!r} is new ({g.count} rows, absent in reference)")
            continue
        share_shift = g.count / stats.rows - r.count / ref.rows
        if abs(share_shift) >= policy.representation_shift_warn:
            warn = True
            details.append(
                f"group {g.group!r} share {r.count / ref.rows:.1%} -> {g.count / stats.rows:.1%}"
            )
        if min(g.count, r.count) < policy.min_group_size:
            continue
        shift = g.base_rate - r.base_rate
        metrics[f"{stats.attribute}[{g.group}].base_rate_shift"] = round(shift, 6)
        z = _shift_z(g, r)
        p_adjusted = min(1.0, math.erfc(z / math.sqrt(2.0)) * max(tests, 1))  # two-sided
        if z > evidence.z:
            evidence.z, evidence.p_adjusted = z, p_adjusted
        if abs(shift) < policy.base_rate_shift_warn or z < 3.0:
            continue
        warn = True
        # large AND significant at the bias audit's share of the batch budget
        severe = abs(shift) >= policy.base_rate_shift_block and p_adjusted < policy.alpha
        block = block or severe
        details.append(
            f"group {g.group!r} label base rate {r.base_rate:.1%} -> "
            f"{g.base_rate:.1%} ({'blocking' if severe else 'warning'})"
        )
        flag.append((g.group, shift > 0))
    for name, r in ref_groups.items():
        if name not in batch_groups and r.count / ref.rows >= policy.representation_shift_warn:
            warn = True
            details.append(f"group {name!r} ({r.count / ref.rows:.1%} of reference) is missing")
    return warn, block, details, flag


def _positive(spec: BiasSpec, df: pl.DataFrame) -> pl.Expr:
    # The favourable label arrives as text from the CLI/API ("1"): compare it in the label
    # column's type, or polars refuses to compare i64 with str (an unhandled error).
    return pl.lit(spec.positive_label).cast(df.schema[spec.label], strict=False)


def check_bias(
    df: pl.DataFrame,
    spec: BiasSpec,
    *,
    policy: BiasPolicy | None = None,
    baseline: BiasBaseline | None = None,
    reference: DatasetProfile | None = None,
) -> tuple[CheckResult, ...]:
    """One CheckResult per sensitive attribute (a missing column fails, blocking)."""
    policy = policy or BiasPolicy()
    missing = [c for c in (spec.label, *(a.name for a in spec.sensitive)) if c not in df.schema]
    if missing:
        return (
            CheckResult(
                name="bias_config",
                category="bias",
                passed=False,
                blocking=True,
                summary=f"cannot audit bias: column(s) {', '.join(map(repr, missing))} missing",
                details=(f"batch columns: {', '.join(df.columns)}",),
            ),
        )
    positive = df.select(
        (pl.col(spec.label) == _positive(spec, df)).fill_null(False).alias("__y")
    ).to_series()
    prepared = []
    for attr in spec.sensitive:
        bins = attr.bins or (baseline.bins_for(attr.name) if baseline else None)
        if bins is None:
            bins = default_bins(attr.name, df.get_column(attr.name), reference)
        stats, groups = attribute_stats(df.get_column(attr.name), positive, bins)
        ref_stats = baseline.attribute(attr.name) if baseline else None
        prepared.append((attr, stats, groups, ref_stats))
    # Bonferroni over every group of every attribute: one share of the batch budget
    tests = sum(_comparable(stats, ref, policy) for _, stats, _, ref in prepared)
    results = []
    for attr, stats, groups, ref_stats in prepared:
        evidence = _Evidence()
        warn, block, details, metrics, flag = _judge(stats, policy, ref_stats, tests, evidence)
        rows: tuple[int, ...] = ()
        if flag:
            mask = pl.any_horizontal(
                [(groups == g) & (positive if up else ~positive) for g, up in flag]
            )
            idx = pl.select(mask).to_series().arg_true()
            rows = tuple(idx.head(policy.max_flagged).to_list())
            metrics["flagged_total"] = idx.len()
        summary = f"{len(stats.groups)} group(s) of {attr.name!r}; " + (
            "; ".join(d for d in details if not d.startswith("binning")) or "no issue"
        )
        results.append(
            CheckResult(
                name=f"bias_{attr.name}",
                category="bias",
                passed=not (warn or block),
                blocking=block,
                summary=summary[:300],
                metrics=metrics,
                flagged_rows=rows,
                details=tuple(details),
                decision=Decision(
                    "max_base_rate_shift_z",
                    evidence.z,
                    evidence.p_adjusted if tests else None,
                    policy.alpha,
                    policy.base_rate_shift_block,
                ),
            )
        )
    return tuple(results)


def bias_baseline(
    df: pl.DataFrame, spec: BiasSpec, reference: DatasetProfile | None = None
) -> BiasBaseline:
    """Group statistics of reference data, for later batches to be compared with."""
    missing = [c for c in (spec.label, *(a.name for a in spec.sensitive)) if c not in df.schema]
    if missing:
        raise AuditConfigError(
            f"bias baseline: column(s) {', '.join(missing)} missing",
            hint=f"columns: {', '.join(df.columns)}",
        )
    positive = df.select((pl.col(spec.label) == _positive(spec, df)).fill_null(False)).to_series()
    attrs = []
    for attr in spec.sensitive:
        bins = attr.bins or default_bins(attr.name, df.get_column(attr.name), reference)
        attrs.append(attribute_stats(df.get_column(attr.name), positive, bins)[0])
    return BiasBaseline(rows=df.height, attributes=tuple(attrs))


__all__ = [
    "BiasBaseline",
    "BiasPolicy",
    "BiasSpec",
    "SensitiveAttribute",
    "bias_baseline",
    "check_bias",
]
