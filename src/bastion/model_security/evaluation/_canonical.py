"""JSON-safe numbers for signed evaluation statements.

A statement is signed over canonical JSON, so every float is rounded to a fixed
number of significant digits and NaN / infinity become ``None`` (JSON has no
spelling for them and canonicalisers reject them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

#: significant digits kept for every reported float
SIGNIFICANT_DIGITS = 6

JsonScalar = str | int | float | bool | None


def safe_float(value: float | np.floating | np.integer | None) -> float | None:
    """Round ``value`` to :data:`SIGNIFICANT_DIGITS`; NaN / inf / None -> None."""
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    if number == 0.0:
        return 0.0  # also folds -0.0, which canonical JSON would spell differently
    return float(f"{number:.{SIGNIFICANT_DIGITS}g}")


def safe_floats(values: Iterable[float | np.floating | None]) -> list[float | None]:
    """:func:`safe_float` over a sequence."""
    return [safe_float(v) for v in values]


def safe_scalar(value: object) -> JsonScalar:
    """A numpy / python scalar as a JSON scalar (group labels, class labels)."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return safe_float(value)
    return str(value)
