"""The data-security REST API on a real ``bastion serve`` over loopback: sources,
ingestion with the audit report, export, review, lineage — with the same RBAC
as the CLI (401 without a token, 403 for a consumer)."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import httpx
import polars as pl
from conftest_data import (  # noqa: F401  (the fixtures register by import)
    DATASET,
    DataWS,
    data_server_fixture,
    data_ws_fixture,
)

BASE = "/v1/projects/default"


def client(srv: Any, data: DataWS, who: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {data.tokens[who]}"} if who else {}
    return httpx.Client(base_url=srv.url, headers=headers, timeout=120)


def csv_body(frame: pl.DataFrame) -> tuple[bytes, str]:
    body = frame.write_csv().encode()
    return body, hashlib.sha256(body).hexdigest()


def test_api_data_flow(data_server: Any, data_ws: DataWS) -> None:
    dana, eve, olga = (client(data_server, data_ws, w) for w in ("dana", "eve", "olga"))
    # a steward registers a second trusted source for the dataset
    r = dana.post(f"{BASE}/sources", json={"name": "api-feed", "datasets": [DATASET]})
    assert r.status_code == 201, r.text
    assert r.json()["trusted"] is True and r.json()["created_by"] == "dana"
    assert "api-feed" in {s["name"] for s in dana.get(f"{BASE}/sources").json()}

    # ingest a clean batch: the file is the request body
    batch = data_ws.holdout.slice(0, 400)
    body, digest = csv_body(batch)
    r = dana.post(
        f"{BASE}/datasets/{DATASET}/ingest",
        params={"source": "api-feed", "sha256": digest, "filename": "june.csv"},
        content=body,
    )
    assert r.status_code == 201, r.text
    v = r.json()
    assert v["status"] == "accepted" and v["rows"] == 400 and v["raw_sha256"] == digest
    assert v["report"]["passed"] is True and v["parent_version"] == 1
    assert v["verdict"] == "accepted"
    version = v["version"]

    # the stored version carries its report
    r = olga.get(f"{BASE}/datasets/{DATASET}/versions/{version}")
    assert r.status_code == 200 and r.json()["report"]["row_count"] == 400

    # export as CSV (ML engineer: dataset.read) round-trips the rows
    r = eve.get(f"{BASE}/datasets/{DATASET}/versions/{version}/data", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    back = pl.read_csv(io.BytesIO(r.content))
    assert back["application_id"].to_list() == batch["application_id"].to_list()

    # a batch through an unregistered channel is quarantined, with the report
    body, digest = csv_body(data_ws.holdout.slice(400, 300))
    r = dana.post(
        f"{BASE}/datasets/{DATASET}/ingest",
        params={"source": "usb-stick", "sha256": digest},
        content=body,
    )
    assert r.status_code == 201, r.text
    q = r.json()
    assert q["status"] == "quarantined"
    assert "source_lineage" in q["report"]["blocking_failures"]
    # the API says why: an unproven source is suspected poisoning, not a contract breach
    assert q["verdict"] == q["report"]["verdict"] == "poisoning_suspected"
    held = q["version"]
    r = eve.get(f"{BASE}/datasets/{DATASET}/versions/{held}/data")
    assert r.status_code == 403 and r.json()["error"] == "forbidden"

    # release: a reason is required, only a steward may, and it is recorded
    url = f"{BASE}/datasets/{DATASET}/versions/{held}/release"
    assert dana.post(url, json={"reason": "short"}).status_code == 422
    assert eve.post(url, json={"reason": "the engineer wants it released"}).status_code == 403
    reason = "bureau confirmed the USB courier delivery (ticket 9912)"
    r = dana.post(url, json={"reason": reason})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted" and r.json()["review_reason"] == reason
    assert dana.post(url, json={"reason": reason}).status_code == 409
    assert eve.get(f"{BASE}/datasets/{DATASET}/versions/{held}/data").status_code == 200

    # lineage: source -> raw batch -> version, plus the parent
    r = eve.get(f"{BASE}/lineage/dataset_version/{DATASET}@{version}")
    assert r.status_code == 200
    up = r.json()["upstream"]
    relations = {c["relation"] for c in up["children"]}
    assert relations == {"parsed", "parent"}
    r = olga.post(f"{BASE}/lineage/dataset_version/{DATASET}@{version}/verify")
    assert r.status_code == 200 and r.json()["ok"] is True

    # the access report sees all of it
    r = olga.get(f"{BASE}/datasets/{DATASET}/access-report")
    assert r.status_code == 200
    by = {p["principal"]: p for p in r.json()["principals"]}
    assert by["eve"]["reads"] >= 2 and by["eve"]["denials"] >= 2 and by["dana"]["writes"] >= 2


def test_api_consumer_token_gets_403(data_server: Any, data_ws: DataWS) -> None:
    carl = client(data_server, data_ws, "carl")
    body, digest = csv_body(data_ws.holdout.slice(0, 50))
    r = carl.post(
        f"{BASE}/datasets/{DATASET}/ingest",
        params={"source": "credit-bureau", "sha256": digest},
        content=body,
    )
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert "carl may not dataset.ingest" in r.json()["message"]
    for path in (f"/datasets/{DATASET}/versions", f"/datasets/{DATASET}/versions/1/data"):
        assert carl.get(BASE + path).status_code == 403
    assert carl.post(f"{BASE}/sources", json={"name": "side-door"}).status_code == 403


def test_api_without_a_token_is_401(data_server: Any, data_ws: DataWS) -> None:
    anon = client(data_server, data_ws, None)
    r = anon.post(f"{BASE}/datasets/{DATASET}/ingest", params={"source": "x"}, content=b"a\n1\n")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert anon.get(f"{BASE}/datasets/{DATASET}/versions/1/data").status_code == 401
    bad = httpx.get(
        f"{data_server.url}{BASE}/datasets",
        headers={"Authorization": "Bearer bst_nope_nope"},
        timeout=30,
    )
    assert bad.status_code == 401
