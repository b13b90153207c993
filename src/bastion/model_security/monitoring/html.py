"""A self-contained HTML page for a drift report: inline CSS and SVG, no scripts, no CDN.

Each monitored column gets a card with a horizontal bar chart (reference vs
current share per bin or category), the statistic, the PSI, the null rates and
the reason its method was chosen.  Every piece of data (column names, category
labels) is HTML-escaped: labels come from untrusted batches.

Example::

    from pathlib import Path
    from bastion.model_security.monitoring import render_html
    Path("drift.html").write_text(render_html(report, decay=decay_report), encoding="utf-8")
"""

from __future__ import annotations

from html import escape

from bastion.data_security.stats import ColumnDrift, Histogram
from bastion.model_security.monitoring.decay import DecayReport
from bastion.model_security.monitoring.report import DriftReport, DriftVerdict

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1f2933;
background:#f7f8fa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0}
.verdict{display:inline-block;padding:4px 10px;border-radius:4px;font-weight:600;color:#fff}
.v-no_drift{background:#2f855a}.v-feature_drift{background:#b7791f}
.v-dataset_drift{background:#c53030}
table{border-collapse:collapse;margin:12px 0;background:#fff}
td,th{border:1px solid #d9dee5;padding:4px 8px;font-size:13px;text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:14px}
.card{box-sizing:border-box;background:#fff;border:1px solid #d9dee5;border-radius:6px;
padding:12px;width:610px}
.card.drift{border-left:5px solid #c53030}.card.ok{border-left:5px solid #2f855a}
.card.untested{border-left:5px solid #718096}
.badge{font-size:12px;font-weight:600;padding:2px 6px;border-radius:3px;color:#fff;
margin-left:6px}.b-drift{background:#c53030}.b-ok{background:#2f855a}.b-untested{background:#718096}
.meta{font-size:12px;color:#52606d;margin:6px 0}.reason{font-size:12px;color:#3e4c59;
margin:6px 0 0}
"""

_ROW = 22
_LABEL_W = 170
_BAR_W = 340
_WIDTH = _LABEL_W + _BAR_W + 70


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or value != value:  # None or NaN
        return "n/a"
    return f"{value:.{digits}g}"


def _chart(hist: Histogram, drifted: bool, title: str) -> str:
    """Horizontal grouped bars: grey reference, blue (or red when drifted) current."""
    top = max([*hist.reference, *hist.current, 1e-12])
    colour = "#c53030" if drifted else "#3182ce"
    height = 24 + _ROW * len(hist.labels)
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" '
        f'height="{height}" viewBox="0 0 {_WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<rect x="{_LABEL_W}" y="4" width="10" height="8" fill="#a0aec0"/>'
        f'<text x="{_LABEL_W + 14}" y="12" font-size="11">reference</text>'
        f'<rect x="{_LABEL_W + 90}" y="4" width="10" height="8" fill="{colour}"/>'
        f'<text x="{_LABEL_W + 104}" y="12" font-size="11">current</text>',
    ]
    for i, (label, ref, cur) in enumerate(zip(hist.labels, hist.reference, hist.current,
                                              strict=True)):
        y = 20 + i * _ROW
        short = label if len(label) <= 26 else label[:25] + "…"
        parts.append(f'<text x="{_LABEL_W - 6}" y="{y + 12}" font-size="11" '
                     f'text-anchor="end"><title>{escape(label)}</title>{escape(short)}</text>')
        for j, (share, fill) in enumerate(((ref, "#a0aec0"), (cur, colour))):
            w = max(share / top * _BAR_W, 0.0)
            by = y + 2 + j * 9
            parts.append(f'<rect x="{_LABEL_W}" y="{by}" width="{w:.1f}" height="8" '
                         f'fill="{fill}"/><text x="{_LABEL_W + w + 4:.1f}" y="{by + 8}" '
                         f'font-size="9" fill="#52606d">{share:.1%}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _card(f: ColumnDrift, anchor: str, prefix: str = "") -> str:
    state = "untested" if not f.tested else ("drift" if f.drifted else "ok")
    badge = {"untested": "UNTESTED", "drift": "DRIFT", "ok": "OK"}[state]
    p = "" if f.p_value is None else f", p = {_fmt(f.p_value, 3)}"
    meta = (f"{escape(f.method.value)} statistic = {_fmt(f.statistic)}{p} · effect "
            f"{_fmt(f.effect)} · PSI {_fmt(f.psi, 3)} ({escape(f.psi_level.value)}) · JS "
            f"{_fmt(f.jensen_shannon, 3)} · n = {f.n_reference} / {f.n_current}")
    nulls = (f"null rate {f.nulls.reference_rate:.2%} → {f.nulls.current_rate:.2%}"
             + (" (DRIFT)" if f.nulls.drifted else ""))
    extra = ""
    if f.new_categories:
        extra = (f"<div class='meta'>new categories ({f.new_category_share:.1%} of rows): "
                 f"{escape(', '.join(f.new_categories))}</div>")
    return (
        f'<section class="card {state}" id="{anchor}" data-column="{escape(f.name)}">'
        f"<h2>{escape(prefix + f.name)}<span class='badge b-{state}'>{badge}</span></h2>"
        f"<div class='meta'>{meta}</div><div class='meta'>{nulls}</div>{extra}"
        f"{_chart(f.histogram, f.drifted, f'{prefix}{f.name}: reference vs current')}"
        f"<p class='reason'><b>Why {escape(f.method.value)}:</b> {escape(f.reason)}</p>"
        "</section>"
    )


def _summary_table(report: DriftReport) -> str:
    rows = ["<table><tr><th>column</th><th>verdict</th><th>method</th><th>statistic</th>"
            "<th>p-value</th><th>PSI</th><th>null rate</th></tr>"]
    ordered = sorted(enumerate(report.features), key=lambda t: (not t[1].drifted, t[1].name))
    for i, f in ordered:
        verdict = "untested" if not f.tested else ("DRIFT" if f.drifted else "ok")
        rows.append(
            f"<tr><td><a href='#col-{i}'>{escape(f.name)}</a></td><td>{verdict}</td>"
            f"<td>{escape(f.method.value)}</td><td>{_fmt(f.statistic)}</td>"
            f"<td>{_fmt(f.p_value, 3)}</td><td>{_fmt(f.psi, 3)}</td>"
            f"<td>{f.nulls.reference_rate:.1%} → {f.nulls.current_rate:.1%}</td></tr>")
    rows.append("</table>")
    return "".join(rows)


def _decay_section(decay: DecayReport) -> str:
    rows = "".join(
        f"<tr><td>{escape(m.name)}</td><td>{m.reference:.4f}</td><td>{m.current:.4f}</td>"
        f"<td>{m.change:+.4f}</td><td>{m.threshold:g}</td>"
        f"<td>{'DECAYED' if m.decayed else 'ok'}</td></tr>" for m in decay.metrics)
    notes = "".join(f"<div class='meta'>{escape(n)}</div>" for n in decay.notes)
    head = "Performance decay" if decay.decayed else "Performance stable"
    return (f"<h2 id='decay'>{head} ({escape(decay.task.value)}, {decay.n} labelled rows)</h2>"
            "<table><tr><th>metric</th><th>reference</th><th>current</th><th>worse by</th>"
            f"<th>limit</th><th>verdict</th></tr>{rows}</table>{notes}")


def render_html(report: DriftReport, *, title: str = "Bastion drift report",
                decay: DecayReport | None = None) -> str:
    """The whole report as one HTML document (UTF-8 text, no external resources)."""
    verdict: DriftVerdict = report.verdict
    cards = []
    if report.prediction is not None:
        cards.append(_card(report.prediction, "prediction", "prediction: "))
    cards += [_card(f, f"col-{i}") for i, f in enumerate(report.features)]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f"<p><span class='verdict v-{verdict.value}'>{escape(report.headline())}</span></p>"
        f"<p class='meta'>dataset drift when ≥ {report.policy.drift_share:.0%} of features "
        f"drift; alpha {report.policy.thresholds.alpha:g}; computed in "
        f"{report.elapsed_seconds:.2f} s</p>"
        + _summary_table(report)
        + (_decay_section(decay) if decay is not None else "")
        + f"<div class='grid'>{''.join(cards)}</div></body></html>"
    )


__all__ = ["render_html"]
