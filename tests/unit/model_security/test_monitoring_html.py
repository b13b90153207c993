"""The HTML drift page: valid, self-contained, one chart per feature, escaped."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from bastion.model_security.monitoring import (
    DriftReference,
    DriftReport,
    Task,
    compute_metrics,
    detect_drift,
    performance_decay,
    render_html,
)


class _Collector(HTMLParser):
    """Counts tags, records attributes and checks every opened element is closed."""

    VOID = {"meta", "br", "img", "input", "link", "hr", "rect"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.charts: list[str] = []
        self.cards: list[str] = []
        self.tags: dict[str, int] = {}
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        attr = dict(attrs)
        if tag == "svg" and attr.get("class") == "chart":
            self.charts.append(attr.get("aria-label") or "")
        if tag == "section":
            self.cards.append(attr.get("data-column") or "")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _frame(n: int, seed: int, *, shift: float = 0.0, home: list[str] | None = None) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame({
        "income": rng.normal(50_000 * (1 + shift), 8_000, n),
        "age": rng.integers(18, 80, n),
        "home": rng.choice(home or ["rent", "own", "mortgage"], n),
        "score": rng.random(n) ** (1 + shift * 4),
    })


@pytest.fixture(scope="module")
def report() -> DriftReport:
    reference = DriftReference.from_frame(_frame(3000, 0), ["income", "age", "home"],
                                          prediction_column="score")
    return detect_drift(reference, _frame(2000, 1, shift=0.2))


def _parse(page: str) -> _Collector:
    collector = _Collector()
    collector.feed(page)
    collector.close()
    return collector


def test_html_page_parses_with_one_chart_per_feature(report: DriftReport, tmp_path: Path) -> None:
    path = tmp_path / "drift.html"
    path.write_text(render_html(report), encoding="utf-8")
    page = _parse(path.read_text(encoding="utf-8"))
    assert page.errors == [] and page.stack == []
    assert len(page.charts) == len(report.features) + 1  # + the prediction
    assert page.cards == ["score", "income", "age", "home"]
    text = " ".join(page.text)
    assert "Kolmogorov" in text and "chi-square" in text  # the reasons are shown
    assert page.tags["rect"] > 10


def test_html_page_is_self_contained(report: DriftReport) -> None:
    page = render_html(report)
    assert "<script" not in page.lower()
    urls = re.findall(r"(?:src|href)\s*=\s*['\"]([^'\"]+)", page)
    assert all(u.startswith("#") for u in urls), urls
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_html_shows_the_decay_table(report: DriftReport) -> None:
    ref = compute_metrics([0, 1] * 50, [0, 1] * 50, Task.BINARY)
    decay = performance_decay(ref, [0, 1] * 50, [1, 1] * 50, Task.BINARY)
    page = _parse(render_html(report, decay=decay))
    assert page.errors == []
    assert "Performance decay" in " ".join(page.text)


def test_attack_html_injection_via_category_label_is_escaped() -> None:
    evil = "<script>alert(1)</script>"
    evil_attr = "\"><img src=x onerror=alert(2)>"
    reference = DriftReference.from_frame(_frame(500, 2), ["income", "home"])
    batch = _frame(500, 3, home=["rent", evil, evil_attr]).rename({"home": "home"})
    page_text = render_html(detect_drift(reference, batch), title="<b>t</b>")
    assert "<script>" not in page_text and "<img" not in page_text and "<b>t</b>" not in page_text
    page = _parse(page_text)
    assert page.errors == [] and page.tags.get("script") is None and page.tags.get("img") is None
    assert evil in " ".join(page.text)  # shown as text, not run
