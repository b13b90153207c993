"""Ports of the release process: stored policies/approvals/waivers, who is who, providers."""

from __future__ import annotations

from typing import Protocol

from bastion.governance.release_values import ApprovalRecord, PolicyVersion, Waiver
from bastion.model_security.values import ModelVersion


class ReleaseRepository(Protocol):
    def add_policy(self, policy: PolicyVersion) -> PolicyVersion:
        """Store the next policy version of its project (``version`` assigned: latest + 1)."""

    def policies(self, project: str) -> list[PolicyVersion]:
        """Every stored policy version of ``project``, oldest first."""

    def add_approval(self, record: ApprovalRecord) -> bool:
        """Store ``record``; False (nothing stored) when its nonce was used before."""

    def nonce_used(self, project: str, nonce: str) -> bool: ...

    def approvals(self, project: str, model: str, version: int) -> list[ApprovalRecord]:
        """Every approval and rejection of a model version, oldest first."""

    def add_waiver(self, waiver: Waiver) -> None: ...

    def waivers(self, project: str, model: str | None = None) -> list[Waiver]:
        """Waivers of ``project`` (of one model's versions when ``model`` is given)."""


class IdentityDirectory(Protocol):
    """Who stands behind a principal: the identity separation of duties counts."""

    def humans(self, principal: str, token_id: str | None = None) -> frozenset[str]:
        """The people behind ``principal`` acting with ``token_id``.

        A user is itself; a service account is whoever created it and every user
        whose token issued (directly or up the token lineage) the token it uses."""


class ProviderEvidence(Protocol):
    """The third-party provider register, as the gate asks it (wired by the root)."""

    def unassessed_providers(self, project: str, model_version: ModelVersion) -> list[str]:
        """``"NAME: REASON"`` for every provider in the lineage of ``model_version`` whose
        assessment is missing or expired (``providers.ProviderLineageCheck`` implements it)."""


__all__ = [
    "IdentityDirectory",
    "ProviderEvidence",
    "ReleaseRepository",
]
