"""The canary adapter's tables match migration 0013 (SQLite and PostgreSQL), and the
database itself refuses a second running canary on one endpoint."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from bastion.serving._adapters.sql_canary import canaries, feedback, samples


def test_canary_tables_of_the_adapter_match_the_migration(workspace: Any) -> None:
    inspector = sa.inspect(workspace.ws.engine)
    for table in (canaries, samples, feedback):
        migrated = {c["name"] for c in inspector.get_columns(table.name)}
        assert migrated == set(table.c.keys()), table.name
    assert "uq_serving_feedback_request" in {
        u["name"] for u in inspector.get_unique_constraints("serving_feedback")}


def _row(i: int, state: str) -> dict[str, Any]:
    return {"id": f"c{i}", "project": "default", "endpoint": "scoring", "deployment_id": f"d{i}",
            "stable_id": "s", "weight": 10, "promote_after": 100, "sticky_header": None,
            "thresholds": "{}", "state": state, "row_version": 0, "created_at": "t",
            "created_by": "admin"}


def test_second_running_canary_on_one_endpoint_is_refused_by_the_database(
        workspace: Any) -> None:
    engine = workspace.ws.engine
    with engine.begin() as c:
        c.execute(canaries.insert().values(**_row(1, "running")))
        c.execute(canaries.insert().values(**_row(2, "rolled_back")))  # ended ones are many
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as c:
        c.execute(canaries.insert().values(**_row(3, "running")))
