"""Retention of the prediction log and of canary samples: pruned in bounded chunks.

Both grow with every request.  The drift monitor's round (the gateway's periodic task and
``bastion monitor run``) deletes, ``chunk`` rows per statement and at most ``max_chunks``
statements per table per round:

- prediction-log rows older than ``days``, except those of a deployment that is an arm of
  a *running* canary (feedback on its requests still needs them);
- the samples of a *decided* canary (promoted, rolled back, aborted) once its decision is
  older than ``days``; a running canary's samples are never pruned (its analysis reads
  them);
- alert-outbox rows whose delivery ended (delivered, failed, refused) more than ``days``
  ago (the delivery log keeps their outcome); pending ones never.

Example::

    pruned = prune(store, RetentionOptions(days=30))   # Pruned(predictions=…, samples=…)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bastion.core.errors import ConfigurationError


class RetentionStore(Protocol):
    def prune_predictions(self, before: str, limit: int) -> int:
        """Delete up to ``limit`` prediction-log rows created before ``before`` (not of a
        running canary's arms); the number deleted."""

    def prune_canary_samples(self, before: str, limit: int) -> int:
        """Delete up to ``limit`` samples of canaries decided before ``before``."""

    def prune_outbox(self, before: str, limit: int) -> int:
        """Delete up to ``limit`` finished outbox rows last updated before ``before``."""


@dataclass(frozen=True)
class RetentionOptions:
    days: int = 30
    chunk: int = 5000  # rows per DELETE: short transactions, short locks
    max_chunks: int = 20  # per table and round: a backlog is worked off over rounds

    def __post_init__(self) -> None:
        if self.days < 1 or self.chunk < 1 or self.max_chunks < 1:
            raise ConfigurationError(
                f"retention: days ({self.days}), chunk and max_chunks must be at least 1",
                hint="set BASTION_SERVING_LOG_RETENTION_DAYS to a whole number of days >= 1")


@dataclass(frozen=True)
class Pruned:
    predictions: int = 0
    samples: int = 0
    outbox: int = 0


def _drain(step: Callable[[str, int], int], before: str, o: RetentionOptions) -> int:
    total = 0
    for _ in range(o.max_chunks):
        n = int(step(before, o.chunk))
        total += n
        if n < o.chunk:
            break
    return total


def prune(store: RetentionStore, options: RetentionOptions,
          now: dt.datetime | None = None) -> Pruned:
    """One bounded round of pruning (see the module docstring)."""
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=options.days)
    before = cutoff.isoformat(timespec="milliseconds")
    return Pruned(_drain(store.prune_predictions, before, options),
                  _drain(store.prune_canary_samples, before, options),
                  _drain(store.prune_outbox, before, options))


__all__ = ["Pruned", "RetentionOptions", "RetentionStore", "prune"]
