"""The port of the canary store (implemented by ``_adapters.sql_canary``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bastion.core.canonical import JSON
from bastion.serving.canary_values import Analysis, Arm, Canary, CanaryState, Sample
from bastion.serving.values import Deployment


class CanaryRepository(Protocol):
    def running(self, project: str, endpoint: str) -> Canary | None: ...

    def all_running(self) -> list[Canary]: ...

    def latest(self, project: str, endpoint: str) -> Canary | None:
        """The endpoint's most recent canary (any state), with its request counts."""

    def start(self, new: Deployment, canary: Canary) -> Deployment:
        """Store the canary deployment and the canary row in one transaction."""

    def record_analysis(self, canary: Canary, analysis: Analysis) -> bool: ...

    def decide(self, canary: Canary, state: CanaryState, by: str, reason: str, at: str,
               analysis: Analysis | None) -> bool:
        """End a running canary (and switch the deployment rows); True for one caller."""

    def deployment(self, deployment_id: str) -> Deployment | None: ...

    def add_samples(self, rows: Sequence[dict[str, JSON]]) -> None: ...

    def window(self, canary_id: str, arm: Arm, size: int) -> list[Sample]: ...

    def labelled(self, canary: Canary, arm: Arm, size: int) -> list[tuple[str, str]]: ...

    def predicted(self, project: str, endpoint: str, request_id: str,
                  principal: str) -> bool: ...

    def add_feedback(self, row: dict[str, str]) -> bool: ...


__all__ = ["CanaryRepository"]
