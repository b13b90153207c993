"""Summary figures of the poisoning benchmark against issue 10's "done when".

``summary_values`` turns the per-dataset tallies of ``bench/poisoning.py`` into
the dotted results ``bench/collect.py`` reads (one results block in
docs/bench/poisoning.md), so the summary in docs/benchmarks.md is computed from
the run, never written by hand:

- clean false quarantines: the worst dataset's rate and the worst Wilson upper bound;
- duplicated-and-flipped, backdoor and favourable-shift batches quarantined *by a
  poisoning check* (every rate, and rates of 5 % and more);
- 5 % random and targeted flips on datasets with at least 1,000 trusted rows: how
  many (dataset, attack) cells meet all three targets, the lowest share of batches
  caught by a poisoning check, the lowest mean row recall and precision (a cell
  naming no row counts as precision 0);
- against the day-one assembly and Datalab: cells compared and cells where a baseline
  is strictly better (clean false-quarantine rate; per attack and rate: batches caught,
  row recall, row precision).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from poisoning_systems import Tally, wilson

STRONG = ("dup_flip", "backdoor", "favourable_shift")
FLIPS = ("random_flips", "targeted_flips")
#: the flip targets apply to tables with at least this many trusted rows
FLIP_TABLE_ROWS = 1_000


def _mean(values: list[float] | None) -> float | None:
    return None if not values else float(np.mean(values))


def _cells(bastion: Tally, other: Tally, keys: list[str]) -> tuple[int, int]:
    """(cells compared, cells where ``other`` is strictly better than Bastion)."""
    compared = lost = 0
    b_rate = bastion.clean_quarantined / max(bastion.clean, 1)
    o_rate = other.clean_quarantined / max(other.clean, 1)
    compared, lost = 1, int(o_rate < b_rate)
    for key in keys:
        n = bastion.attacked.get(key, 0)
        if not n:
            continue
        compared += 3
        lost += int(other.caught.get(key, 0) > bastion.caught_poisoning.get(key, 0))
        lost += int((_mean(other.recall.get(key)) or 0.0) > (_mean(bastion.recall.get(key)) or 0.0))
        lost += int(
            (_mean(other.precision.get(key)) or 0.0) > (_mean(bastion.precision.get(key)) or 0.0)
        )
    return compared, lost


def summary_values(
    results: Mapping[str, Mapping[str, object]], attacks: list[str], rates: list[float], seeds: int
) -> dict[str, float | int | str]:
    """The dotted figures of one run (see the module docstring)."""
    keys = [f"{k}@{r:g}" for k in attacks for r in rates]
    fq_max = fq_upper = 0.0
    strong = strong_caught = strong5 = strong5_caught = 0
    flip_share, flip_recall, flip_precision = 1.0, 1.0, 1.0
    flip_cells = flip_met = 0
    compared = lost = 0
    for tallies in results.values():
        bastion = tallies["bastion"]
        assert isinstance(bastion, Tally)
        fq_max = max(fq_max, bastion.clean_quarantined / max(bastion.clean, 1))
        fq_upper = max(fq_upper, wilson(bastion.clean_quarantined, bastion.clean)[1])
        for key in keys:
            kind, rate = key.split("@")
            n, caught = bastion.attacked.get(key, 0), bastion.caught_poisoning.get(key, 0)
            if kind in STRONG:
                strong, strong_caught = strong + n, strong_caught + caught
                if float(rate) >= 0.05:
                    strong5, strong5_caught = strong5 + n, strong5_caught + caught
        meta = tallies["_meta"]
        assert isinstance(meta, Tally)
        if meta.rows[0] >= FLIP_TABLE_ROWS:
            for kind in FLIPS:
                key = f"{kind}@0.05"
                n = bastion.attacked.get(key, 0)
                if not n:
                    continue
                share = bastion.caught_poisoning.get(key, 0) / n
                recall = _mean(bastion.recall.get(key)) or 0.0
                precision = _mean(bastion.precision.get(key)) or 0.0
                flip_cells += 1
                flip_met += int(share >= 0.9 and recall >= 0.8 and precision >= 0.5)
                flip_share = min(flip_share, share)
                flip_recall = min(flip_recall, recall)
                flip_precision = min(flip_precision, precision)
        for gate in ("dayone", "datalab"):
            other = tallies.get(gate)
            if isinstance(other, Tally):
                c, w = _cells(bastion, other, keys)
                compared, lost = compared + c, lost + w
    return {
        "poisoning.datasets": len(results),
        "poisoning.seeds": seeds,
        "poisoning.clean_fq_max": round(fq_max, 4),
        "poisoning.clean_fq_max_upper95": round(fq_upper, 4),
        "poisoning.strong_batches": strong,
        "poisoning.strong_caught": strong_caught,
        "poisoning.strong_batches_5pct": strong5,
        "poisoning.strong_caught_5pct": strong5_caught,
        "poisoning.flip5_cells": flip_cells,
        "poisoning.flip5_cells_met": flip_met,
        "poisoning.flip5_min_caught_share": round(flip_share, 4),
        "poisoning.flip5_min_recall": round(flip_recall, 4),
        "poisoning.flip5_min_precision": round(flip_precision, 4),
        "poisoning.baseline_cells": compared,
        "poisoning.baseline_cells_lost": lost,
    }


__all__ = ["summary_values"]
