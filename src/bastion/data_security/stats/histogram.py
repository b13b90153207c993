"""Chart data for drift reports: reference vs current shares with readable bin labels.

Example::

    import numpy as np
    from bastion.data_security.stats.histogram import bin_labels, category_histogram
    labels = bin_labels(np.array([1.0, 2.0]))      # ['< 1', '[1, 2)', '>= 2']
    chart = category_histogram(labels, np.array([1, 1, 2]), np.array([0, 2, 2]))
    assert chart.reference == (0.25, 0.25, 0.5)
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt

from bastion.data_security.stats.values import Histogram

#: at most this many bars per chart; the smallest bins are merged into one
MAX_BARS = 16
REST_LABEL = "(rest)"


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def bin_labels(edges: npt.NDArray[np.float64]) -> list[str]:
    """Labels of the left-closed bins cut by ``edges`` (k edges give k + 1 labels)."""
    if edges.size == 0:
        return ["all values"]
    labels = [f"< {_fmt(edges[0])}"]
    labels += [f"[{_fmt(lo)}, {_fmt(hi)})" for lo, hi in itertools.pairwise(edges)]
    labels.append(f">= {_fmt(edges[-1])}")
    return labels


def _shares(counts: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    total = counts.sum()
    return counts / total if total > 0 else np.zeros(counts.size, dtype=np.float64)


def category_histogram(
    labels: list[str], ref_counts: npt.NDArray[np.int64], cur_counts: npt.NDArray[np.int64],
    *, max_bars: int = MAX_BARS,
) -> Histogram:
    """Shares per label; past ``max_bars`` the labels with the least combined share merge."""
    ref, cur = _shares(ref_counts), _shares(cur_counts)
    if len(labels) <= max_bars:
        return Histogram(tuple(labels), tuple(ref.tolist()), tuple(cur.tolist()))
    top = np.sort(np.argsort(-(ref + cur), kind="stable")[: max_bars - 1])
    rest = np.ones(len(labels), dtype=bool)
    rest[top] = False
    return Histogram(
        (*tuple(labels[i] for i in top), REST_LABEL),
        (*tuple(ref[top].tolist()), float(ref[rest].sum())),
        (*tuple(cur[top].tolist()), float(cur[rest].sum())),
    )


__all__ = ["MAX_BARS", "REST_LABEL", "bin_labels", "category_histogram"]
