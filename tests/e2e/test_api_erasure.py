"""Erasure over the REST API on a real ``bastion serve`` over loopback: the same
permission (``dataset.erase``) and refusals as the CLI, a pseudonymous report, and an
erased version that reads as erased (404 ``dataset_version_erased``), never a 500."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import polars as pl
from conftest_data import (  # noqa: F401  (the fixtures register by import)
    DataWS,
    data_server_fixture,
    data_ws_fixture,
)

BASE = "/v1/projects/default"
SUBJECT = "P-7731-KWZQ"


def client(srv: Any, data: DataWS, who: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {data.tokens[who]}"}
    return httpx.Client(base_url=srv.url, headers=headers, timeout=120)


def test_api_erasure_flow_and_refusals(data_server: Any, data_ws: DataWS) -> None:
    dana, eve = client(data_server, data_ws, "dana"), client(data_server, data_ws, "eve")
    r = dana.post(f"{BASE}/sources", json={"name": "crm", "datasets": ["people"]})
    assert r.status_code == 201, r.text
    frame = data_ws.holdout.head(500)
    ids = [SUBJECT if i in (3, 77) else f"P-{i:04d}-AAAA" for i in range(frame.height)]
    body = frame.with_columns(pl.Series("person_id", ids)).write_csv().encode()
    r = dana.post(
        f"{BASE}/datasets/people/ingest",
        params={"source": "crm", "sha256": hashlib.sha256(body).hexdigest()},
        content=body,
    )
    assert r.status_code == 201 and r.json()["status"] == "accepted", r.text
    url = f"{BASE}/datasets/people/erasures"
    where = {"where": f"person_id={SUBJECT}", "reason": "DSR-2026-090 Art. 17"}

    r = eve.post(url, json=where)  # an ML engineer may not erase
    assert r.status_code == 403, r.text
    r = dana.post(url, json={**where, "where": f"person={SUBJECT}"})
    assert r.status_code == 400 and r.json()["error"] == "erasure_unknown_column"
    assert "person_id" in r.text
    r = dana.post(url, json={**where, "where": "person_id=P-0000-NONE"})
    assert r.status_code == 400 and r.json()["error"] == "erasure_no_match"
    r = dana.post(url, json={**where, "reason": "short"})
    assert r.status_code == 400
    assert [v["status"] for v in dana.get(f"{BASE}/datasets/people/versions").json()] == [
        "accepted"
    ]

    r = dana.post(url, json=where)
    assert r.status_code == 201, r.text
    report = r.json()
    assert SUBJECT not in r.text and report["subject"].startswith("hmac-sha256:")
    assert report["versions"][0]["rows_removed"] == 2 and report["new_versions"] == [2]
    assert report["shredded"] == report["blobs"].__len__() > 0
    again = dana.post(url, json=where).json()
    assert again["already_done"] is True and again["id"] == report["id"]

    versions = {v["version"]: v for v in dana.get(f"{BASE}/datasets/people/versions").json()}
    assert versions[1]["status"] == "erased" and report["id"] in versions[1]["review_reason"]
    assert versions[2]["status"] == "accepted" and versions[2]["rows"] == 498
    r = dana.get(f"{BASE}/datasets/people/versions/1/data")
    assert r.status_code == 404 and r.json()["error"] == "dataset_version_erased"
    r = dana.get(f"{BASE}/datasets/people/versions/2/data", params={"format": "csv"})
    assert r.status_code == 200 and SUBJECT not in r.text and r.text.count("\n") == 499
    history = dana.get(url).json()
    assert [h["id"] for h in history] == [report["id"]] and SUBJECT not in str(history)
