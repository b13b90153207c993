"""Synthetic credit-like rows shared by the poisoning tests."""

from __future__ import annotations

import numpy as np
import polars as pl

LABEL = "status"


def make_rows(n: int, seed: int, income_shift: float = 0.0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    income = np.round(rng.gamma(4.0, 30.0, n) + income_shift, 1)
    debt = np.round(rng.gamma(2.0, 400.0, n), 0)
    age = rng.integers(18, 75, n).astype(float)
    home = rng.choice(["rent", "owner", "parents", "other"], n, p=[0.4, 0.4, 0.15, 0.05])
    records = rng.choice(["no", "yes"], n, p=[0.85, 0.15])
    logit = (
        0.02 * (income - 120)
        - 0.002 * (debt - 800)
        + 0.03 * (age - 40)
        - 1.5 * (records == "yes")
        + 1.2
    )
    good = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pl.DataFrame(
        {
            LABEL: np.where(good, "good", "bad"),
            "income": income,
            "debt": debt,
            "age": age,
            "home": home,
            "records": records,
        }
    )
