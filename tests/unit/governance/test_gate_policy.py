"""The release-policy parser and CEL compiler (no workspace): every refusal names the
line and the reason; the default policy compiles; docs list exactly the facts."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.governance.errors import ReleasePolicyInvalid
from bastion.governance.gate_policy import (
    DEFAULT_POLICY,
    default_policy,
    fact_names,
    parse_policy,
    sample_facts,
)


def test_default_policy_compiles_with_ten_rules_and_passes_on_good_facts() -> None:
    p = default_policy()
    assert [r.name for r in p.rules] == [
        "signature", "scan", "training_data", "evaluation", "fairness", "robustness",
        "approvals", "card", "providers", "drift",
    ]  # fmt: skip
    assert p.required == {"minimal": 1, "limited": 1, "high": 2}
    facts = sample_facts()
    facts["providers"] = {"unassessed": []}
    facts["drift"] = {"open_alerts": 0, "checked": True}
    facts["approvals"] = {**facts["approvals"], "required": 1, "rejections": 0}  # type: ignore[dict-item]
    facts["evaluation"] = {**facts["evaluation"], "accuracy": 0.9, "fairness_gap": 0.1,  # type: ignore[dict-item]
                           "attack_success_rate": 0.2}  # fmt: skip
    assert all(r.evaluate(facts, p.thresholds) for r in p.rules)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("expr: facts.scan.clean", "expr: facts.scan.clean ||",
         "line 17: rule 'scan' does not compile"),
        ("expr: facts.scan.clean", "expr: facts.scan.clean.deep",
         "unknown fact 'facts.scan.clean.deep'"),
        ("expr: facts.scan.clean", "expr: facts.nope", "unknown fact 'facts.nope'"),
        ("expr: facts.scan.clean", "expr: fact.scan.clean", "names 'fact'"),
        ("expr: facts.scan.clean", "expr: facts.scan.verdict", "not a boolean"),
        ("thresholds.min_accuracy", "thresholds.min_recall", "threshold 'min_recall'"),
        ("min_accuracy: 0.6", "min_accuracy: -0.1", "line 8: thresholds.min_accuracy = -0.1"),
        ("min_accuracy: 0.6", "min_accuracy: yes", "must be a number"),
        ("min_accuracy: 0.6", "min_recall: 0.6", "unknown threshold 'min_recall'"),
        ("high: 2", "high: 11", "approvals.required.high = 11"),
        ("high: 2", "high: 2, unacceptable: 5", "never approved"),
        ("max_days: 30", "max_days: 365", "waivers.max_days = 365"),
        ("- name: scan", "- name: signature", "repeated rule name 'signature'"),
        ("rules:", "rulez:", "unknown key 'rulez'"),
    ],
)  # fmt: skip
def test_policy_refusals_name_the_line_and_the_reason(old: str, new: str, message: str) -> None:
    assert old in DEFAULT_POLICY
    with pytest.raises(ReleasePolicyInvalid) as e:
        parse_policy(DEFAULT_POLICY.replace(old, new, 1))
    assert message in e.value.message
    assert "previous policy stays active" in (e.value.hint or "")


def test_macros_may_bind_their_own_variables() -> None:
    text = DEFAULT_POLICY.replace(
        "expr: size(facts.providers.unassessed) == 0",
        "expr: facts.providers.unassessed.all(p, p.startsWith('internal-'))",
    )
    assert parse_policy(text).rule("providers") is not None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_a_policy_or_a_clear_refusal(text: str) -> None:
    try:
        parse_policy(text)
    except ReleasePolicyInvalid as e:
        assert e.message.startswith("release policy refused")


def test_docs_list_exactly_the_facts() -> None:
    doc = (Path(__file__).parents[3] / "docs" / "governance.md").read_text()
    listed = {line.split("`")[1] for line in doc.splitlines() if line.startswith("| `facts.")}
    assert listed == {name for name, _ in fact_names()}
