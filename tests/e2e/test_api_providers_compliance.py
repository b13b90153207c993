"""The third-party register and compliance routes on a real server on loopback."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx


def _day(offset: int) -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=offset)).isoformat()


def _assessment(**over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "data_sent": ["personal"],
        "dpa": True,
        "certifications": ["ISO 27001"],
        "reviewed_on": _day(-10),
        "expires_on": _day(355),
        "risk": "medium",
    }
    return {**body, **over}


def test_api_provider_register_assess_refusals_and_soc2_report(server: Any) -> None:
    base = f"{server.url}/v1/projects/default"
    with httpx.Client(headers=server.auth(), verify=False, timeout=60) as c:
        r = c.post(f"{base}/providers", json={"name": "acme-llm", "kind": "api"})
        assert r.status_code == 201, r.text
        lookalike = c.post(f"{base}/providers", json={"name": "Acme_LLM", "kind": "api"})
        assert lookalike.status_code == 409 and "look-alike" in lookalike.text
        bad_kind = c.post(f"{base}/providers", json={"name": "other", "kind": "oracle"})
        assert bad_kind.status_code == 400 and "model, api, data" in bad_kind.text
        past = c.post(
            f"{base}/providers/acme-llm/assessments",
            json=_assessment(reviewed_on=_day(-400), expires_on=_day(-1)),
        )
        assert past.status_code == 400 and "already past" in past.text
        rating = c.post(f"{base}/providers/acme-llm/assessments", json=_assessment(risk="meh"))
        assert rating.status_code == 400 and "unknown risk rating" in rating.text
        ok = c.post(f"{base}/providers/acme-llm/assessments", json=_assessment())
        assert ok.status_code == 201 and ok.json()["assessment_version"] == 1
        shown = c.get(f"{base}/providers/acme-llm").json()
        assert shown["status"] == "current" and len(shown["history"]) == 1
        listed = c.get(f"{base}/providers").json()
        assert [p["name"] for p in listed] == ["acme-llm"]
        missing = c.post(f"{base}/providers/acme-llm/links", json={"source": "nope"})
        assert missing.status_code == 404
        report = c.get(f"{base}/compliance/soc2")
        assert report.status_code == 200, report.text
        doc = report.json()
        assert doc["framework"] == "soc2" and {x["id"] for x in doc["controls"]} == {
            "CC6",
            "CC7",
            "CC8",
        }
        cc7 = next(x for x in doc["controls"] if x["id"] == "CC7")
        assessed = next(k for k in cc7["checks"] if k["check"] == "providers_assessed")
        assert assessed["status"] == "pass" and assessed["evidence"][0]["sha256"]
        html = c.get(f"{base}/compliance/soc2", params={"format": "html"})
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in html.headers["content-security-policy"]
        unknown = c.get(f"{base}/compliance/pci")
        assert unknown.status_code == 400
        assert "eu-ai-act, gdpr, hipaa, soc2" in unknown.json()["hint"]
    anon = httpx.get(f"{base}/compliance/soc2", verify=False)
    assert anon.status_code == 401
