"""Unit tests: assessment validation, look-alike keys, and the strict control catalogue."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.governance.compliance import CHECKS, ComplianceReport, ControlResult, control_status
from bastion.governance.compliance_catalogue import load_catalogue, shipped_text
from bastion.governance.compliance_checks import CheckOutcome, EvidenceItem, Status
from bastion.governance.compliance_render import render_report_html
from bastion.governance.errors import CatalogueInvalid, ProviderInvalid
from bastion.governance.provider_values import (
    AssessmentRequest,
    DataCategory,
    RiskRating,
    lookalike_key,
    validate_assessment,
)

TODAY = dt.date(2026, 12, 5)


def _req(
    reviewed: str = "2026-11-01",
    expires: str = "2027-11-01",
    risk: str = "Medium",
    data: tuple[str, ...] = ("personal",),
) -> AssessmentRequest:
    return AssessmentRequest(data, True, (" ISO 27001 ",), reviewed, expires, risk)


def test_valid_assessment_is_normalised() -> None:
    v = validate_assessment(_req(data=("Financial", "personal")), today=TODAY)
    assert v.risk is RiskRating.MEDIUM and v.certifications == ("ISO 27001",)
    assert v.data_sent == (DataCategory.FINANCIAL, DataCategory.PERSONAL)


@pytest.mark.parametrize(
    ("req", "why"),
    [
        (_req(expires="2026-12-05"), "already past"),
        (_req(expires="2026-10-01"), "not after the review date"),
        (_req(reviewed="2026-12-06", expires="2027-01-01"), "in the future"),
        (_req(reviewed="05/11/2026"), "not a date"),
        (_req(risk="severe"), "unknown risk rating"),
        (_req(data=("none", "personal")), "cannot be combined"),
        (
            AssessmentRequest(
                ("personal",), True, ("ISO\u202e27001",), "2026-11-01", "2027-11-01", "low"
            ),
            "U\\+202E",
        ),
    ],
    ids=[
        "expiry-today",
        "expiry-before-review",
        "review-in-future",
        "not-a-date",
        "unknown-rating",
        "none-with-data",
        "bidi-override-in-certification",
    ],
)
def test_bad_assessment_is_refused(req: AssessmentRequest, why: str) -> None:
    with pytest.raises(ProviderInvalid, match=why):
        validate_assessment(req, today=TODAY)


@pytest.mark.parametrize("twin", ["OpenAI", "open-ai", "open_ai", "0penai", "openal", "open.a1"])
def test_lookalike_names_share_a_key(twin: str) -> None:
    assert lookalike_key(twin) == lookalike_key("openai")


def test_different_names_do_not_collide() -> None:
    assert lookalike_key("acme-bureau") != lookalike_key("acme-bank")


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,30}", fullmatch=True))
def test_lookalike_key_ignores_case_and_separators(name: str) -> None:
    assert lookalike_key(name) == lookalike_key(name.upper().replace("-", "_"))


def test_shipped_catalogue_names_only_known_checks_and_every_framework() -> None:
    cat = load_catalogue(known_checks=CHECKS)
    assert sorted(cat.frameworks) == ["eu-ai-act", "gdpr", "hipaa", "soc2"]
    ids = {n: [c.id for c in f.controls] for n, f in cat.frameworks.items()}
    assert ids["gdpr"] == ["Art. 5", "Art. 17", "Art. 25", "Art. 30", "Art. 32", "Art. 35"]
    assert ids["hipaa"] == ["§164.308"] + [f"§164.312({x})" for x in "abcde"]
    assert ids["soc2"] == ["CC6", "CC7", "CC8"]
    assert ids["eu-ai-act"] == [f"Art. {n}" for n in range(9, 16)]
    used = {c for f in cat.frameworks.values() for ctl in f.controls for c in ctl.checks}
    assert used == set(CHECKS)  # every check is cited by some control
    assert "frameworks:" in shipped_text()


def test_catalogue_digest_changes_with_an_extension() -> None:
    base = load_catalogue(known_checks=CHECKS)
    ext = load_catalogue("version: 1\nsettings: {max_global_admins: 1}\n", known_checks=CHECKS)
    assert base.sha256 != ext.sha256 and ext.settings.max_global_admins == 1


@pytest.mark.parametrize(
    ("ext", "why"),
    [
        ("version: 2\n", "version"),
        ("version: 1\nframeworks:\n  SOC2!:\n    title: x\n    controls: []\n", "not valid"),
        ("version: 1\nframeworks:\n  soc2:\n    title: Other title\n", "cannot change"),
        (
            "version: 1\nframeworks:\n  soc2:\n    controls:\n      - {id: '<x>', title: t, "
            "checks: [key_rotation]}\n",
            "control id",
        ),
        (
            "version: 1\nframeworks:\n  soc2:\n    controls:\n      - {id: CC9, title: t, "
            "checks: [key_rotation], owner: bob}\n",
            "unknown field",
        ),
        ("version: 1\nframeworks: [\n", "not valid YAML"),
    ],
    ids=[
        "future-version",
        "bad-framework-name",
        "retitled-framework",
        "markup-control-id",
        "unknown-control-field",
        "broken-yaml",
    ],
)
def test_bad_catalogue_is_refused(ext: str, why: str) -> None:
    with pytest.raises(CatalogueInvalid, match=why):
        load_catalogue(ext, known_checks=CHECKS)


def test_control_status_fail_beats_pass_beats_not_applicable() -> None:
    p, f, n = (CheckOutcome("x", s, "") for s in (Status.PASS, Status.FAIL, Status.NOT_APPLICABLE))
    assert control_status((p, n)) is Status.PASS
    assert control_status((p, f, n)) is Status.FAIL
    assert control_status((n, n)) is Status.NOT_APPLICABLE


def test_report_html_escapes_every_value() -> None:
    evil = '"><script>alert(1)</script>'
    check = CheckOutcome(
        "providers_assessed",
        Status.FAIL,
        f"provider {evil}",
        (EvidenceItem(evil, 7, "ab" * 32, evil),),
        f"fix {evil}",
    )
    report = ComplianceReport(
        "soc2",
        evil,
        evil,
        "2026-12-05T00:00:00+00:00",
        evil,
        "00" * 32,
        (evil,),
        (ControlResult(evil, evil, evil, Status.FAIL, (check,)),),
    )
    html = render_report_html(report)
    assert "<script>" not in html and html.count("&lt;script&gt;") >= 8


@pytest.mark.parametrize("bad", ["acme\x00bureau", "acme\u202ebureau", "x" * 501])
def test_provider_description_with_nul_bidi_or_too_long_is_refused(bad: str) -> None:
    from bastion.governance.provider_values import check_description

    with pytest.raises(ProviderInvalid, match="description"):
        check_description(bad)
