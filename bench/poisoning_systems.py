"""The three gates the poisoning benchmark compares, behind one small interface.

- ``BastionGate``  — what ingestion runs: the inferred contract, the quality checks
  against the trusted profile, and ``detect_poisoning`` against a pinned
  reference; default policies, label and favourable label only.
- ``DayOneGate``   — what an engineer assembles in a day: a gradient-boosting model
  on the trusted rows, cleanlab ``find_label_issues`` on the batch, an
  IsolationForest, exact duplicates (in the batch and against trusted rows,
  incl. same features with another label), PSI / chi-square per feature and a
  label-rate z; each statistic's threshold is its maximum over clean
  calibration batches.
- ``DatalabGate``  — cleanlab's ``Datalab.find_issues`` with default issue types
  on the batch (features and out-of-sample probabilities from the trusted
  model); each issue type's share of rows is thresholded at its maximum over the
  same calibration batches.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from cleanlab.filter import find_label_issues
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest

from bastion.data_security.checks.quality import run_quality_checks
from bastion.data_security.checks.report import AuditReport, Verdict
from bastion.data_security.contract import InferenceOptions, check_contract, infer_contract
from bastion.data_security.poisoning import PoisoningReference, detect_poisoning
from bastion.data_security.poisoning._schema import TableSchema
from bastion.data_security.profile import profile_frame


@dataclass(frozen=True)
class Outcome:
    quarantined: bool
    by_poisoning: bool
    rows: frozenset[int]
    seconds: float
    reasons: tuple[str, ...] = ()


class BastionGate:
    name = "Bastion"

    def __init__(self, trusted: pl.DataFrame, label: str) -> None:
        t0 = time.perf_counter()
        self.label = label
        self.reference = PoisoningReference.build(trusted, label=label)
        self.profile = profile_frame(trusted)
        # exactly what ingestion infers for a new dataset (ingest/pipeline.py)
        self.contract = infer_contract(
            self.profile, version=1, options=InferenceOptions(range_margin=0.5)
        )
        self.build_seconds = time.perf_counter() - t0

    def calibrate(self, batches: list[pl.DataFrame]) -> None:
        """Bastion is calibrated by construction: clean batches are not used."""

    def audit(self, batch: pl.DataFrame) -> Outcome:
        t0 = time.perf_counter()
        checks = [
            check_contract(batch, self.contract),
            *run_quality_checks(batch, self.profile),
            *detect_poisoning(batch, self.reference, label=self.label),
        ]
        report = AuditReport.of(batch.height, checks)
        seconds = time.perf_counter() - t0
        return Outcome(
            not report.passed,
            report.verdict is Verdict.POISONING_SUSPECTED,
            frozenset(report.poisoning_rows),
            seconds,
            tuple(c.name for c in report.blocking_failures),
        )


def _psi(ref: np.ndarray, cur: np.ndarray) -> float:
    eps = 1e-4
    ref_s, cur_s = ref / max(ref.sum(), 1) + eps, cur / max(cur.sum(), 1) + eps
    return float(np.sum((cur_s - ref_s) * np.log(cur_s / ref_s)))


@dataclass
class _Encoded:
    schema: TableSchema
    x: np.ndarray
    y: np.ndarray


class DayOneGate:
    name = "day-one assembly"

    def __init__(self, trusted: pl.DataFrame, label: str) -> None:
        t0 = time.perf_counter()
        self.label = label
        self.schema = TableSchema.infer(trusted, label=label)
        self.trusted = self._enc(trusted)
        self.model = HistGradientBoostingClassifier(
            max_iter=150, categorical_features=self.schema.categorical_mask(), random_state=0
        ).fit(self.trusted.x, self.trusted.y)
        self.iforest = IsolationForest(n_estimators=200, random_state=0).fit(
            np.nan_to_num(self.trusted.x, nan=-1.0)
        )
        scores = self.iforest.score_samples(np.nan_to_num(self.trusted.x, nan=-1.0))
        self.if_cut = float(np.quantile(scores, 0.01))
        self.trusted_rows = {self._row_key(r) for r in self._rows(self.trusted)}
        self.trusted_feats = {self._row_key(r[:-1]) for r in self._rows(self.trusted)}
        self.fav_rate = np.bincount(self.trusted.y, minlength=2) / self.trusted.y.size
        self.edges: list[np.ndarray | None] = []
        self.ref_counts: list[np.ndarray] = []
        for j, spec in enumerate(self.schema.features):
            col = self.trusted.x[:, j]
            if spec.kind.value == "numeric":
                finite = col[np.isfinite(col)]
                edges = (
                    np.unique(np.quantile(finite, np.linspace(0, 1, 11)))
                    if finite.size
                    else np.array([0.0])
                )
                self.edges.append(edges)
                self.ref_counts.append(self._bin(col, edges))
            else:
                self.edges.append(None)
                self.ref_counts.append(self._cats(col))
        self.thresholds: dict[str, float] = {}
        self.build_seconds = time.perf_counter() - t0

    def _enc(self, frame: pl.DataFrame) -> _Encoded:
        return _Encoded(
            self.schema, self.schema.model_matrix(frame), self.schema.label_codes(frame)
        )

    @staticmethod
    def _rows(enc: _Encoded) -> np.ndarray:
        return np.column_stack([np.nan_to_num(enc.x, nan=-9e99), enc.y])

    @staticmethod
    def _row_key(row: np.ndarray) -> bytes:
        return np.ascontiguousarray(row).tobytes()

    @staticmethod
    def _bin(col: np.ndarray, edges: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(edges[1:-1], col, side="right")
        idx = np.where(np.isfinite(col), idx, len(edges))
        return np.bincount(idx, minlength=len(edges) + 1).astype(float)

    def _cats(self, col: np.ndarray) -> np.ndarray:
        codes = np.nan_to_num(col, nan=-1.0).astype(int) + 1
        return np.bincount(codes, minlength=256)[:256].astype(float)

    def statistics(self, batch: pl.DataFrame) -> tuple[dict[str, float], dict[str, set[int]]]:
        enc = self._enc(batch)
        known = np.flatnonzero(enc.y >= 0)
        proba = self.model.predict_proba(enc.x)
        stats: dict[str, float] = {}
        rows: dict[str, set[int]] = {}
        labels = enc.y[known]
        if known.size >= 10 and np.bincount(labels, minlength=2).min() >= 2:
            issues = find_label_issues(labels=labels, pred_probs=proba[known], n_jobs=1)
        else:
            issues = proba[known, labels] < 0.1 if known.size else np.zeros(0, bool)
        stats["cleanlab_label_issues"] = float(np.mean(issues)) if known.size else 0.0
        rows["cleanlab_label_issues"] = set(known[issues].tolist())
        scores = self.iforest.score_samples(np.nan_to_num(enc.x, nan=-1.0))
        out = scores < self.if_cut
        stats["isolation_forest"] = float(out.mean())
        rows["isolation_forest"] = set(np.flatnonzero(out).tolist())
        keys = [self._row_key(r) for r in self._rows(enc)]
        fkeys = [self._row_key(r[:-1]) for r in self._rows(enc)]
        seen: set[bytes] = set()
        seen_f: dict[bytes, int] = {}
        dup: set[int] = set()
        for i, (k, fk) in enumerate(zip(keys, fkeys, strict=True)):
            if (
                k in seen
                or k in self.trusted_rows
                or (fk in self.trusted_feats and k not in self.trusted_rows)
            ) or fk in seen_f:
                dup.add(i)
            seen.add(k)
            seen_f[fk] = i
        stats["exact_duplicates"] = len(dup) / max(batch.height, 1)
        rows["exact_duplicates"] = dup
        psis = []
        for j, edges in enumerate(self.edges):
            col = enc.x[:, j]
            cur = self._bin(col, edges) if edges is not None else self._cats(col)
            psis.append(_psi(self.ref_counts[j], cur))
        stats["max_psi"] = max(psis) if psis else 0.0
        rows["max_psi"] = set()
        fav = float(np.mean(labels == 1)) if labels.size else 0.0
        p0 = float(self.fav_rate[1])
        z = abs(fav - p0) / max(np.sqrt(p0 * (1 - p0) / max(labels.size, 1)), 1e-9)
        stats["label_rate_z"] = z
        rows["label_rate_z"] = set()
        return stats, rows

    def calibrate(self, batches: list[pl.DataFrame]) -> None:
        seen = [self.statistics(b)[0] for b in batches]
        self.thresholds = {k: max(s[k] for s in seen) for k in seen[0]}

    def audit(self, batch: pl.DataFrame) -> Outcome:
        t0 = time.perf_counter()
        stats, rows = self.statistics(batch)
        fired = [k for k, v in stats.items() if v > self.thresholds.get(k, np.inf)]
        flagged: set[int] = set()
        for k in fired:
            flagged |= rows[k]
        return Outcome(
            bool(fired), bool(fired), frozenset(flagged), time.perf_counter() - t0, tuple(fired)
        )


class DatalabGate:
    name = "cleanlab Datalab"

    def __init__(self, trusted: pl.DataFrame, label: str) -> None:
        t0 = time.perf_counter()
        self.day_one = DayOneGate(trusted, label)  # reuse its trusted model and encoding
        self.label = label
        self.thresholds: dict[str, float] = {}
        self.build_seconds = time.perf_counter() - t0

    def statistics(self, batch: pl.DataFrame) -> tuple[dict[str, float], dict[str, set[int]]]:
        from cleanlab import Datalab

        g = self.day_one
        enc = g._enc(batch)
        keep = np.flatnonzero(enc.y >= 0)
        x = np.nan_to_num(enc.x[keep], nan=-1.0)
        proba = g.model.predict_proba(enc.x[keep])
        frame = {"label": enc.y[keep]}
        lab = Datalab(data=frame, label_name="label", verbosity=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lab.find_issues(features=x, pred_probs=proba)
        issues = lab.get_issues()
        stats: dict[str, float] = {}
        rows: dict[str, set[int]] = {}
        for col in issues.columns:
            if col.startswith("is_") and col.endswith("_issue"):
                mask = issues[col].to_numpy().astype(bool)
                stats[col] = float(mask.mean())
                rows[col] = set(keep[mask].tolist())
        return stats, rows

    def calibrate(self, batches: list[pl.DataFrame]) -> None:
        seen = [self.statistics(b)[0] for b in batches]
        keys = set().union(*seen)
        self.thresholds = {k: max(s.get(k, 0.0) for s in seen) for k in keys}

    def audit(self, batch: pl.DataFrame) -> Outcome:
        t0 = time.perf_counter()
        stats, rows = self.statistics(batch)
        fired = [k for k, v in stats.items() if v > self.thresholds.get(k, 1.0)]
        flagged: set[int] = set()
        for k in fired:
            flagged |= rows[k]
        return Outcome(
            bool(fired), bool(fired), frozenset(flagged), time.perf_counter() - t0, tuple(fired)
        )


@dataclass
class Tally:
    """Counts of one gate on one dataset."""

    clean: int = 0
    clean_quarantined: int = 0
    clean_reasons: dict[str, int] = field(default_factory=dict)
    attacked: dict[str, int] = field(default_factory=dict)
    caught: dict[str, int] = field(default_factory=dict)
    caught_poisoning: dict[str, int] = field(default_factory=dict)
    precision: dict[str, list[float]] = field(default_factory=dict)
    recall: dict[str, list[float]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    build_seconds: list[float] = field(default_factory=list)

    def add_clean(self, o: Outcome) -> None:
        self.clean += 1
        self.clean_quarantined += int(o.quarantined)
        for r in o.reasons if o.quarantined else ():
            self.clean_reasons[r] = self.clean_reasons.get(r, 0) + 1

    def add_attack(self, key: str, o: Outcome, poisoned: set[int]) -> None:
        self.attacked[key] = self.attacked.get(key, 0) + 1
        self.caught[key] = self.caught.get(key, 0) + int(o.quarantined)
        self.caught_poisoning[key] = self.caught_poisoning.get(key, 0) + int(o.by_poisoning)
        hit = len(o.rows & poisoned)
        if o.rows:
            self.precision.setdefault(key, []).append(hit / len(o.rows))
        self.recall.setdefault(key, []).append(hit / max(len(poisoned), 1))


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)
