"""Training-data poisoning detection at ingestion.

Pin a :class:`PoisoningReference` once from the accepted history (a bounded
reservoir of trusted rows plus what the detectors need), then audit every new
batch with :func:`detect_poisoning`.  Each detector returns a ``CheckResult``
(category ``"poisoning"``) with metrics and flagged rows; a failed blocking
check quarantines the batch.

- ``reference``     — ``PoisoningReference`` (build, to_bytes/from_bytes; data only, no pickle)
- ``recent``        — ``RecentWindow``: accepted batches since the pin (cumulative drift)
- ``policy``        — ``PoisoningPolicy``: every threshold, blocking vs warning
- ``shift``         — per-feature PSI + KS / chi-square, batch and cumulative
- ``labels``        — label-mix shift, risk-conditional label rates, label flips (cleanlab)
- ``outliers``      — Isolation Forest on trusted rows, batch-level binomial test
- ``duplicates``    — exact / near duplicates, duplicated-and-flipped rows
- ``triggers``      — backdoor trigger patterns (single or paired values)
- ``lineage_check`` — ``verify_source``: registered source and declared digest

Example::

    from bastion.data_security.poisoning import PoisoningReference, detect_poisoning, quarantined
    reference = PoisoningReference.build(history, label="Status")
    results = detect_poisoning(batch, reference, label="Status")
    if quarantined(results):
        ...
"""

from __future__ import annotations

from bastion.data_security.poisoning.detect import detect_poisoning, quarantined
from bastion.data_security.poisoning.lineage_check import verify_source
from bastion.data_security.poisoning.policy import PoisoningPolicy, PoisoningProgress
from bastion.data_security.poisoning.recent import RecentWindow
from bastion.data_security.poisoning.reference import PoisoningReference

__all__ = [
    "PoisoningPolicy",
    "PoisoningProgress",
    "PoisoningReference",
    "RecentWindow",
    "detect_poisoning",
    "quarantined",
    "verify_source",
]
