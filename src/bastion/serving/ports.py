"""Ports of the serving layer: the release gate and the deployment store.

The release gate belongs to governance (``bastion.governance.gate.GateService``); serving
depends only on this Protocol, so the composition root wires whichever gate exists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from bastion.core.access.values import Actor
from bastion.core.canonical import JSON
from bastion.serving.values import Deployment, DeploymentState


class GateVerdict(Protocol):
    @property
    def passed(self) -> bool: ...

    @property
    def root_digest(self) -> str: ...

    @property
    def failed(self) -> tuple[str, ...]: ...

    def to_dict(self) -> dict[str, JSON]: ...


class ReleaseGate(Protocol):
    def check(self, actor: Actor, project: str, ref: str) -> GateVerdict:
        """Evaluate the release policy on ``ref`` (MODEL@V); never raises on a failing rule."""


class DeploymentRepository(Protocol):
    def history(self, project: str, endpoint: str) -> list[Deployment]:
        """Every deployment of the endpoint, oldest first."""

    def active(self, project: str, endpoint: str) -> Deployment | None: ...

    def all_active(self) -> list[Deployment]: ...

    def switch(self, new: Deployment, end_state: DeploymentState, ended_by: str,
               end_reason: str) -> Deployment:
        """Store ``new`` as the endpoint's next (active) deployment and end the current one
        with ``end_state``, in one transaction; assigns ``seq``."""

    def end(self, deployment_id: str, state: DeploymentState, ended_by: str,
            reason: str) -> None: ...

    def log_predictions(self, rows: Sequence[dict[str, JSON]]) -> None: ...


#: the data contract of a dataset (project, name) as JSON text, or None (internal read)
ContractSource = Callable[[str, str], str | None]

__all__ = ["ContractSource", "DeploymentRepository", "GateVerdict", "ReleaseGate"]
