"""Backdoor triggers: a value pattern, rare in trusted data, whose batch rows share one label.

A backdoor attacker stamps a pattern (one feature value, often a rare exact
number such as ``Price == 4321``, or a pair of values) on some rows and forces
their label, so the trained model learns "pattern -> approve".  For every
pattern with at least ``trigger_min_support`` rows in the batch and label
purity at least ``trigger_min_purity`` this detector asks two questions of the
trusted sample: is the pattern over-represented (conditional binomial test of
the batch count against the trusted count, so the trusted sample's own noise is
part of the null) or, for a pattern rare in trusted data, does its dominant
label occur far more often than trusted rows with the pattern (shrunk towards
the class prior) would predict (beta-binomial tail, so the trusted rate's own
noise is in the null)?  Either p-value, Bonferroni-corrected over every pattern
with enough support, must be below ``trigger_alpha``.  Effect-size floors keep
huge clean batches from alarming on tiny differences: the purity must be
unlikely under the class prior (``trigger_purity_alpha``), the pattern's
minority-label share must be at most ``trigger_max_error_ratio`` of the trusted
one, and an over-representation must be ``trigger_min_over_ratio``-fold.  A
value never seen in trusted rows and significantly over-represented with label
purity at least ``trigger_min_purity`` is a trigger whatever the class prior
(a backdoor into the majority class).  Pairs are only reported when neither
value alone already is a trigger.

All counting is vectorised: one group-by per column (numbers grouped by their
64-bit pattern, which partitions rows as their canonical strings do) and one
count per column pair over integer codes of the values frequent enough to matter, one join with the
trusted counts, and the tails of every pattern in one scipy call.

Example::

    check = backdoor_triggers(BatchView.of(batch, reference), reference, policy)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats as sps

from bastion.data_security.checks.report import CheckResult, Decision, MetricValue
from bastion.data_security.poisoning._batch import BatchView, result
from bastion.data_security.poisoning._schema import (
    _NULL,
    FeatureKind,
    FloatArray,
    IntArray,
    TableSchema,
)
from bastion.data_security.poisoning.policy import PoisoningPolicy
from bastion.data_security.poisoning.reference import PoisoningReference

#: pseudo-rows of the class prior mixed into a pattern's trusted label rate
_PRIOR_WEIGHT = 10.0
_LABEL = "__label"
#: column pairs grouped per parallel polars collect
_PAIR_BATCH = 8
#: value pairs x labels counted in a dense array (larger vocabularies use a group-by)
_DENSE_CELLS = 1 << 22
#: the grouping key of a missing number (a NaN pattern: no number has it)
_MISSING_BITS = np.uint64(0x7FF8_0000_0000_0001)


@dataclass(frozen=True)
class _Patterns:
    """Candidate patterns as parallel arrays (one entry per pattern and dominant label)."""

    columns: list[tuple[str, ...]]
    values: list[tuple[str, ...]]
    keys: IntArray  # code of the value (singles) or of the value pair (pairs)
    support: IntArray
    label: IntArray
    hits: IntArray

    def describe(self, i: int, classes: tuple[str, ...]) -> str:
        pattern = " & ".join(
            f"{c} = {v}" for c, v in zip(self.columns[i], self.values[i], strict=True)
        )
        return (
            f"{pattern}: {int(self.hits[i])}/{int(self.support[i])} rows labelled "
            f"{classes[int(self.label[i])]!r}"
        )


@dataclass(frozen=True)
class _Coded:
    """Per column: the values frequent enough in the batch to form a pattern, as int codes.

    ``vocab`` holds the values' canonical cell strings in sorted order (a value's
    code is its position), ``keys`` the same values as the batch's grouping keys.
    """

    vocab: dict[str, list[str]]
    keys: dict[str, pl.Series] = field(default_factory=dict)

    def codes(self, frame: pl.DataFrame, names: tuple[str, ...]) -> pl.DataFrame:
        """Codes of the batch's grouping keys (``_value_keys``); None for other values."""
        return self._replace(frame, names, self.keys)

    def codes_of_cells(self, cells: pl.DataFrame, names: tuple[str, ...]) -> pl.DataFrame:
        """Codes of canonical cell strings (the trusted sample's ``cells``)."""
        old = {n: pl.Series(self.vocab[n], dtype=pl.String) for n in names}
        return self._replace(cells, names, old)

    @staticmethod
    def _replace(
        frame: pl.DataFrame, names: tuple[str, ...], old: dict[str, pl.Series]
    ) -> pl.DataFrame:
        exprs = [
            pl.col(n)
            .replace_strict(old[n], pl.Series(range(old[n].len()), dtype=pl.Int64), default=None)
            .cast(pl.Int64)
            .alias(n)
            for n in names
        ]
        return frame.select(*exprs, pl.col(_LABEL))


def _value_keys(view: BatchView) -> pl.DataFrame:
    """One grouping key per cell that partitions rows exactly as the cell strings do.

    A number's canonical string is a function of its float64 value and distinct
    values print differently, so the value's 64-bit pattern (one pattern for
    every missing value) groups the rows alike, and integers hash much faster
    than strings.  Categorical cells keep their strings.
    """
    columns: dict[str, pl.Series | npt.NDArray[np.uint64]] = {}
    for spec in view.schema.features:
        if spec.kind is FeatureKind.NUMERIC:
            values = np.array(
                view.frame.get_column(spec.name).cast(pl.Float64).to_numpy(), dtype=np.float64
            )
            bits = values.view(np.uint64)
            bits[np.isnan(values)] = _MISSING_BITS
            columns[spec.name] = bits
        else:
            columns[spec.name] = view.cells.get_column(spec.name)
    return pl.DataFrame(columns).with_columns(
        pl.Series(_LABEL, view.y), pl.Series("__row", np.arange(view.n))
    )


def _key_texts(keys: pl.Series, numeric: bool) -> list[str]:
    """The canonical cell strings of grouping keys (``TableSchema.cell_strings``)."""
    if not numeric:
        return [str(v) for v in keys.to_list()]
    values = pl.Series(keys.to_numpy().astype(np.uint64).view(np.float64))
    return list(values.fill_nan(None).cast(pl.String).fill_null(_NULL).to_list())


def _pair_key(a: str, b: str, card_b: int) -> pl.Expr:
    return (pl.col(a) * card_b + pl.col(b)).alias("key")


def _pure(supported: pl.DataFrame, n_classes: int, policy: PoisoningPolicy) -> pl.DataFrame:
    """(key, label, hits, support) of supported patterns whose label purity is high enough."""
    parts = [
        supported.filter(pl.col(f"h{c}") >= policy.trigger_min_purity * pl.col("support")).select(
            "key", pl.lit(c, pl.Int64).alias(_LABEL), pl.col(f"h{c}").alias("hits"), "support"
        )
        for c in range(n_classes)
    ]
    return pl.concat(parts)


def _singles(
    keys: pl.DataFrame, schema: TableSchema, policy: PoisoningPolicy
) -> tuple[_Coded, list[tuple[str, pl.DataFrame]], int]:
    names = schema.feature_names
    lazy = [
        keys.lazy()
        .group_by(pl.col(n).alias("value"), _LABEL)
        .agg(pl.len().cast(pl.Int64).alias("hits"))
        .with_columns(pl.col("hits").sum().over("value").alias("support"))
        for n in names
    ]
    vocab: dict[str, list[str]] = {}
    vocab_keys: dict[str, pl.Series] = {}
    found: list[tuple[str, pl.DataFrame]] = []
    tested = 0
    for spec, frame in zip(schema.features, pl.collect_all(lazy), strict=True):
        name = spec.name
        frequent = frame.filter(pl.col("support") >= policy.trigger_min_support)
        distinct = frequent.get_column("value").unique()
        texts = _key_texts(distinct, spec.kind is FeatureKind.NUMERIC)
        # codes follow the values' sorted strings, as when the strings were grouped
        order = sorted(range(len(texts)), key=texts.__getitem__)
        vocab[name] = [texts[i] for i in order]
        vocab_keys[name] = distinct.gather(order) if order else distinct
        tested += len(order)
        pure = frequent.filter(pl.col("hits") >= policy.trigger_min_purity * pl.col("support"))
        code = pl.col("value").replace_strict(
            vocab_keys[name], pl.Series(range(len(order)), dtype=pl.Int64)
        )
        found.append((name, pure.select(code.alias("key"), _LABEL, "hits", "support")))
    return _Coded(vocab, vocab_keys), found, tested


def _dense_counts(
    a: IntArray, b: IntArray, labels: IntArray, cards: tuple[int, int], n_classes: int
) -> tuple[IntArray, IntArray]:
    """(key, class counts) of every value pair: one ``bincount`` over (pair, label) cells.

    Codes are ``0..card-1`` with ``card`` for a missing code; pairs with a missing
    side are dropped, as the group-by drops nulls.  Keys are ``a * card_b + b``.
    """
    card_a, card_b = cards
    cell = (a * (card_b + 1) + b) * n_classes + labels
    counts = np.bincount(cell, minlength=(card_a + 1) * (card_b + 1) * n_classes)
    hits = counts.reshape(card_a + 1, card_b + 1, n_classes)[:card_a, :card_b]
    return np.arange(card_a * card_b, dtype=np.int64), hits.reshape(-1, n_classes)


def _pairs(
    coded: pl.DataFrame,
    vocab: _Coded,
    names: tuple[str, ...],
    n_classes: int,
    policy: PoisoningPolicy,
) -> tuple[list[tuple[tuple[str, str], pl.DataFrame]], int]:
    todo = [(a, b) for a, b in combinations(names, 2) if vocab.vocab[a] and vocab.vocab[b]]
    cards = {n: len(vocab.vocab[n]) for n in names}
    codes = {n: coded.get_column(n).fill_null(cards[n]).to_numpy().astype(np.int64) for n in names}
    labels = coded.get_column(_LABEL).to_numpy().astype(np.int64)
    results: dict[tuple[str, str], pl.DataFrame] = {}
    sparse: list[tuple[str, str]] = []
    for a, b in todo:
        if (cards[a] + 1) * (cards[b] + 1) * n_classes > _DENSE_CELLS:
            sparse.append((a, b))
            continue
        # small vocabularies (the usual case): counting in a dense array is an order of
        # magnitude cheaper than a hash group-by, with the same counts
        keys, hits = _dense_counts(codes[a], codes[b], labels, (cards[a], cards[b]), n_classes)
        support = hits.sum(axis=1)
        keep = support >= policy.trigger_min_support
        results[(a, b)] = pl.DataFrame(
            {
                "key": keys[keep],
                "support": support[keep].astype(np.int64),
                **{f"h{c}": hits[keep, c].astype(np.int64) for c in range(n_classes)},
            }
        )
    # one group-by per remaining pair with every class count as a column
    lazy = [
        coded.lazy()
        .select(_pair_key(a, b, cards[b]), pl.col(_LABEL))
        .drop_nulls()
        .group_by("key")
        .agg(
            pl.len().cast(pl.Int64).alias("support"),
            *((pl.col(_LABEL) == c).sum().cast(pl.Int64).alias(f"h{c}") for c in range(n_classes)),
        )
        .filter(pl.col("support") >= policy.trigger_min_support)
        .sort("key")
        for a, b in sparse
    ]
    # a few pairs per parallel collect: all at once would hold every hash table at once
    for lo in range(0, len(lazy), _PAIR_BATCH):
        chunk = sparse[lo : lo + _PAIR_BATCH]
        results.update(zip(chunk, pl.collect_all(lazy[lo : lo + _PAIR_BATCH]), strict=True))
    out: list[tuple[tuple[str, str], pl.DataFrame]] = []
    tested = 0
    for pair in todo:
        supported = results[pair]
        tested += supported.height
        pure = _pure(supported, n_classes, policy)
        if pure.height:
            out.append((pair, pure))
    return out, tested


def _collect(
    found: list[tuple[tuple[str, ...], pl.DataFrame]],
    vocab: _Coded,
    trusted: pl.DataFrame,
) -> tuple[_Patterns, IntArray, IntArray]:
    """Candidate arrays plus the trusted counts (all labels, the dominant label) of each."""
    columns: list[tuple[str, ...]] = []
    values: list[tuple[str, ...]] = []
    parts: list[pl.DataFrame] = []
    m_all: list[IntArray] = []
    m_lab: list[IntArray] = []
    for cols, frame in found:
        keys = frame.get_column("key").to_numpy()
        cards = [len(vocab.vocab[c]) for c in cols]
        if len(cols) == 1:
            codes = [keys]
            tkey = pl.col(cols[0])
        else:
            codes = [keys // cards[1], keys % cards[1]]
            tkey = _pair_key(cols[0], cols[1], cards[1])
        for i in range(frame.height):
            columns.append(cols)
            values.append(
                tuple(vocab.vocab[c][int(k[i])] for c, k in zip(cols, codes, strict=True))
            )
        counts = (
            trusted.select(tkey.alias("key"), pl.col(_LABEL))
            .drop_nulls()
            .filter(pl.col("key").is_in(frame.get_column("key").implode()))
            .group_by("key", _LABEL)
            .agg(pl.len().cast(pl.Int64).alias("m_label"))
            .with_columns(pl.col("m_label").sum().over("key").alias("m"))
        )
        per_key = counts.select("key", "m").unique()
        joined = frame.join(per_key, on="key", how="left", maintain_order="left").join(
            counts.select("key", _LABEL, "m_label"),
            on=["key", _LABEL],
            how="left",
            maintain_order="left",
        )
        parts.append(joined)
        m_all.append(joined.get_column("m").fill_null(0).to_numpy().astype(np.int64))
        m_lab.append(joined.get_column("m_label").fill_null(0).to_numpy().astype(np.int64))
    both = pl.concat(parts) if parts else None

    def col(name: str) -> IntArray:
        if both is None:
            return np.zeros(0, dtype=np.int64)
        return both.get_column(name).to_numpy().astype(np.int64)

    patterns = _Patterns(columns, values, col("key"), col("support"), col(_LABEL), col("hits"))
    empty = np.zeros(0, dtype=np.int64)
    return (
        patterns,
        np.concatenate(m_all) if m_all else empty,
        np.concatenate(m_lab) if m_lab else empty,
    )


def _candidates(
    frame: pl.DataFrame,
    n: int,
    m_total: int,
    prior: FloatArray,
    alpha: float,
    policy: PoisoningPolicy,
) -> pl.DataFrame:
    """The patterns of ``frame`` that ``_significant`` could call triggers, from batch counts.

    A trigger is either beyond the class prior (a batch-only test) or stamped, and
    a stamped pattern is never seen in trusted rows (``m == 0``), where the count
    test is at its most significant.  Every other pattern is dropped here, before
    its trusted counts are looked up: the decisions are unchanged, and a large
    batch's many ordinary pure patterns cost a vectorised test instead of a join.
    """
    s = frame.get_column("support").to_numpy().astype(np.int64)
    h = frame.get_column("hits").to_numpy().astype(np.int64)
    lab = frame.get_column(_LABEL).to_numpy().astype(np.int64)
    beyond_prior = sps.binom.sf(h - 1, s, prior[lab]) < policy.trigger_purity_alpha
    purity = h / np.maximum(s, 1)
    # _significant's count test and ratio with m = 0 (the smallest p-value, largest ratio)
    p_over = sps.binom.sf(s - 1, s, n / (n + m_total))
    ratio = (s / max(n, 1)) / (0.5 / (m_total + 1.0))
    stamped = (p_over < alpha) & (ratio >= policy.trigger_min_over_ratio)
    stamped &= purity >= policy.trigger_min_purity
    return frame.filter(pl.Series(beyond_prior | stamped))


def _significant(
    pat: _Patterns,
    m: IntArray,
    m_label: IntArray,
    n: int,
    m_total: int,
    prior: FloatArray,
    alpha: float,
    policy: PoisoningPolicy,
) -> np.ndarray:
    """Which patterns are triggers (vectorised tests and effect-size floors)."""
    s, h, lab = pat.support, pat.hits, pat.label
    purity = h / np.maximum(s, 1)
    beyond_prior = sps.binom.sf(h - 1, s, prior[lab]) < policy.trigger_purity_alpha
    rate = np.minimum((m_label + _PRIOR_WEIGHT * prior[lab]) / (m + _PRIOR_WEIGHT), 1 - 1e-9)
    # the minority label must be clearly rarer than in trusted rows with this pattern
    purer = (1.0 - purity) <= policy.trigger_max_error_ratio * (1.0 - rate)
    # batch count vs trusted count, conditioned on their sum: both samples' noise is in the null
    q = n / (n + m_total)
    p_over = sps.binom.sf(s - 1, s + m, q)
    ratio = (s / max(n, 1)) / ((m + 0.5) / (m_total + 1.0))
    over = (p_over < alpha) & (ratio >= policy.trigger_min_over_ratio)
    # a pattern common in trusted data is no trigger by label alone: a label shift on it
    # is the label-shift detectors' finding, not a backdoor
    rare = m <= policy.trigger_rare_share * m_total
    # the trusted rate is itself estimated from m rows: beta-binomial predictive, not binomial
    a = m_label + _PRIOR_WEIGHT * prior[lab]
    b = (m - m_label) + _PRIOR_WEIGHT * (1.0 - prior[lab])
    # scipy sums the beta-binomial tail term by term: only where it can decide the outcome
    needed = np.flatnonzero(rare & beyond_prior & purer & ~over)
    relabelled = np.zeros(s.size, dtype=bool)
    relabelled[needed] = sps.betabinom.sf(h[needed] - 1, s[needed], a[needed], b[needed]) < alpha
    # A value never seen in trusted rows, stamped on many batch rows that (almost) all
    # carry one label, is a trigger even when that label is the majority class: the
    # conditional count test already knows how often a clean batch of this size
    # repeats an unseen value (a rescaled column spreads over many values instead).
    stamped = (m == 0) & over & (purity >= policy.trigger_min_purity)
    return np.asarray((beyond_prior & purer & (over | relabelled)) | stamped, dtype=bool)


def _flag(
    cells: pl.DataFrame, coded: pl.DataFrame, pat: _Patterns, chosen: IntArray, vocab: _Coded
) -> IntArray:
    """Batch rows carrying a chosen pattern with its dominant label."""
    rows = cells.get_column("__row").to_numpy()
    mask = np.zeros(cells.height, dtype=bool)
    labels = coded.get_column(_LABEL).to_numpy()
    groups: dict[tuple[tuple[str, ...], int], list[int]] = {}
    for i in chosen.tolist():
        groups.setdefault((pat.columns[i], int(pat.label[i])), []).append(int(pat.keys[i]))
    for (cols, lab), keys in groups.items():
        key = (
            pl.col(cols[0])
            if len(cols) == 1
            else _pair_key(cols[0], cols[1], len(vocab.vocab[cols[1]]))
        )
        hit = coded.select(key.is_in(keys).fill_null(False)).to_series().to_numpy()
        mask |= hit & (labels == lab)
    return np.asarray(rows[mask], dtype=np.int64)


def backdoor_triggers(
    view: BatchView, ref: PoisoningReference, policy: PoisoningPolicy
) -> CheckResult:
    names = ref.schema.feature_names
    keys = _value_keys(view).filter(pl.col(_LABEL) >= 0)
    prior = np.bincount(ref.sample_labels, minlength=len(ref.schema.classes)) / ref.sample.height
    vocab, single_found, tested = _singles(keys, ref.schema, policy)
    coded = vocab.codes(keys, names)
    trusted = vocab.codes_of_cells(ref.derived.cells(ref), names)
    n, m_total = int(view.known.size), ref.sample.height
    pair_found: list[tuple[tuple[str, str], pl.DataFrame]] = []
    if policy.trigger_pairs:
        pair_found, pair_tested = _pairs(coded, vocab, names, len(ref.schema.classes), policy)
        tested += pair_tested
    alpha = policy.level(policy.trigger_alpha) / max(tested, 1)
    singles_in: list[tuple[tuple[str, ...], pl.DataFrame]] = [
        ((name,), pruned)
        for name, frame in single_found
        if (pruned := _candidates(frame, n, m_total, prior, alpha, policy)).height
    ]
    pat, m, m_label = _collect(singles_in, vocab, trusted)
    chosen = np.flatnonzero(_significant(pat, m, m_label, n, m_total, prior, alpha, policy))
    single_items = {(pat.columns[i][0], pat.values[i][0]) for i in chosen.tolist()}
    triggers = [(pat, int(i)) for i in chosen]
    flagged = _flag(keys, coded, pat, chosen, vocab)
    if pair_found:
        pairs_in: list[tuple[tuple[str, ...], pl.DataFrame]] = [
            (p, pruned)
            for p, f in pair_found
            if (pruned := _candidates(f, n, m_total, prior, alpha, policy)).height
        ]
        ppat, pm, pm_label = _collect(pairs_in, vocab, trusted)
        hit = _significant(ppat, pm, pm_label, n, m_total, prior, alpha, policy)
        # a pair containing a trigger value is that trigger again, not a new finding
        fresh = np.array(
            [
                not any(item in single_items for item in zip(c, v, strict=True))
                for c, v in zip(ppat.columns, ppat.values, strict=True)
            ],
            dtype=bool,
        )
        pchosen = np.flatnonzero(hit & fresh)
        triggers += [(ppat, int(i)) for i in pchosen]
        flagged = np.union1d(flagged, _flag(keys, coded, ppat, pchosen, vocab))
    metrics: dict[str, MetricValue] = {
        "patterns_tested": tested,
        "triggers": len(triggers),
        "rows_flagged": int(flagged.size),
    }
    passed = not triggers
    summary = (
        "no value pattern concentrates one label beyond trusted data"
        if passed
        else f"{len(triggers)} backdoor trigger pattern(s) found on {flagged.size} row(s)"
    )
    details = [p.describe(i, ref.schema.classes) for p, i in triggers]
    return result(
        "backdoor_triggers",
        passed,
        policy.trigger_blocking,
        summary,
        metrics,
        flagged,
        details,
        policy,
        Decision("trigger_patterns", float(len(triggers)), None, alpha * max(tested, 1)),
    )


__all__ = ["backdoor_triggers"]
