"""Card versions on both databases (SQLite and PostgreSQL): numbering, history,
a card of a missing model version, and a card for an unversioned ref refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

from bastion.core.errors import NotFound
from bastion.governance.errors import CardInvalid
from bastion.model_security.registry import RegisterRequest
from bastion.model_security.values import Framework

CARD = "intended_use: Score.\nowners: [a@x]\nrisk_tier: minimal\n"


def test_card_versions_on_both_databases(workspace: Any, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    ws, admin = workspace.ws, workspace.admin
    x = np.random.default_rng(1).normal(size=(60, 2))
    joblib.dump(LogisticRegression().fit(x, x[:, 0] > 0), tmp_path / "m.joblib")
    ws.models.register(admin, RegisterRequest("default", "m", tmp_path / "m.joblib",
                                              Framework.SKLEARN))  # fmt: skip
    assert ws.cards.card(admin, "default", "m@1").card is None
    for tier in ("minimal", "limited", "high"):
        ws.cards.edit(admin, "default", "m@1", CARD.replace("minimal", tier))
    history = ws.cards.history(admin, "default", "m@1")
    assert [(h.card_version, h.spec.risk_tier.value) for h in history] == [
        (1, "minimal"), (2, "limited"), (3, "high"),
    ]  # fmt: skip
    assert len({h.spec_sha256 for h in history}) == 3
    # a reopened workspace (another process) reads the same history
    assert ws.cards.card(admin, "default", "m@1").card.card_version == 3
    assert workspace.reopen().cards.card(admin, "default", "m").card.card_version == 3
    with pytest.raises(NotFound):
        ws.cards.edit(admin, "default", "m@9", CARD)
    with pytest.raises(CardInvalid, match="which version"):
        ws.cards.edit(admin, "default", "m", CARD)
