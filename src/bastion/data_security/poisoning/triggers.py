"""Backdoor triggers: a value pattern, rare in trusted data, whose batch rows share one label.

A backdoor attacker stamps a pattern (one feature value, often a rare exact
number such as ``Price == 4321``, or a pair of values) on some rows and forces
their label, so the trained model learns "pattern -> approve".  For every
pattern with at least ``trigger_min_support`` rows in the batch and label
purity at least ``trigger_min_purity`` this detector asks two questions of the
trusted sample: is the pattern over-represented (Poisson tail with the trusted
frequency, smoothed by half a row) or does its dominant label occur far more
often than trusted rows with the pattern (shrunk towards the class prior) would
predict (binomial tail)?  The purity must also be unlikely under the class
prior (``trigger_purity_alpha``).  Either p-value, Bonferroni-corrected over every
pattern with enough support, must be below ``trigger_alpha``.  Pairs are only
reported when neither value alone already is a trigger.

Example::

    check = backdoor_triggers(BatchView.of(batch, reference), reference, policy)
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import polars as pl
from scipy import stats as sps

from bastion.data_security.checks.report import CheckResult, MetricValue
from bastion.data_security.poisoning._batch import BatchView, result
from bastion.data_security.poisoning.policy import PoisoningPolicy
from bastion.data_security.poisoning.reference import PoisoningReference

#: pseudo-rows of the class prior mixed into a pattern's trusted label rate
_PRIOR_WEIGHT = 10.0


@dataclass(frozen=True)
class _Candidate:
    columns: tuple[str, ...]
    values: tuple[str, ...]
    support: int
    label: int
    hits: int

    def describe(self, classes: tuple[str, ...]) -> str:
        pattern = " & ".join(f"{c} = {v}" for c, v in zip(self.columns, self.values, strict=True))
        return f"{pattern}: {self.hits}/{self.support} rows labelled {classes[self.label]!r}"


def _candidates(
    cells: pl.DataFrame, columns: tuple[str, ...], policy: PoisoningPolicy
) -> tuple[list[_Candidate], int]:
    """Patterns over ``columns`` with enough support; also how many had enough support."""
    grouped = (
        cells.group_by([*columns, "__label"])
        .agg(pl.len().alias("hits"))
        .with_columns(pl.col("hits").sum().over(list(columns)).alias("support"))
        .filter(pl.col("support") >= policy.trigger_min_support)
    )
    tested = grouped.select(columns).unique().height
    pure = grouped.filter(pl.col("hits") >= policy.trigger_min_purity * pl.col("support"))
    out = [
        _Candidate(
            columns,
            tuple(str(row[c]) for c in columns),
            int(row["support"]),
            int(row["__label"]),
            int(row["hits"]),
        )
        for row in pure.iter_rows(named=True)
    ]
    return out, tested


def _trusted_counts(trusted: pl.DataFrame, cand: _Candidate) -> tuple[int, int]:
    match = trusted.filter(
        pl.all_horizontal([pl.col(c) == v for c, v in zip(cand.columns, cand.values, strict=True)])
    )
    return match.height, int((match.get_column("__label") == cand.label).sum())


def _pure_beyond_prior(cand: _Candidate, prior: np.ndarray, policy: PoisoningPolicy) -> bool:
    tail = float(sps.binom.sf(cand.hits - 1, cand.support, prior[cand.label]))
    return tail < policy.trigger_purity_alpha


def _p_value(
    cand: _Candidate, trusted: pl.DataFrame, n: int, prior: np.ndarray, rare_share: float
) -> float:
    m_total = trusted.height
    m, m_label = _trusted_counts(trusted, cand)
    expected = n * (m + 0.5) / (m_total + 1.0)
    p_over = float(sps.poisson.sf(cand.support - 1, expected))
    if m > rare_share * m_total:
        # A pattern common in trusted data is no trigger: a label shift on it is
        # the label-shift detectors' finding, not a backdoor.  Only a massive
        # over-representation of such a pattern still counts.
        return p_over
    rate = (m_label + _PRIOR_WEIGHT * prior[cand.label]) / (m + _PRIOR_WEIGHT)
    p_label = float(sps.binom.sf(cand.hits - 1, cand.support, min(rate, 1 - 1e-9)))
    return min(p_over, p_label)


def backdoor_triggers(
    view: BatchView, ref: PoisoningReference, policy: PoisoningPolicy
) -> CheckResult:
    known = view.known
    cells = (
        ref.schema.cell_strings(view.frame)
        .with_columns(pl.Series("__label", view.y), pl.Series("__row", np.arange(view.n)))
        .filter(pl.col("__label") >= 0)
    )
    trusted = ref.derived.cells(ref)
    prior = np.bincount(ref.sample_labels, minlength=len(ref.schema.classes)) / ref.sample.height
    names = ref.schema.feature_names
    singles: list[_Candidate] = []
    tested = 0
    for name in names:
        found, count = _candidates(cells, (name,), policy)
        singles += found
        tested += count
    pairs: list[_Candidate] = []
    if policy.trigger_pairs:
        for a, b in combinations(names, 2):
            found, count = _candidates(cells, (a, b), policy)
            pairs += found
            tested += count
    alpha = policy.trigger_alpha / max(tested, 1)
    n = int(known.size)
    singles = [c for c in singles if _pure_beyond_prior(c, prior, policy)]
    pairs = [c for c in pairs if _pure_beyond_prior(c, prior, policy)]
    rare = policy.trigger_rare_share
    triggers = [c for c in singles if _p_value(c, trusted, n, prior, rare) < alpha]
    single_items = {(c.columns[0], c.values[0]) for c in triggers}
    for cand in pairs:
        # a pair containing a trigger value is that trigger again, not a new finding
        if any(
            (col, val) in single_items for col, val in zip(cand.columns, cand.values, strict=True)
        ):
            continue
        if _p_value(cand, trusted, n, prior, rare) < alpha:
            triggers.append(cand)
    flagged: set[int] = set()
    for cand in triggers:
        match = cells.filter(
            pl.all_horizontal(
                [pl.col(c) == v for c, v in zip(cand.columns, cand.values, strict=True)]
            )
            & (pl.col("__label") == cand.label)
        )
        flagged.update(int(r) for r in match.get_column("__row").to_list())
    metrics: dict[str, MetricValue] = {
        "patterns_tested": tested,
        "triggers": len(triggers),
        "rows_flagged": len(flagged),
    }
    passed = not triggers
    summary = (
        "no value pattern concentrates one label beyond trusted data"
        if passed
        else f"{len(triggers)} backdoor trigger pattern(s) found on {len(flagged)} row(s)"
    )
    details = [c.describe(ref.schema.classes) for c in triggers]
    return result(
        "backdoor_triggers",
        passed,
        policy.trigger_blocking,
        summary,
        metrics,
        sorted(flagged),
        details,
        policy,
    )


__all__ = ["backdoor_triggers"]
