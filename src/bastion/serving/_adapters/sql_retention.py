"""SQL implementation of :class:`bastion.serving.retention.RetentionStore`: each call is one
short transaction deleting at most ``limit`` rows (``DELETE … WHERE id IN (SELECT id …
LIMIT n)``, which SQLite and PostgreSQL both run)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bastion.core.store._adapters.sql.engine import transaction
from bastion.serving._adapters.sql_alerts import outbox
from bastion.serving._adapters.sql_canary import canaries, samples
from bastion.serving._adapters.sql_repo import predictions
from bastion.serving.canary_values import CanaryState

_RUNNING = CanaryState.RUNNING.value


class SqlRetention:
    def __init__(self, engine: Engine) -> None:
        self._e = engine

    def prune_predictions(self, before: str, limit: int) -> int:
        arms = sa.union(
            sa.select(canaries.c.deployment_id).where(canaries.c.state == _RUNNING),
            sa.select(canaries.c.stable_id).where(canaries.c.state == _RUNNING))
        old = sa.select(predictions.c.id).where(
            predictions.c.created_at < before,
            predictions.c.deployment_id.notin_(arms.scalar_subquery()),
        ).limit(limit)
        with transaction(self._e, "pruning the prediction log") as c:
            return int(c.execute(predictions.delete().where(
                predictions.c.id.in_(old.scalar_subquery()))).rowcount)

    def prune_canary_samples(self, before: str, limit: int) -> int:
        decided = sa.select(canaries.c.id).where(
            canaries.c.state != _RUNNING, canaries.c.ended_at.is_not(None),
            canaries.c.ended_at < before)
        old = sa.select(samples.c.id).where(
            samples.c.canary_id.in_(decided.scalar_subquery())).limit(limit)
        with transaction(self._e, "pruning canary samples") as c:
            return int(c.execute(samples.delete().where(
                samples.c.id.in_(old.scalar_subquery()))).rowcount)

    def prune_outbox(self, before: str, limit: int) -> int:
        old = sa.select(outbox.c.id).where(
            outbox.c.status != "pending", outbox.c.updated_at < before).limit(limit)
        with transaction(self._e, "pruning the alert outbox") as c:
            return int(c.execute(outbox.delete().where(
                outbox.c.id.in_(old.scalar_subquery()))).rowcount)


__all__ = ["SqlRetention"]
