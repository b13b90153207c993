"""Assemble docs/benchmarks.md from the fragments each bench writes to docs/bench/.

Usage: python bench/collect.py   (after running the benches you want refreshed)
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = [
    "foundation", "readers", "ingest_audit", "ingest_full", "poisoning",
    "scanning", "signing", "drift", "evaluation",
]
HEADER = """# Benchmarks

Every number below was measured by a script in `bench/`, on the machine named
in its section, with the comparison run side by side in the same run (ratios,
not just absolute times). Re-run a bench and then `python bench/collect.py` to
rebuild this page. The summary table is kept by hand from the sections below.

"""


def main() -> None:
    fragments = {p.stem: p for p in (ROOT / "docs" / "bench").glob("*.md")}
    names = [n for n in ORDER if n in fragments] + sorted(set(fragments) - set(ORDER))
    summary = ROOT / "docs" / "bench" / "_summary.md.in"
    parts = [HEADER]
    if summary.exists():
        parts.append(summary.read_text().strip() + "\n\n")
    for name in names:
        text = fragments[name].read_text().strip()
        parts.append(text + "\n\n")
    out = ROOT / "docs" / "benchmarks.md"
    out.write_text("".join(parts).rstrip() + "\n")
    print(f"wrote {out} from {len(names)} fragments: {', '.join(names)}")


if __name__ == "__main__":
    main()
