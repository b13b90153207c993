"""Render a compliance report as one self-contained HTML page (and JSON).

Every value — provider names, descriptions, catalogue text an officer wrote —
goes through Jinja2's autoescaping: the page has no script, loads nothing
(``default-src 'none'``) and shows names as text, never markup.

Example::

    Path("soc2.html").write_text(render_report_html(report))
"""

from __future__ import annotations

from jinja2 import Environment

from bastion.governance.compliance import ComplianceReport, report_json

_HTML = Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{{ r.title }}: compliance evidence for {{ r.project }}</title>
<style>body{font-family:sans-serif;max-width:70em;margin:2em auto;color:#222}
td,th{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
.pass{color:#070}.fail{color:#b00}.not-applicable{color:#777}
.control{border:1px solid #ccc;border-radius:4px;padding:.5em 1em;margin:1em 0}
code{font-size:90%}</style></head><body>
<h1>{{ r.title }}</h1>
<p>Project <strong>{{ r.project }}</strong>; generated {{ r.generated_at }} by {{ r.generated_by }};
catalogue sha256 <code>{{ r.catalogue_sha256 }}</code> ({{ r.catalogue_sources|join(', ') }}).</p>
<p>Controls: <span class="pass">{{ counts['pass'] }} pass</span>,
<span class="fail">{{ counts['fail'] }} fail</span>,
<span class="not-applicable">{{ counts['not-applicable'] }} not applicable</span>.</p>
<table><tr><th>control</th><th>title</th><th>status</th></tr>
{% for c in r.controls %}<tr><td><a href="#c{{ loop.index }}">{{ c.id }}</a></td>
<td>{{ c.title }}</td><td class="{{ c.status.value }}">{{ c.status.value }}</td></tr>
{% endfor %}</table>
{% for c in r.controls %}<div class="control" id="c{{ loop.index }}">
<h2>{{ c.id }}: {{ c.title }} — <span class="{{ c.status.value }}">{{ c.status.value }}</span></h2>
<p>{{ c.description }}</p>
{% for k in c.checks %}<h3><code>{{ k.name }}</code>:
<span class="{{ k.status.value }}">{{ k.status.value }}</span></h3>
<p>{{ k.summary }}</p>
{% if k.remedy %}<p><strong>What to do:</strong> {{ k.remedy }}</p>{% endif %}
{% if k.evidence %}<table><tr><th>evidence</th><th>audit entry</th><th>sha256</th><th>date</th></tr>
{% for e in k.evidence %}<tr><td>{{ e.what }}</td>
<td>{{ e.audit_seq if e.audit_seq is not none else '' }}</td>
<td><code>{{ e.sha256 or '' }}</code></td><td>{{ e.at or '' }}</td></tr>
{% endfor %}</table>{% endif %}
{% endfor %}</div>
{% endfor %}
<p>Evidence is what Bastion's own records show (audit log entries, digests, dates); a
control may require more than software can show (policies, training, contracts).</p>
</body></html>
"""
)


def render_report_html(report: ComplianceReport) -> str:
    return _HTML.render(r=report, counts=report.counts())


def render_report_json(report: ComplianceReport) -> str:
    return report_json(report)


__all__ = ["render_report_html", "render_report_json"]
