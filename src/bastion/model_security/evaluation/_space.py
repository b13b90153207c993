"""The attack space: numeric features of a bounded sample, and the way back to valid rows.

Pipelines take raw tabular rows with string categoricals, so attacks cannot
work on the raw frame directly.  We attack the **numeric** features only and
hold every string categorical fixed at its original value: changing a
categorical ("employment = student") is a discrete, usually verifiable claim,
and one-hot "half categories" produced by gradient steps have no meaning.

Every adversarial example, whatever space the attack worked in, comes back
here as raw numeric values and goes through :meth:`AttackSpace.project`:
immutable features reset, per-feature budget (eps times std) enforced, bounds
clipped, integer features rounded and finite domains snapped — then the model
is asked again, and only rows that are *still* misclassified count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl
from numpy.typing import NDArray

from bastion.model_security.evaluation.constraints import TabularConstraints

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class AttackSpace:
    """A sample of rows split into attackable numeric values and fixed categoricals."""

    features: tuple[str, ...]  # model input columns, in order
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    x: FloatArray  # (n, d) raw numeric values of the sample
    cats: pd.DataFrame  # (n, c) categorical values of the sample, held fixed
    std: FloatArray  # (d,) std of each numeric feature over the whole frame
    mean: FloatArray  # (d,)
    budget: FloatArray  # (d,) largest allowed |delta| in original units (0 = frozen)
    low: FloatArray  # (d,)
    high: FloatArray  # (d,)
    integer: NDArray[np.bool_]  # (d,)
    allowed: tuple[FloatArray | None, ...]  # (d,) finite domains
    dtypes: tuple[pl.DataType, ...]  # polars dtype of each numeric feature

    @property
    def mutable(self) -> NDArray[np.bool_]:
        """Numeric features an attack may move (budget > 0)."""
        return self.budget > 0

    def frame(self, x: FloatArray, cats: pd.DataFrame | None = None) -> pd.DataFrame:
        """Model input for numeric values ``x`` and categoricals ``cats`` (default: sample's)."""
        fixed = self.cats if cats is None else cats
        out = pd.DataFrame({name: x[:, j] for j, name in enumerate(self.numeric)})
        for name in self.categorical:
            out[name] = fixed[name].to_numpy()
        return out[list(self.features)]

    def project(self, x_adv: FloatArray) -> FloatArray:
        """Snap raw adversarial values back onto the constraint set (see module doc)."""
        delta = np.where(self.mutable, x_adv - self.x, 0.0)
        delta = np.nan_to_num(delta, nan=0.0, posinf=0.0, neginf=0.0)
        # float32 round trips through ART leave ~1e-7 noise on untouched features
        delta[np.abs(delta) <= 1e-6 * np.maximum(self.std, 1.0)] = 0.0
        delta = np.clip(delta, -self.budget, self.budget)
        projected = np.clip(self.x + delta, self.low, self.high)
        projected = np.where(np.isnan(self.x), self.x, projected)
        for j in np.flatnonzero(self.integer).tolist():
            projected[:, j] = self._round_within_budget(projected[:, j], j)
        for j, domain in enumerate(self.allowed):
            if domain is not None:
                projected[:, j] = self._snap(projected[:, j], j, domain)
        return projected

    def to_polars(self, x: FloatArray) -> pl.DataFrame:
        """The rows as a polars frame with the original dtypes (integers stay integers)."""
        columns: list[pl.Series] = []
        for name in self.features:
            if name in self.numeric:
                j = self.numeric.index(name)
                columns.append(pl.Series(name, x[:, j]).cast(self.dtypes[j]))
            else:
                columns.append(pl.Series(name, self.cats[name].iloc[: len(x)].tolist()))
        return pl.DataFrame(columns)

    def _round_within_budget(self, column: FloatArray, j: int) -> FloatArray:
        original = self.x[:, j]
        rounded = np.round(column)
        # rounding away from the original could leave the budget or the bounds: truncate instead
        over = (
            (np.abs(rounded - original) > self.budget[j])
            | (rounded < self.low[j])
            | (rounded > self.high[j])
        )
        truncated = original + np.trunc(column - original)
        return np.where(over, truncated, rounded)

    def _snap(self, column: FloatArray, j: int, domain: FloatArray) -> FloatArray:
        original = self.x[:, j]
        nearest = domain[np.abs(column[:, None] - domain[None, :]).argmin(axis=1)]
        ok = np.abs(nearest - original) <= self.budget[j]
        return np.where(ok, nearest, original)


def build_space(
    sample: pl.DataFrame,
    reference: pl.DataFrame,
    features: Sequence[str],
    constraints: TabularConstraints,
    eps: float,
) -> AttackSpace:
    """The attack space of ``sample``; std / mean are taken over ``reference`` (the whole frame)."""
    numeric = tuple(f for f in features if reference.schema[f].is_numeric())
    categorical = tuple(f for f in features if f not in numeric)
    x = (
        sample.select(numeric)
        .cast(pl.Float64)
        .to_numpy()
        .astype(np.float64)
        .reshape(len(sample), -1)
    )
    stats = reference.select(numeric).cast(pl.Float64)
    std = np.array([_finite(stats.get_column(n).std()) for n in numeric], dtype=np.float64)
    mean = np.array([_finite(stats.get_column(n).mean()) for n in numeric], dtype=np.float64)
    scale = np.array([constraints.eps_scale.get(n, 1.0) for n in numeric], dtype=np.float64)
    immutable = np.array([n in constraints.immutable for n in numeric], dtype=bool)
    budget = np.where(immutable, 0.0, eps * scale * std)
    bounds = [constraints.bounds.get(n, (None, None)) for n in numeric]
    low = np.array([-np.inf if lo is None else lo for lo, _ in bounds], dtype=np.float64)
    high = np.array([np.inf if hi is None else hi for _, hi in bounds], dtype=np.float64)
    allowed = tuple(
        np.asarray(constraints.allowed_values[n], dtype=np.float64)
        if n in constraints.allowed_values
        else None
        for n in numeric
    )
    return AttackSpace(
        features=tuple(features),
        numeric=numeric,
        categorical=categorical,
        x=x,
        cats=sample.select(categorical).to_pandas()
        if categorical
        else pd.DataFrame(index=range(len(sample))),
        std=std,
        mean=mean,
        budget=budget,
        low=low,
        high=high,
        integer=np.array(
            [n in constraints.integer or reference.schema[n].is_integer() for n in numeric],
            dtype=bool,
        ),
        allowed=allowed,
        dtypes=tuple(sample.schema[n] for n in numeric),
    )


def _finite(value: object) -> float:
    return float(value) if isinstance(value, int | float) and np.isfinite(value) else 0.0


__all__ = ["AttackSpace", "build_space"]
