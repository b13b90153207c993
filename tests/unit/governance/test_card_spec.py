"""The card file parser is strict, and renderers treat every field as text."""

from __future__ import annotations

import pytest

from bastion.governance.card_spec import RiskTier, parse_card_yaml
from bastion.governance.errors import CardInvalid
from bastion.governance.render import md_text

GOOD = "intended_use: Score.\nowners: [a@x]\nrisk_tier: limited\n"


def test_card_spec_parses_and_keeps_text_verbatim() -> None:
    spec = parse_card_yaml(GOOD + "limitations: ['<i>x</i>']\n")
    assert spec.risk_tier is RiskTier.LIMITED and spec.limitations == ("<i>x</i>",)


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ("metrics: {auc: 0.99}\n", "unknown field 'metrics'"),
        ("signer: me\n", "unknown field 'signer'"),
    ],
)
def test_card_file_claiming_evidence_fields_is_refused(extra: str, says: str) -> None:
    with pytest.raises(CardInvalid, match=says):
        parse_card_yaml(GOOD + extra)


@pytest.mark.parametrize(
    "text",
    [
        "intended_use: x\nowners: [a]\nrisk_tier: extreme\n",  # not a tier
        "intended_use: 3\nowners: [a]\nrisk_tier: high\n",  # not text
        "intended_use: x\nowners: []\nrisk_tier: high\n",  # nobody owns it
        "- a list\n",
        "intended_use: [unclosed\n",
        "owners: [a]\nrisk_tier: high\n",  # missing intended use
    ],
)
def test_bad_card_files_are_refused_with_card_invalid(text: str) -> None:
    with pytest.raises(CardInvalid):
        parse_card_yaml(text)


def test_markdown_text_cannot_open_html_links_or_blocks() -> None:
    out = md_text("<script>x</script>\n# [a](javascript:b) ![i](u)")
    assert "<" not in out and "\n" not in out
    assert "](" not in out and "![" not in out
