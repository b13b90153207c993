"""The demo's steps assert the control they show, and fail when it does not hold.

The audit-tamper step runs on SQLite and PostgreSQL (the ``workspace`` fixture);
the data steps are run against a real workspace with the control weakened
(the "unregistered" source registered after all) to prove they can fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bastion.demo.data_steps import (
    DataStory,
    clean_batch,
    poison,
    precision_recall,
    register_source,
    risk_scores,
    trusted_history,
    unregistered_source,
)
from bastion.demo.foundation import DemoState, audit_tamper, denied_access, store_roundtrip
from bastion.demo.runner import DemoFailed

if TYPE_CHECKING:  # a name only: tests/integration/data_security has a conftest too
    from conftest import WS


def _state(ws: WS, tmp_path: Path) -> DemoState:
    work = tmp_path / "demo-work"
    work.mkdir()
    return DemoState(ws.ws, ws.admin, work)


def test_demo_audit_tamper_step_detects_an_edited_entry(workspace: WS, tmp_path: Path) -> None:
    st = _state(workspace, tmp_path)
    store_roundtrip(st)
    denied_access(st)
    evidence = audit_tamper(st)
    backend = "sqlite" if workspace.db_url.startswith("sqlite") else "postgresql"
    assert f"({backend})" in evidence[0]
    assert "edited in the database" in evidence[1] and "detected" in evidence[1]
    assert st.ws.audit.verify().ok  # the step restored the entry it edited


def test_demo_audit_tamper_step_fails_when_verify_misses_the_edit(
    sqlite_workspace: WS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = _state(sqlite_workspace, tmp_path)
    store_roundtrip(st)
    intact = st.ws.audit.verify()
    monkeypatch.setattr(st.ws.audit, "verify", lambda *a, **k: intact)
    with pytest.raises(DemoFailed, match="verify still passed"):
        audit_tamper(st)


def test_demo_poison_returns_exactly_the_relabelled_rows() -> None:
    story = DataStory()
    story.split()
    batch = story.holdout.slice(400, 400)
    poisoned, rows = poison(batch, story.trusted)
    changed = {
        i
        for i, (a, b) in enumerate(zip(batch["Status"], poisoned["Status"], strict=True))
        if a != b
    }
    assert changed == rows and len(rows) == 60
    assert set(batch["Status"].gather(sorted(rows))) == {"bad"}
    # the attacker relabels the riskiest 'bad' applicants, not arbitrary ones
    risk = risk_scores(story.trusted, batch)
    bad = [i for i, s in enumerate(batch["Status"]) if s == "bad"]
    assert min(risk[i] for i in rows) >= max(risk[i] for i in bad if i not in rows)


def test_demo_precision_recall_scores_flagged_rows_against_the_truth() -> None:
    assert precision_recall({1, 2, 3, 4}, {3, 4, 5, 6, 7, 8, 9, 10}) == (0.5, 0.25)
    assert precision_recall(set(), {1}) == (0.0, 0.0)


def test_demo_unregistered_source_step_fails_if_the_source_is_registered(
    sqlite_workspace: WS, tmp_path: Path
) -> None:
    st = _state(sqlite_workspace, tmp_path)
    story = DataStory()
    story.split()
    register_source(st, story)
    trusted_history(st, story)
    clean_batch(st, story)
    st.ws.datasets.register_source(
        story.actor(), "default", "usb-stick", datasets=("credit-applications",)
    )
    with pytest.raises(DemoFailed, match="unregistered source was accepted"):
        unregistered_source(st, story)
