"""SQL implementation of the deployment repository (migration 0012_serving).

Tables: ``serving_deployments`` (an endpoint's history, one row per deployment, states
changed in place with who/when/why) and ``serving_predictions`` (the prediction log:
request id, endpoint, model version, latency, keyed digest of the features).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bastion.core.canonical import JSON
from bastion.core.store._adapters.sql.engine import reading, transaction
from bastion.serving.values import Deployment, DeploymentState, InputSchema, ResponsePolicy

_md = sa.MetaData()
deployments = sa.Table(
    "serving_deployments",
    _md,
    *(sa.Column(n, sa.String) for n in (
        "id", "project", "endpoint", "model", "root_digest", "state", "input_schema",
        "response_policy", "gate", "reason", "created_at", "created_by", "ended_at",
        "ended_by", "end_reason")),
    sa.Column("seq", sa.Integer),
    sa.Column("version", sa.Integer),
)
predictions = sa.Table(
    "serving_predictions",
    _md,
    *(sa.Column(n, sa.String) for n in (
        "id", "request_id", "project", "endpoint", "deployment_id", "model", "outcome",
        "features_digest", "created_at", "principal")),
    sa.Column("version", sa.Integer),
    sa.Column("rows", sa.Integer),
    sa.Column("latency_ms", sa.Float),
    sa.Column("ood", sa.Integer),  # rows flagged out of distribution (0015_adversarial)
)


def _deployment(r: sa.Row[tuple[object, ...]]) -> Deployment:
    m = r._mapping
    return Deployment(
        id=m["id"], project=m["project"], endpoint=m["endpoint"], seq=int(m["seq"]),
        model=m["model"], version=int(m["version"]), root_digest=m["root_digest"],
        state=DeploymentState(m["state"]), schema=InputSchema.from_json(m["input_schema"]),
        policy=ResponsePolicy.from_json(m["response_policy"]), gate=m["gate"],
        created_at=m["created_at"], created_by=m["created_by"], reason=m["reason"] or "",
        ended_at=m["ended_at"], ended_by=m["ended_by"], end_reason=m["end_reason"],
    )


class SqlDeploymentRepository:
    def __init__(self, engine: Engine) -> None:
        self._e = engine

    def history(self, project: str, endpoint: str) -> list[Deployment]:
        with reading(self._e, "reading deployments") as c:
            rows = c.execute(sa.select(deployments).where(
                deployments.c.project == project, deployments.c.endpoint == endpoint,
            ).order_by(deployments.c.seq)).all()
        return [_deployment(r) for r in rows]

    def active(self, project: str, endpoint: str) -> Deployment | None:
        with reading(self._e, "reading deployments") as c:
            row = c.execute(sa.select(deployments).where(
                deployments.c.project == project, deployments.c.endpoint == endpoint,
                deployments.c.state == DeploymentState.ACTIVE.value)).first()
        return _deployment(row) if row is not None else None

    def all_active(self) -> list[Deployment]:
        with reading(self._e, "reading deployments") as c:
            rows = c.execute(sa.select(deployments).where(
                deployments.c.state == DeploymentState.ACTIVE.value)).all()
        return [_deployment(r) for r in rows]

    def switch(self, new: Deployment, end_state: DeploymentState, ended_by: str,
               end_reason: str) -> Deployment:
        # Two concurrent deploys both compute max(seq) + 1: the unique constraint on
        # (project, endpoint, seq) refuses the second (Conflict), nothing half-done.
        with transaction(self._e, "storing a deployment") as c:
            latest = c.execute(sa.select(sa.func.max(deployments.c.seq)).where(
                deployments.c.project == new.project,
                deployments.c.endpoint == new.endpoint)).scalar()
            c.execute(deployments.update().where(
                deployments.c.project == new.project, deployments.c.endpoint == new.endpoint,
                deployments.c.state == DeploymentState.ACTIVE.value,
            ).values(state=end_state.value, ended_at=new.created_at, ended_by=ended_by,
                     end_reason=end_reason))
            seq = int(latest or 0) + 1
            c.execute(deployments.insert().values(
                id=new.id, project=new.project, endpoint=new.endpoint, seq=seq,
                model=new.model, version=new.version, root_digest=new.root_digest,
                state=DeploymentState.ACTIVE.value, input_schema=new.schema.to_json(),
                response_policy=new.policy.to_json(), gate=new.gate, reason=new.reason,
                created_at=new.created_at, created_by=new.created_by))
        return dataclasses.replace(new, seq=seq, state=DeploymentState.ACTIVE)

    def end(self, deployment_id: str, state: DeploymentState, ended_by: str,
            reason: str) -> None:
        import datetime as dt

        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with transaction(self._e, "ending a deployment") as c:
            c.execute(deployments.update().where(
                deployments.c.id == deployment_id,
                deployments.c.state == DeploymentState.ACTIVE.value,
            ).values(state=state.value, ended_at=now, ended_by=ended_by, end_reason=reason))

    def log_predictions(self, rows: Sequence[dict[str, JSON]]) -> None:
        if not rows:
            return
        with transaction(self._e, "logging predictions") as c:
            c.execute(predictions.insert(), [dict(r) for r in rows])

    def predictions(self, project: str, endpoint: str, limit: int = 1000) -> list[dict[str, JSON]]:
        with reading(self._e, "reading the prediction log") as c:
            rows = c.execute(sa.select(predictions).where(
                predictions.c.project == project, predictions.c.endpoint == endpoint,
            ).order_by(predictions.c.created_at).limit(limit)).all()
        return [json.loads(json.dumps(dict(r._mapping))) for r in rows]


__all__ = ["SqlDeploymentRepository"]
