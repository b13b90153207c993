"""Render a model card as Markdown, HTML or JSON.

Text written by people is data, never markup: in HTML every value goes through
Jinja2's autoescaping; in Markdown ``<``, ``>`` and ``&`` become entities and
Markdown's own syntax characters are backslash-escaped, and line breaks are
folded, so a field cannot open a tag, a link, an image or a new block.

Example::

    Path("card.html").write_text(render_html(card))
"""

from __future__ import annotations

import html
import json
import re

from jinja2 import Environment

from bastion.core.canonical import JSON
from bastion.governance.values import ModelCard

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")


def md_text(value: object) -> str:
    """``value`` as inert Markdown text (no HTML, links, emphasis or new blocks)."""
    text = " ".join(str(value).split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def evidence_rows(card: ModelCard) -> list[tuple[str, str, str, str]]:
    """(evaluation dataset, metric group, name, value) from verified statements only."""
    rows: list[tuple[str, str, str, str]] = []
    for e in card.facts.evaluations:
        if not e.verified:
            continue
        metrics = e.result.get("metrics")
        if isinstance(metrics, dict):
            rows += [(e.dataset_version, "metric", k, str(v)) for k, v in sorted(metrics.items())]
        for f in _list(e.result.get("fairness")):
            attr = f.get("sensitive", f.get("attribute", "?"))
            for k in ("demographic_parity_difference", "equalized_odds_difference"):
                if k in f:
                    rows.append((e.dataset_version, f"fairness ({attr})", k, str(f[k])))
        robustness = e.result.get("robustness")
        for a in _list(robustness.get("attacks") if isinstance(robustness, dict) else None):
            rows.append(
                (e.dataset_version, "robustness", str(a.get("attack")),
                 f"success rate {a.get('success_rate')} ({a.get('status')})")
            )  # fmt: skip
    return rows


def _list(value: JSON) -> list[dict[str, JSON]]:
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []


def render_json(card: ModelCard) -> str:
    return json.dumps(card.to_dict(), indent=2, sort_keys=True)


def render_markdown(card: ModelCard) -> str:
    f = card.facts
    out = [f"# Model card: {md_text(f.project)}/{md_text(f.model)}", ""]
    if card.card is None:
        out += ["*No card written yet* (bastion model card\\-set MODEL@V FILE\\.yaml)", ""]
    else:
        c = card.card
        out += [
            f"Card version {c.card_version} by {md_text(c.created_by)} at {md_text(c.created_at)}"
            f" (sha256 {c.spec_sha256})",
            "",
            f"**Risk tier:** {md_text(c.spec.risk_tier.value)}",
            "",
            "## Intended use",
            "",
            md_text(c.spec.intended_use),
            "",
        ]
        for title, items in (
            ("Out-of-scope uses", c.spec.out_of_scope_uses),
            ("Owners", c.spec.owners),
            ("Limitations", c.spec.limitations),
        ):
            out += [f"## {title}", "", *(f"- {md_text(i)}" for i in items or ("none",)), ""]
    out += [
        "## Facts (from Bastion's records and signed evidence)",
        "",
        f"- Framework: {md_text(f.framework)}; stage: {md_text(f.stage)}",
        f"- Root digest: sha256:{f.root_digest}",
        f"- Signer: {md_text(f.signer_identity)} (key {md_text(f.signer_key_id)}),"
        f" signed at {md_text(f.signed_at)}",
        f"- Scan: {md_text(f.scan_verdict)} ({f.scan_findings} findings)",
        f"- Registered by {md_text(f.registered_by)} at {md_text(f.registered_at)}",
        "",
        "### Training data",
        "",
    ]
    out += [
        f"- {md_text(t.dataset_version)} sha256:{md_text(t.sha256)}"
        f" (sources: {md_text(', '.join(t.sources) or 'none recorded')})"
        for t in f.training_data
    ] or ["- none recorded"]
    out += ["", "### Evaluations", ""]
    for e in f.evaluations:
        state = "verified" if e.verified else f"UNVERIFIED: {md_text(e.problem)}"
        out.append(
            f"- {md_text(e.dataset_version)}, statement sha256:{e.statement_sha256}: {state}"
        )
    if not f.evaluations:
        out.append("- none")
    out += ["", "### Approvals and waivers", ""]
    for r in f.release:
        state = "valid" if r.valid else f"NOT COUNTED: {md_text(r.note)}"
        out.append(
            f"- {md_text(r.kind)} by {md_text(r.by)} at {md_text(r.at)} ({md_text(r.subject)}, "
            f"until {md_text(r.expires_at)}): {md_text(r.reason)}; statement "
            f"sha256:{md_text(r.statement_sha256)}; {state}"
        )
    if not f.release:
        out.append("- none")
    rows = evidence_rows(card)
    if rows:
        out += ["", "| dataset | kind | name | value |", "|---|---|---|---|"]
        out += [f"| {' | '.join(md_text(x) for x in row)} |" for row in rows]
    out += ["", f"Python packages: {len(f.packages.items)} ({md_text(f.packages.source)})", ""]
    return "\n".join(out)


_HTML = Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Model card {{ f.project }}/{{ f.model }}</title>
<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{padding:.2em .6em;
border-bottom:1px solid #ddd;text-align:left}.bad{color:#b00}</style></head><body>
<h1>Model card: {{ f.project }}/{{ f.model }}</h1>
{% if c %}<p>Card version {{ c.card_version }} by {{ c.created_by }} at {{ c.created_at }}
(sha256 {{ c.spec_sha256 }})</p>
<p><strong>Risk tier:</strong> {{ c.spec.risk_tier.value }}</p>
<h2>Intended use</h2><p>{{ c.spec.intended_use }}</p>
{% for title, items in sections %}<h2>{{ title }}</h2><ul>
{% for i in items %}<li>{{ i }}</li>{% else %}<li>none</li>{% endfor %}</ul>{% endfor %}
{% else %}<p><em>No card written yet.</em></p>{% endif %}
<h2>Facts (from Bastion's records and signed evidence)</h2><ul>
<li>Framework: {{ f.framework }}; stage: {{ f.stage }}</li>
<li>Root digest: sha256:{{ f.root_digest }}</li>
<li>Signer: {{ f.signer_identity }} (key {{ f.signer_key_id }}), signed at {{ f.signed_at }}</li>
<li>Scan: {{ f.scan_verdict }} ({{ f.scan_findings }} findings)</li>
<li>Registered by {{ f.registered_by }} at {{ f.registered_at }}</li></ul>
<h3>Training data</h3><ul>{% for t in f.training_data %}
<li>{{ t.dataset_version }} sha256:{{ t.sha256 }} (sources: {{ t.sources|join(', ') or
'none recorded' }})</li>{% else %}<li>none recorded</li>{% endfor %}</ul>
<h3>Evaluations</h3><ul>{% for e in f.evaluations %}
<li>{{ e.dataset_version }}, statement sha256:{{ e.statement_sha256 }}:
{% if e.verified %}verified{% else %}<span class="bad">UNVERIFIED: {{ e.problem }}</span>
{% endif %}</li>{% else %}<li>none</li>{% endfor %}</ul>
<h3>Approvals and waivers</h3><ul>{% for r in f.release %}
<li>{{ r.kind }} by {{ r.by }} at {{ r.at }} ({{ r.subject }}, until {{ r.expires_at }}):
{{ r.reason }}; statement sha256:{{ r.statement_sha256 }};
{% if r.valid %}valid{% else %}<span class="bad">NOT COUNTED: {{ r.note }}</span>{% endif %}
</li>{% else %}<li>none</li>{% endfor %}</ul>
{% if rows %}<table><tr><th>dataset</th><th>kind</th><th>name</th><th>value</th></tr>
{% for r in rows %}<tr>{% for x in r %}<td>{{ x }}</td>{% endfor %}</tr>{% endfor %}
</table>{% endif %}
<p>Python packages: {{ f.packages.items|length }} ({{ f.packages.source }})</p>
</body></html>
"""
)


def render_html(card: ModelCard) -> str:
    c = card.card
    sections = (
        [
            ("Out-of-scope uses", c.spec.out_of_scope_uses),
            ("Owners", c.spec.owners),
            ("Limitations", c.spec.limitations),
        ]
        if c
        else []
    )
    return _HTML.render(f=card.facts, c=c, sections=sections, rows=evidence_rows(card))


__all__ = ["evidence_rows", "md_text", "render_html", "render_json", "render_markdown"]
