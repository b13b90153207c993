"""The release adapter's tables match migration 0009 (SQLite and PostgreSQL), and the
database itself refuses a reused approval nonce and a second policy with one number."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from bastion.governance._adapters.sql_release import (
    SqlReleaseRepository,
    approvals,
    policies,
    waivers,
)
from bastion.governance.release_values import ApprovalRecord, Decision, PolicyVersion


def test_release_tables_of_the_adapter_match_the_migration(workspace: Any) -> None:
    inspector = sa.inspect(workspace.ws.engine)
    for table in (policies, approvals, waivers):
        migrated = {c["name"] for c in inspector.get_columns(table.name)}
        assert migrated == set(table.c.keys()), table.name
    assert "uq_approval_nonce" in {
        u["name"] for u in inspector.get_unique_constraints("model_approvals")
    }
    assert "uq_release_policy" in {
        u["name"] for u in inspector.get_unique_constraints("release_policies")
    }


def _record(nonce: str) -> ApprovalRecord:
    return ApprovalRecord(
        uuid.uuid4().hex, "default", "m", 1, Decision.APPROVE, "rita", "rita", None, "why not",
        "a" * 64, 1, "b" * 64, nonce, "c" * 64, "2026-01-01T00:00:00", "2026-04-01T00:00:00",
    )  # fmt: skip


def test_replayed_nonce_is_refused_by_the_repository_and_the_database(workspace: Any) -> None:
    repo = SqlReleaseRepository(workspace.ws.engine)
    assert repo.add_approval(_record("nonce-0001"))
    assert not repo.add_approval(_record("nonce-0001"))  # checked in the transaction
    row = {k: v for k, v in vars(_record("nonce-0001")).items()}
    row["decision"] = "approve"
    with pytest.raises(sa.exc.IntegrityError), workspace.ws.engine.begin() as c:
        c.execute(approvals.insert().values(**row))  # the unique constraint behind it
    assert len(repo.approvals("default", "m", 1)) == 1


def test_policy_versions_are_numbered_per_project(workspace: Any) -> None:
    repo = SqlReleaseRepository(workspace.ws.engine)
    made = [
        repo.add_policy(PolicyVersion(uuid.uuid4().hex, p, 0, "doc", "d" * 64, "t", "admin"))
        for p in ("default", "default", "other")
    ]
    assert [(m.project, m.version) for m in made] == [("default", 1), ("default", 2), ("other", 1)]
    assert [p.version for p in repo.policies("default")] == [1, 2]
