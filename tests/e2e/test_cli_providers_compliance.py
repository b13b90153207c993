"""``bastion provider`` and ``bastion compliance`` through the real CLI."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any


def _day(offset: int) -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=offset)).isoformat()


def _ok(cli: Any, *args: str) -> str:
    r = cli.run(*args)
    assert r.returncode == 0, f"bastion {' '.join(args)} -> {r.returncode}\n{r.output}"
    return str(r.output)


def test_cli_provider_register_assess_link_and_compliance_report(cli: Any, tmp_path: Path) -> None:
    _ok(cli, "init")
    _ok(cli, "data", "sources", "register", "bureau")
    _ok(cli, "provider", "register", "acme-bureau", "--kind", "data", "-d", "[red]bureau[/red]")
    look = cli.run("provider", "register", "acme_bureau", "--kind", "data")
    assert look.returncode != 0 and "look-alike" in look.output
    past = cli.run(
        "provider",
        "assess",
        "acme-bureau",
        "--data-sent",
        "personal",
        "--reviewed",
        _day(-400),
        "--expires",
        _day(-5),
        "--risk",
        "low",
    )
    assert past.returncode == 2 and "already past" in past.output
    _ok(
        cli,
        "provider",
        "assess",
        "acme-bureau",
        "--data-sent",
        "personal,financial",
        "--dpa",
        "--reviewed",
        _day(-3),
        "--expires",
        _day(362),
        "--risk",
        "medium",
        "--certifications",
        "ISO 27001, SOC 2 Type II",
    )
    _ok(cli, "provider", "link", "acme-bureau", "--source", "bureau")
    shown = json.loads(_ok(cli, "provider", "show", "acme-bureau", "--json"))
    assert shown["status"] == "current" and shown["description"] == "[red]bureau[/red]"
    assert shown["links"][0]["target"] == "default/bureau"
    assert "[red]bureau[/red]" in _ok(cli, "provider", "show", "acme-bureau")  # markup as text
    out = tmp_path / "reports"
    r = cli.run("compliance", "report", "--framework", "gdpr", "--out", str(out))
    assert r.returncode == 1, r.output  # transport_security fails: no TLS in this workspace
    doc = json.loads((out / "compliance-gdpr.json").read_text())
    art30 = next(c for c in doc["controls"] if c["id"] == "Art. 30")
    assert art30["status"] == "pass"
    art32 = next(c for c in doc["controls"] if c["id"] == "Art. 32")
    tls = next(k for k in art32["checks"] if k["check"] == "transport_security")
    assert art32["status"] == "fail" and tls["remedy"]
    assert (out / "compliance-gdpr.html").read_text().startswith("<!doctype html>")
    unknown = cli.run("compliance", "report", "--framework", "sox")
    assert unknown.returncode == 2 and "use one of: eu-ai-act, gdpr, hipaa, soc2" in unknown.output
    ext = tmp_path / "extra.yaml"
    ext.write_text(
        "version: 1\nframeworks:\n  gdpr:\n    controls:\n"
        "      - {id: Art. 28, title: Processors, checks: [dpa_signed]}\n"
    )
    refused = cli.run("compliance", "report", "-f", "gdpr", "--catalogue", str(ext))
    assert refused.returncode == 2 and "unknown check 'dpa_signed'" in refused.output
    ext.write_text(
        "version: 1\nframeworks:\n  gdpr:\n    controls:\n"
        "      - {id: Art. 28, title: Processors, checks: [providers_assessed]}\n"
    )
    merged = json.loads(_ok(cli, "compliance", "catalogue", "--catalogue", str(ext), "--json"))
    assert "Art. 28" in [c["id"] for c in merged["frameworks"]["gdpr"]["controls"]]
