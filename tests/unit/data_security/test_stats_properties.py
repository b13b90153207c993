"""Property tests of the distances: PSI and Jensen-Shannon."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bastion.data_security.stats import (
    ColumnKind,
    jensen_shannon,
    js_from_counts,
    psi,
    psi_from_counts,
)

counts = st.lists(st.integers(0, 10_000), min_size=1, max_size=30)
finite = st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False)


@st.composite
def count_pairs(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    ref = draw(counts.filter(lambda c: sum(c) > 0))
    cur = draw(st.lists(st.integers(0, 10_000), min_size=len(ref), max_size=len(ref))
               .filter(lambda c: sum(c) > 0))
    return ref, cur


@settings(max_examples=200, deadline=None)
@given(count_pairs())
def test_psi_is_non_negative_and_symmetric(pair: tuple[list[int], list[int]]) -> None:
    ref, cur = pair
    value = psi_from_counts(ref, cur)
    assert value >= 0.0
    assert value == psi_from_counts(cur, ref) or abs(value - psi_from_counts(cur, ref)) < 1e-9


@settings(max_examples=200, deadline=None)
@given(counts.filter(lambda c: sum(c) > 0), st.integers(1, 50))
def test_psi_is_zero_for_identical_shares(ref: list[int], factor: int) -> None:
    assert psi_from_counts(ref, ref) == 0.0
    # the same shares at another sample size
    assert abs(psi_from_counts(ref, [c * factor for c in ref])) < 1e-12


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, st.integers(2, 300), elements=finite), st.integers(2, 20))
def test_psi_of_a_sample_against_itself_is_zero(values: np.ndarray, bins: int) -> None:
    assert psi(values, values, bins=bins, kind=ColumnKind.NUMERIC) == 0.0
    assert jensen_shannon(values, values, bins=bins, kind=ColumnKind.NUMERIC) == 0.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "d", "é", ""]), min_size=1, max_size=200))
def test_psi_of_labels_against_a_shuffle_is_zero(labels: list[str]) -> None:
    shuffled = list(reversed(labels))
    assert psi(labels, shuffled, kind=ColumnKind.CATEGORICAL) == 0.0


@settings(max_examples=200, deadline=None)
@given(count_pairs())
def test_jensen_shannon_is_a_bounded_distance(pair: tuple[list[int], list[int]]) -> None:
    ref, cur = pair
    value = js_from_counts(ref, cur)
    assert 0.0 <= value <= 1.0
    assert abs(value - js_from_counts(cur, ref)) < 1e-12
