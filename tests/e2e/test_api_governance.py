"""The card routes on a real server on loopback: PUT the YAML, GET every format."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import joblib
import numpy as np

CARD = "intended_use: Rank <script>x</script> applications.\nowners: [a@x]\nrisk_tier: high\n"


def test_api_card_put_and_get_every_format(server: Any) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(2).normal(size=(100, 3))
    buf = io.BytesIO()
    joblib.dump(LogisticRegression().fit(x, x[:, 0] > 0), buf)
    base = f"{server.url}/v1/projects/default/models/scorer"
    with httpx.Client(headers=server.auth(), verify=False, timeout=60) as c:
        r = c.post(f"{base}/versions", params={"framework": "sklearn", "filename": "m.joblib"},
                   content=buf.getvalue())  # fmt: skip
        assert r.status_code == 201, r.text
        r = c.put(f"{base}/versions/1/card", content=CARD.encode(),
                  headers={"Content-Type": "application/yaml"})  # fmt: skip
        assert r.status_code == 201, r.text
        assert r.json()["card_version"] == 1
        bad = c.put(f"{base}/versions/1/card", content=(CARD + "scan: clean\n").encode())
        assert bad.status_code in (400, 422), bad.text
        assert "unknown field 'scan'" in bad.text
        html = c.get(f"{base}/versions/1/card", params={"format": "html"})
        assert html.status_code == 200 and "<script>x" not in html.text
        assert "&lt;script&gt;" in html.text
        doc = c.get(f"{base}/versions/1/card").json()
        assert doc["card_version"] == 1 and doc["risk_tier"] == "high"
        bom = c.get(f"{base}/versions/1/card", params={"format": "cyclonedx"})
        assert bom.status_code == 200
        assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(bom.text) is None
        assert json.loads(bom.text)["metadata"]["component"]["type"] == "machine-learning-model"
        anon = httpx.get(f"{base}/versions/1/card", verify=False)
        assert anon.status_code == 401
