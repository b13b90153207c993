"""SQL implementation of the canary repository (migration 0013_canary).

Tables: ``serving_canaries`` (one row per canary release; at most one ``running`` per
endpoint, by a partial unique index), ``serving_canary_samples`` (one row per request
answered while a canary runs, either arm, written with the prediction-log flush by every
gateway replica: the analysis reads them, so replicas judge the *whole* traffic) and
``serving_feedback`` (one label per principal and request id).

A decision (promote, roll back, abort) is one conditional UPDATE ``... WHERE state =
'running'`` in the transaction that also switches the deployment rows: when two replicas
decide at the same moment, exactly one updates a row and only that one audits.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bastion.core.canonical import JSON
from bastion.core.store._adapters.sql.engine import reading, transaction
from bastion.serving._adapters.sql_repo import deployments, predictions
from bastion.serving.canary_values import (
    Analysis,
    Arm,
    Canary,
    CanaryPlan,
    CanaryState,
    CanaryThresholds,
    Sample,
)
from bastion.serving.values import Deployment, DeploymentState

_md = sa.MetaData()
canaries = sa.Table(
    "serving_canaries",
    _md,
    *(sa.Column(n, sa.String) for n in (
        "id", "project", "endpoint", "deployment_id", "stable_id", "sticky_header",
        "thresholds", "state", "analysis", "analyzed_at", "created_at", "created_by",
        "ended_at", "ended_by", "end_reason")),
    *(sa.Column(n, sa.Integer) for n in ("weight", "promote_after", "row_version")),
)
samples = sa.Table(
    "serving_canary_samples",
    _md,
    *(sa.Column(n, sa.String) for n in (
        "id", "canary_id", "arm", "request_id", "principal", "outcome", "labels",
        "created_at")),
    sa.Column("latency_ms", sa.Float),
    sa.Column("rows", sa.Integer),
    sa.Column("ood", sa.Integer),
)
feedback = sa.Table(
    "serving_feedback",
    _md,
    *(sa.Column(n, sa.String) for n in (
        "id", "project", "endpoint", "request_id", "principal", "label", "created_at")),
)


def _canary(r: sa.Row[tuple[object, ...]]) -> Canary:
    m = r._mapping
    plan = CanaryPlan(int(m["weight"]), int(m["promote_after"]), m["sticky_header"],
                      CanaryThresholds.from_json(m["thresholds"]))
    return Canary(
        id=m["id"], project=m["project"], endpoint=m["endpoint"],
        deployment_id=m["deployment_id"], stable_id=m["stable_id"], plan=plan,
        state=CanaryState(m["state"]), row_version=int(m["row_version"]),
        created_at=m["created_at"], created_by=m["created_by"],
        analysis=Analysis.from_json(m["analysis"]) if m["analysis"] else None,
        ended_at=m["ended_at"], ended_by=m["ended_by"], end_reason=m["end_reason"])


class SqlCanaryRepository:
    def __init__(self, engine: Engine) -> None:
        self._e = engine

    # -- canaries ---------------------------------------------------------------------
    def running(self, project: str, endpoint: str) -> Canary | None:
        with reading(self._e, "reading canaries") as c:
            row = c.execute(sa.select(canaries).where(
                canaries.c.project == project, canaries.c.endpoint == endpoint,
                canaries.c.state == CanaryState.RUNNING.value)).first()
        return _canary(row) if row is not None else None

    def all_running(self) -> list[Canary]:
        with reading(self._e, "reading canaries") as c:
            rows = c.execute(sa.select(canaries).where(
                canaries.c.state == CanaryState.RUNNING.value)).all()
        return [_canary(r) for r in rows]

    def latest(self, project: str, endpoint: str) -> Canary | None:
        """The endpoint's most recent canary (running or ended), with its request counts."""
        with reading(self._e, "reading canaries") as c:
            row = c.execute(sa.select(canaries).where(
                canaries.c.project == project, canaries.c.endpoint == endpoint,
            ).order_by(canaries.c.created_at.desc(), canaries.c.id).limit(1)).first()
            if row is None:
                return None
            found = _canary(row)
            counts: dict[str, int] = dict(c.execute(
                sa.select(samples.c.arm, sa.func.count()).where(
                    samples.c.canary_id == found.id).group_by(samples.c.arm)).all())
        return dataclasses.replace(found, canary_requests=int(counts.get("canary", 0)),
                                   stable_requests=int(counts.get("stable", 0)))

    def start(self, new: Deployment, canary: Canary) -> Deployment:
        """Store ``new`` as the endpoint's next deployment in state ``canary`` and the
        canary row, in one transaction (the partial unique index refuses a second
        running canary: ``Conflict``)."""
        with transaction(self._e, "starting a canary") as c:
            latest = c.execute(sa.select(sa.func.max(deployments.c.seq)).where(
                deployments.c.project == new.project,
                deployments.c.endpoint == new.endpoint)).scalar()
            seq = int(latest or 0) + 1
            c.execute(deployments.insert().values(
                id=new.id, project=new.project, endpoint=new.endpoint, seq=seq,
                model=new.model, version=new.version, root_digest=new.root_digest,
                state=DeploymentState.CANARY.value, input_schema=new.schema.to_json(),
                response_policy=new.policy.to_json(), gate=new.gate, reason=new.reason,
                created_at=new.created_at, created_by=new.created_by))
            p = canary.plan
            c.execute(canaries.insert().values(
                id=canary.id, project=canary.project, endpoint=canary.endpoint,
                deployment_id=new.id, stable_id=canary.stable_id, weight=p.weight,
                promote_after=p.promote_after, sticky_header=p.sticky_header,
                thresholds=p.thresholds.to_json(), state=CanaryState.RUNNING.value,
                row_version=0, created_at=canary.created_at, created_by=canary.created_by))
        return dataclasses.replace(new, seq=seq, state=DeploymentState.CANARY)

    def record_analysis(self, canary: Canary, analysis: Analysis) -> bool:
        """Store the last analysis if nobody wrote the row since ``canary`` was read."""
        with transaction(self._e, "recording a canary analysis") as c:
            done = c.execute(canaries.update().where(
                canaries.c.id == canary.id, canaries.c.state == CanaryState.RUNNING.value,
                canaries.c.row_version == canary.row_version,
            ).values(analysis=json.dumps(analysis.to_dict(), sort_keys=True),
                     analyzed_at=analysis.at, row_version=canary.row_version + 1))
        return done.rowcount == 1

    def decide(self, canary: Canary, state: CanaryState, by: str, reason: str, at: str,
               analysis: Analysis | None) -> bool:
        """End a running canary; True for the one caller whose UPDATE took effect."""
        values: dict[str, object] = {
            "state": state.value, "ended_at": at, "ended_by": by, "end_reason": reason[:500],
            "row_version": canaries.c.row_version + 1}
        if analysis is not None:
            values.update(analysis=json.dumps(analysis.to_dict(), sort_keys=True),
                          analyzed_at=analysis.at)
        with transaction(self._e, "deciding a canary") as c:
            done = c.execute(canaries.update().where(
                canaries.c.id == canary.id,
                canaries.c.state == CanaryState.RUNNING.value).values(**values))
            if done.rowcount != 1:
                return False
            if state is CanaryState.PROMOTED:
                self._end(c, canary, DeploymentState.ACTIVE, DeploymentState.SUPERSEDED,
                          by, f"superseded by canary {canary.id[:12]}", at)
                c.execute(deployments.update().where(
                    deployments.c.id == canary.deployment_id,
                    deployments.c.state == DeploymentState.CANARY.value,
                ).values(state=DeploymentState.ACTIVE.value, reason="canary promoted"))
            else:
                c.execute(deployments.update().where(
                    deployments.c.id == canary.deployment_id,
                    deployments.c.state == DeploymentState.CANARY.value,
                ).values(state=DeploymentState.ROLLED_BACK.value, ended_at=at, ended_by=by,
                         end_reason=reason[:500]))
        return True

    @staticmethod
    def _end(c: Connection, canary: Canary, state: DeploymentState, to: DeploymentState,
             by: str, reason: str, at: str) -> None:
        c.execute(deployments.update().where(
            deployments.c.project == canary.project, deployments.c.endpoint == canary.endpoint,
            deployments.c.state == state.value,
        ).values(state=to.value, ended_at=at, ended_by=by, end_reason=reason))

    def deployment(self, deployment_id: str) -> Deployment | None:
        from bastion.serving._adapters.sql_repo import _deployment

        with reading(self._e, "reading deployments") as c:
            row = c.execute(sa.select(deployments).where(
                deployments.c.id == deployment_id)).first()
        return _deployment(row) if row is not None else None

    # -- samples ----------------------------------------------------------------------
    def add_samples(self, rows: Sequence[dict[str, JSON]]) -> None:
        if rows:
            with transaction(self._e, "logging canary samples") as c:
                c.execute(samples.insert(), [dict(r) for r in rows])

    def window(self, canary_id: str, arm: Arm, size: int) -> list[Sample]:
        """The ``size`` most recent samples of one arm (every replica's)."""
        with reading(self._e, "reading canary samples") as c:
            rows = c.execute(sa.select(
                samples.c.outcome, samples.c.latency_ms, samples.c.labels, samples.c.ood,
                samples.c.rows).where(samples.c.canary_id == canary_id,
                                      samples.c.arm == arm.value)
                .order_by(samples.c.created_at.desc()).limit(size)).all()
        return [Sample(str(r[0]), float(r[1]), tuple(str(x) for x in json.loads(r[2])),
                       int(r[3]), int(r[4])) for r in rows]

    def labelled(self, canary: Canary, arm: Arm, size: int) -> list[tuple[str, str]]:
        """(predicted label, feedback label) of the ``size`` most recent labelled
        one-row requests of one arm."""
        j = samples.join(feedback, sa.and_(
            feedback.c.request_id == samples.c.request_id,
            feedback.c.principal == samples.c.principal,
            feedback.c.project == canary.project, feedback.c.endpoint == canary.endpoint))
        with reading(self._e, "reading canary feedback") as c:
            rows = c.execute(sa.select(samples.c.labels, feedback.c.label).select_from(j).where(
                samples.c.canary_id == canary.id, samples.c.arm == arm.value,
                samples.c.rows == 1, samples.c.outcome == "ok",
            ).order_by(samples.c.created_at.desc()).limit(size)).all()
        out: list[tuple[str, str]] = []
        for predicted, label in rows:
            got = json.loads(str(predicted))
            if got:
                out.append((str(got[0]), str(label)))
        return out

    # -- feedback ---------------------------------------------------------------------
    def predicted(self, project: str, endpoint: str, request_id: str, principal: str) -> bool:
        """Whether ``principal`` made request ``request_id`` on this endpoint (logged)."""
        with reading(self._e, "reading the prediction log") as c:
            row = c.execute(sa.select(predictions.c.id).where(
                predictions.c.project == project, predictions.c.endpoint == endpoint,
                predictions.c.request_id == request_id, predictions.c.principal == principal,
                predictions.c.outcome == "ok").limit(1)).first()
        return row is not None

    def add_feedback(self, row: dict[str, str]) -> bool:
        """Store one label; False when this principal already labelled the request."""
        with transaction(self._e, "storing feedback") as c:
            exists = c.execute(sa.select(feedback.c.id).where(
                feedback.c.project == row["project"], feedback.c.endpoint == row["endpoint"],
                feedback.c.principal == row["principal"],
                feedback.c.request_id == row["request_id"])).first()
            if exists is not None:
                return False
            c.execute(feedback.insert().values(**row))
        return True


__all__ = ["SqlCanaryRepository", "canaries", "feedback", "samples"]
