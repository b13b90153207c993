"""Mergeable running moments (count, mean, M2, min, max).

Two chunks' moments combine exactly with Chan et al.'s parallel update, so a
profile can be built chunk by chunk, or partition by partition, and merged.

Example::

    left = Moments.of([1.0, 2.0])
    right = Moments.of([3.0])
    assert left.merge(right).mean == 2.0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bastion.data_security.errors import InvalidProfile


@dataclass(frozen=True)
class Moments:
    """Count, mean, sum of squared deviations (M2), min and max of finite values.

    An empty summary has ``n == 0`` and ``mean``/``m2`` ``0.0``, ``minimum``
    and ``maximum`` ``None``.
    """

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    minimum: float | None = None
    maximum: float | None = None

    @classmethod
    def of(cls, values: Iterable[float] | npt.NDArray[np.float64]) -> Moments:
        """Moments of the finite values in ``values`` (NaN/inf are skipped)."""
        arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, float)
        arr = arr[np.isfinite(arr)]
        if arr.size == 0:
            return cls()
        mean = float(arr.mean())
        return cls(
            n=int(arr.size),
            mean=mean,
            m2=float(((arr - mean) ** 2).sum()),
            minimum=float(arr.min()),
            maximum=float(arr.max()),
        )

    @classmethod
    def from_stats(
        cls, n: int, mean: float | None, var: float | None, lo: float | None, hi: float | None
    ) -> Moments:
        """Build from aggregate statistics (``var`` is the sample variance, ddof=1)."""
        if n <= 0 or mean is None:
            return cls()
        m2 = (var or 0.0) * (n - 1) if n > 1 else 0.0
        return cls(n=n, mean=float(mean), m2=float(m2), minimum=lo, maximum=hi)

    def merge(self, other: Moments) -> Moments:
        """Combine two summaries exactly (Chan's parallel algorithm)."""
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        # Weighted mean form keeps precision when one side is much larger.
        mean = self.mean + delta * other.n / n
        m2 = self.m2 + other.m2 + delta * delta * self.n * other.n / n
        return Moments(
            n=n,
            mean=mean,
            m2=m2,
            minimum=_opt(min, self.minimum, other.minimum),
            maximum=_opt(max, self.maximum, other.maximum),
        )

    @property
    def variance(self) -> float | None:
        """Sample variance (ddof=1), ``None`` with fewer than two values."""
        return self.m2 / (self.n - 1) if self.n > 1 else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation, ``None`` with fewer than two values."""
        var = self.variance
        return math.sqrt(max(var, 0.0)) if var is not None else None

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-safe dict (also the serialized form)."""
        return {
            "n": self.n,
            "mean": self.mean,
            "m2": self.m2,
            "min": self.minimum,
            "max": self.maximum,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Moments:
        """Inverse of :meth:`to_dict`; raises :class:`InvalidProfile` on bad input."""
        try:
            n = data["n"]
            if not isinstance(n, int) or n < 0:
                raise InvalidProfile(f"moments: 'n' must be a non-negative int, got {n!r}")
            return cls(
                n=n,
                mean=_num(data["mean"]) or 0.0,
                m2=_num(data["m2"]) or 0.0,
                minimum=_num(data["min"]),
                maximum=_num(data["max"]),
            )
        except KeyError as e:
            raise InvalidProfile(f"moments: missing field {e.args[0]!r}") from e


def _opt(fn: Callable[[float, float], float], a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return float(fn(a, b))


def _num(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidProfile(f"moments: expected a number, got {value!r}")
    return float(value)


__all__ = ["Moments"]
