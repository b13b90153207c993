"""How surprising is a value beyond a trusted sample's extremes?  Tail models with sampling noise.

A trusted sample of ``n`` rows shows its minimum and maximum, not the
population's.  Two exact or conservative probabilities say how often a clean
batch of ``m`` rows from the same population goes beyond them:

- **count** (distribution-free): the number ``K`` of batch values above the
  trusted maximum.  For exchangeable continuous data ``P(K >= j)`` is the
  chance that the top ``j`` of the pooled ``n + m`` values all come from the
  batch, ``prod_{i<j} (m - i) / (n + m - i)`` (``m / (n + m)`` for ``j = 1``).
  Ties (discrete data) only make exceedances rarer, so the bound stays valid.
- **distance** (extreme-value model): the tail beyond the trusted maximum is a
  generalized Pareto distribution fitted by probability-weighted moments to the
  excesses of the trusted ``k`` largest values (threshold stability carries it
  to the maximum); the per-row probability of exceeding the maximum is
  ``1 / (n + 1)``.  A shape fitted on a few dozen excesses is noisy (standard
  error about ``(1 + shape) / sqrt(k)``), and an underestimated shape turns a
  heavy tail's ordinary extremes into "impossible" values, so the shape used is
  the estimate plus two standard errors, clipped to ``[0.5, 0.9]`` (at least as
  heavy as a Student t with two degrees of freedom: the fit on a small sample's
  top values cannot tell a t3 or a Pareto tail from a normal one, and gross
  errors — a value thousands of scales out — still get a tiny probability); the scale is
  floored at ``std / 4`` (a normal sample's maximum has scale about
  ``std / sqrt(2 ln n)``).  Short or bounded tails are thus modelled as heavy
  ones: wider, never narrower.  ``P(max of m > x) = 1 - (1 - S(x))**m``.

Example::

    tail = TailFit.fit(top_values, n=1000, std=1.0)
    tail.max_p_value(value=5.1, m=150)   # probability a clean batch reaches 5.1
    count_p_value(3, n=1000, m=150)      # probability 3 or more clean rows exceed the max
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: how many extreme values a profile keeps per side of a numeric column
TAIL_KEEP = 32
_MIN_EXCESSES = 5
_MAX_SHAPE = 0.9
_MIN_SHAPE = 0.5
_SCALE_FLOOR = 0.25


def count_p_value(j: int, *, n: int, m: int) -> float:
    """P(at least ``j`` of ``m`` clean batch values exceed the maximum of ``n`` trusted ones)."""
    if j <= 0:
        return 1.0
    if j > m:
        return 0.0
    # log of prod_{i<j} (m - i) / (n + m - i), via lgamma for large j
    log_p = (
        math.lgamma(m + 1)
        - math.lgamma(m - j + 1)
        - math.lgamma(n + m + 1)
        + math.lgamma(n + m - j + 1)
    )
    return min(1.0, math.exp(log_p))


@dataclass(frozen=True)
class TailFit:
    """A generalized Pareto tail beyond a trusted extreme (one side, as an upper tail).

    ``edge`` is the trusted maximum (for a lower tail: minus the minimum, i.e.
    values are negated), ``scale``/``shape`` the GPD of excesses over it, ``n``
    the trusted sample size.
    """

    edge: float
    scale: float
    shape: float
    n: int

    @classmethod
    def fit(cls, top: Sequence[float], *, n: int, std: float) -> TailFit:
        """Fit from the trusted largest values (any order) of a sample of ``n`` rows."""
        values = sorted((float(v) for v in top if math.isfinite(v)), reverse=True)
        edge = values[0] if values else 0.0
        floor = max(std * _SCALE_FLOOR, 1e-12 * max(1.0, abs(edge)))
        shape, scale = _MIN_SHAPE, floor
        if len(values) > _MIN_EXCESSES:
            threshold = values[-1]
            excesses = sorted(v - threshold for v in values[:-1])
            shape, scale_u = _pwm(excesses)
            # threshold stability: excesses over the maximum are GPD(scale_u + shape*(max-u))
            scale = max(floor, scale_u + shape * (edge - threshold))
        return cls(edge=edge, scale=scale, shape=shape, n=max(n, 1))

    def row_survival(self, value: float) -> float:
        """P(one clean row > ``value``) for ``value`` at or beyond the edge."""
        base = 1.0 / (self.n + 1)
        excess = max(0.0, value - self.edge) / self.scale
        if self.shape <= 1e-9:
            return base * math.exp(-excess)
        return base * math.exp(-math.log1p(self.shape * excess) / self.shape)

    def max_p_value(self, value: float, *, m: int) -> float:
        """P(the largest of ``m`` clean rows is at least ``value``)."""
        s = self.row_survival(value)
        return 1.0 if s >= 1.0 else -math.expm1(m * math.log1p(-s))

    def to_dict(self) -> dict[str, float]:
        return {"edge": self.edge, "scale": self.scale, "shape": self.shape}


def _pwm(excesses: Sequence[float]) -> tuple[float, float]:
    """GPD (shape, scale) by probability-weighted moments (Hosking & Wallis 1987), clipped."""
    k = len(excesses)
    a0 = sum(excesses) / k
    a1 = sum(y * (1.0 - (i + 0.65) / k) for i, y in enumerate(excesses)) / k
    denom = a0 - 2.0 * a1
    if a0 <= 0 or denom <= 0:
        # no spread among the largest values (ties) or an extremely heavy tail
        return (_MAX_SHAPE, a0 * (1.0 - _MAX_SHAPE)) if a0 > 0 else (_MIN_SHAPE, 0.0)
    shape = 2.0 - a0 / denom
    # conservative: two standard errors heavier than the estimate (see module doc)
    shape += 2.0 * (1.0 + max(shape, 0.0)) / math.sqrt(k)
    shape = min(max(shape, _MIN_SHAPE), _MAX_SHAPE)
    # with the shape clipped, the scale that keeps the mean excess: a0 = scale / (1 - shape)
    return shape, a0 * (1.0 - shape)


__all__ = ["TAIL_KEEP", "TailFit", "count_p_value"]
