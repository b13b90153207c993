"""Profiles: chunk merges equal the whole, serialization round-trips, moments merge."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.data_security.errors import InvalidProfile
from bastion.data_security.profile import DatasetProfile, LogicalType, Moments, profile_frame


def _frame(n: int = 20_000, seed: int = 0) -> pl.DataFrame:
    r = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "customer_id": np.arange(n),
            "income": r.lognormal(10, 0.5, n),
            "age": r.integers(18, 90, n),
            "gender": r.choice(["F", "M", "X"], n),
            "ok": r.random(n) < 0.3,
        }
    ).with_columns(
        pl.when(pl.int_range(n) % 10 == 0).then(None).otherwise(pl.col("income")).alias("income")
    )


def test_merged_chunks_match_whole_profile() -> None:
    df = _frame()
    whole = profile_frame(df)
    merged = profile_frame(df[:7_000]).merge(profile_frame(df[7_000:15_000]))
    merged = merged.merge(profile_frame(df[15_000:]))
    assert merged.row_count == whole.row_count == df.height
    for name in df.columns:
        a, b = whole.column(name), merged.column(name)
        assert (a.count, a.null_count, a.logical) == (b.count, b.null_count, b.logical)
        assert b.distinct_estimate == pytest.approx(a.distinct_estimate, rel=0.03)
    inc_w, inc_m = whole.column("income").numeric, merged.column("income").numeric
    assert inc_w is not None and inc_m is not None
    assert inc_m.moments.n == inc_w.moments.n == 18_000
    assert inc_m.moments.mean == pytest.approx(inc_w.moments.mean, rel=1e-9)
    assert inc_m.moments.variance == pytest.approx(inc_w.moments.variance, rel=1e-9)
    assert inc_m.moments.maximum == inc_w.moments.maximum
    # KLL rank error ~1.3%: the merged median is near the exact one.
    exact = float(np.nanmedian(df["income"].to_numpy().astype(float)))
    merged_median = inc_m.quantiles((0.5,))[0]
    assert merged_median is not None
    assert inc_m.cdf_below(merged_median) == pytest.approx(0.5, abs=0.03)
    assert merged_median == pytest.approx(exact, rel=0.05)
    text = merged.column("gender").text
    assert text is not None and text.exact_values() == ("F", "M", "X")
    assert sum(c for _, c in text.top()) == df.height


def test_profile_bytes_round_trip_and_versioning() -> None:
    profile = profile_frame(_frame(2_000))
    blob = profile.to_bytes()
    assert DatasetProfile.from_bytes(blob) == profile
    assert profile.to_bytes() == blob  # stable
    with pytest.raises(InvalidProfile, match="version"):
        DatasetProfile.from_bytes(blob[:16] + b"\x00\x63" + blob[18:])
    with pytest.raises(InvalidProfile, match="magic"):
        DatasetProfile.from_bytes(b"garbage")
    with pytest.raises(InvalidProfile):
        DatasetProfile.from_bytes(blob[:-40])


def test_to_dict_is_json_safe_and_readable() -> None:
    import json

    d = profile_frame(_frame(1_000)).to_dict()
    text = json.dumps(d, allow_nan=False)
    assert '"income"' in text
    cols = d["columns"]
    assert isinstance(cols, dict)
    assert cols["income"]["null_rate"] == pytest.approx(0.1)
    assert cols["gender"]["logical"] == LogicalType.STRING.value


def test_merge_rejects_incompatible_types_and_pads_missing_columns() -> None:
    a = profile_frame(pl.DataFrame({"x": [1, 2], "y": ["a", "b"]}))
    b = profile_frame(pl.DataFrame({"x": ["p", "q"]}))
    with pytest.raises(InvalidProfile, match="'x'"):
        a.merge(b)
    c = a.merge(profile_frame(pl.DataFrame({"x": [3.5]})))
    assert c.column("x").logical == LogicalType.FLOAT
    assert c.column("y").null_count == 1 and c.row_count == 3


def test_nonfinite_values_are_counted_not_averaged() -> None:
    p = profile_frame(pl.DataFrame({"v": [1.0, float("nan"), float("inf"), 3.0, None]}))
    num = p.column("v").numeric
    assert num is not None
    assert num.nonfinite == 2 and num.moments.n == 2 and num.moments.mean == 2.0


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, max_size=30), st.lists(finite, max_size=30), st.lists(finite, max_size=30))
def test_moments_merge_is_associative_and_exact(
    a: list[float], b: list[float], c: list[float]
) -> None:
    ma, mb, mc = Moments.of(a), Moments.of(b), Moments.of(c)
    left, right = ma.merge(mb).merge(mc), ma.merge(mb.merge(mc))
    whole = Moments.of(a + b + c)
    for m in (left, right):
        assert m.n == whole.n
        assert m.minimum == whole.minimum and m.maximum == whole.maximum
        assert math.isclose(m.mean, whole.mean, rel_tol=1e-9, abs_tol=1e-6)
        assert math.isclose(m.m2, whole.m2, rel_tol=1e-7, abs_tol=1e-3)


def test_moments_from_dict_rejects_garbage() -> None:
    with pytest.raises(InvalidProfile):
        Moments.from_dict({"n": -1, "mean": 0, "m2": 0, "min": None, "max": None})
    with pytest.raises(InvalidProfile):
        Moments.from_dict({"n": 1})
