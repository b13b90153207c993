"""docs/benchmarks.md is generated: its summary is computed from the sections' results.

``bench/collect.py`` derives each summary figure and verdict from the results
blocks in docs/bench/*.md; a hand edit of docs/benchmarks.md (or a section
changed without regenerating) fails the first test.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _collect() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_collect", ROOT / "bench" / "collect.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _copy_docs(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "docs" / "bench", tmp_path / "docs" / "bench")
    return tmp_path


def _summary_row(text: str, target_start: str) -> str:
    (row,) = [line for line in text.splitlines() if line.startswith(f"| {target_start}")]
    return row


def test_benchmarks_md_is_exactly_what_collect_generates_from_the_sections() -> None:
    committed = (ROOT / "docs" / "benchmarks.md").read_text()
    assert _collect().render(ROOT) == committed, (
        "docs/benchmarks.md differs from what bench/collect.py generates from docs/bench/*.md; "
        "edit the sections (or re-run the bench), then run python bench/collect.py"
    )


def test_summary_verdict_follows_the_figures_in_the_section(tmp_path: Path) -> None:
    collect = _collect()
    root = _copy_docs(tmp_path)
    section = root / "docs" / "bench" / "drift.md"
    text = section.read_text()
    assert "| `drift.max_s` | 3.82 |" in text
    row = _summary_row(collect.render(root), "drift")
    assert "3.82 s" in row and row.endswith("| met |")

    section.write_text(text.replace("| `drift.max_s` | 3.82 |", "| `drift.max_s` | 12.5 |"))
    row = _summary_row(collect.render(root), "drift")
    assert "12.50 s" in row and row.endswith("| **not met** |")


def test_a_target_no_section_measures_is_shown_as_not_measured(tmp_path: Path) -> None:
    collect = _collect()
    root = _copy_docs(tmp_path)
    section = root / "docs" / "bench" / "drift.md"
    section.write_text(section.read_text().replace("| `drift.max_s` | 3.82 |\n", ""))
    row = _summary_row(collect.render(root), "drift")
    assert row.endswith("| not measured |") and "`drift.max_s`" in row


def test_poisoning_summary_verdicts_follow_the_poisoning_section(tmp_path: Path) -> None:
    # issue 10's targets are computed from the results block bench/poisoning.py writes
    collect = _collect()
    root = _copy_docs(tmp_path)
    section = root / "docs" / "bench" / "poisoning.md"
    text = section.read_text()
    row = _summary_row(collect.render(root), "poisoning, 7 unseen tables")
    assert "not measured" not in row
    line = next(x for x in text.splitlines() if x.startswith("| `poisoning.clean_fq_max` |"))
    section.write_text(text.replace(line, "| `poisoning.clean_fq_max` | 0.05 |"))
    row = _summary_row(collect.render(root), "poisoning, 7 unseen tables")
    assert "5.0 %" in row and row.endswith("| **not met** |")
    line = next(x for x in text.splitlines() if x.startswith("| `poisoning.clean_fq_max` |"))
    section.write_text(text.replace(line, "| `poisoning.clean_fq_max` | 0.01 |"))
    row = _summary_row(collect.render(root), "poisoning, 7 unseen tables")
    assert "1.0 %" in row and row.endswith("| met |")
