"""Progress of long monitoring work, reported through a callback (the core never prints).

Example::

    from bastion.model_security.monitoring import MonitoringProgress
    seen: list[MonitoringProgress] = []
    callback = seen.append          # any Callable[[MonitoringProgress], None]
    callback(MonitoringProgress("drift", 1, 20, "income"))
    assert seen[0].fraction == 0.05
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class MonitoringProgress:
    """``done`` of ``total`` columns of ``stage`` ("reference" or "drift") are finished."""

    stage: str
    done: int
    total: int
    column: str

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


ProgressCallback = Callable[[MonitoringProgress], None]

__all__ = ["MonitoringProgress", "ProgressCallback"]
