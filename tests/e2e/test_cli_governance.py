"""``bastion model card`` / ``card-set`` through the real CLI: edit, show (md, html,
json, cyclonedx), a refused card file, the ML-BOM validated against the schema."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

from bastion.demo.data_steps import credit_data

CARD = """\
intended_use: Rank <b>credit</b> applications for manual review.
owners: [alice@example.com]
risk_tier: high
limitations: [One bureau only]
"""


def _ok(cli: Any, *args: str) -> str:
    r = cli.run(*args)
    assert r.returncode == 0, f"bastion {' '.join(args)} -> {r.returncode}\n{r.output}"
    return str(r.output)


def test_cli_model_card_set_show_and_ml_bom(tmp_path: Path) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from sklearn.linear_model import LogisticRegression
    from test_cli_models import CLI

    cli = CLI(tmp_path / "ws", base64.b64encode(os.urandom(32)).decode())
    _ok(cli, "init")
    _ok(cli, "data", "sources", "register", "bureau", "--dataset", "credit")
    batch = tmp_path / "train.csv"
    credit_data().drop_nulls().head(600).write_csv(batch)
    sha = hashlib.sha256(batch.read_bytes()).hexdigest()
    _ok(cli, "data", "ingest", str(batch), "-d", "credit", "-s", "bureau", "--sha256", sha,
        "--label", "Status")  # fmt: skip
    x = np.random.default_rng(2).normal(size=(100, 3))
    joblib.dump(LogisticRegression().fit(x, x[:, 0] > 0), tmp_path / "model.joblib")
    _ok(cli, "model", "register", "scorer", str(tmp_path / "model.joblib"),
        "--framework", "sklearn", "--trained-on", "credit@1")  # fmt: skip

    card = tmp_path / "card.yaml"
    card.write_text(CARD)
    assert "card version 1" in _ok(cli, "model", "card-set", "scorer@1", str(card))
    md = _ok(cli, "model", "card", "scorer@1")
    assert "&lt;b&gt;credit&lt;/b&gt;" in md and "<b>" not in md
    html = _ok(cli, "model", "card", "scorer@1", "--format", "html")
    assert "<b>credit" not in html and "&lt;b&gt;credit" in html
    doc = json.loads(_ok(cli, "model", "card", "scorer@1", "--format", "json"))
    assert doc["card_version"] == 1 and doc["risk_tier"] == "high"
    assert doc["facts"]["training_data"][0]["sha256"] == sha or doc["facts"]["training_data"]
    bom = tmp_path / "bom.json"
    _ok(cli, "model", "card", "scorer@1", "--format", "cyclonedx", "-o", str(bom))
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(bom.read_text()) is None

    card.write_text(CARD + "metrics: {auc: 0.99}\n")
    r = cli.run("model", "card-set", "scorer@1", str(card))
    assert r.returncode != 0 and "unknown field 'metrics'" in r.output
    assert json.loads(_ok(cli, "model", "card", "scorer@1", "-f", "json"))["card_version"] == 1


pytestmark = pytest.mark.filterwarnings("ignore")
