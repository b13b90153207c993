"""Poisoning attacks are caught at ingestion and the batch is quarantined.

Real credit data (shipped with Bastion), shuffled with a fixed seed: 70% is the
trusted history (``credit@1``), each batch is 400 held-out rows.  Every
attack is ingested through ``DatasetService.ingest`` on SQLite and PostgreSQL.
"""

from __future__ import annotations

from data_security_support import (
    DATASET,
    PROJECT,
    SOURCE,
    CreditWS,
    backdoor_trigger,
    failing,
    ingest_csv,
    targeted_label_flip,
    write_csv,
)

from bastion.data_security.service import IngestRequest
from bastion.data_security.values import VersionStatus

POISONING_LABEL_CHECKS = {"risk_conditional_label_rate", "label_flips", "label_distribution_shift"}


def _flagged(result: object) -> set[int]:
    return set(result.report.to_dict()["flagged_rows"])  # type: ignore[attr-defined]


def test_clean_batch_is_accepted(credit: CreditWS) -> None:
    res = ingest_csv(credit.ws, credit.steward, credit.split.batch(0), credit.path("clean"))
    assert res.accepted, res.report.render_text()
    v = res.version
    assert v.status is VersionStatus.ACCEPTED and v.rows == 400
    assert v.parent_version is not None and v.parent_version >= credit.history.version
    # every check ran against the pinned reference, none blocked
    names = {c.name for c in res.report.checks}
    assert {"source_lineage", "data_contract", "label_flips", "backdoor_triggers"} <= names
    assert not res.report.blocking_failures


def test_targeted_label_flip_batch_is_quarantined(credit: CreditWS) -> None:
    batch, flipped = targeted_label_flip(credit.split.batch(1), count=60)
    res = ingest_csv(credit.ws, credit.steward, batch, credit.path("flip"))
    assert res.version.status is VersionStatus.QUARANTINED
    assert failing(res) & POISONING_LABEL_CHECKS, failing(res)
    # the report names the suspicious rows, and (nearly all) relabelled ones are among them
    hit = flipped & _flagged(res)
    assert len(hit) >= 0.9 * len(flipped), (len(hit), len(flipped))
    text = res.report.render_text()
    assert "QUARANTINE" in text and "Suspicious rows" in text
    # stored (encrypted, for review) yet never the latest usable version
    assert credit.ws.datasets.usable_version(credit.admin, PROJECT, DATASET).version != (
        res.version.version
    )


def test_backdoor_trigger_batch_is_quarantined(credit: CreditWS) -> None:
    batch, triggered = backdoor_trigger(credit.split.batch(2), count=12, trigger=4321)
    res = ingest_csv(credit.ws, credit.steward, batch, credit.path("backdoor"))
    assert res.version.status is VersionStatus.QUARANTINED
    assert "backdoor_triggers" in failing(res)
    check = next(c for c in res.report.checks if c.name == "backdoor_triggers")
    assert set(check.flagged_rows) == triggered
    assert any("4321" in d for d in (*check.details, check.summary)), check


def test_unregistered_source_batch_is_quarantined(credit: CreditWS) -> None:
    res = ingest_csv(
        credit.ws, credit.steward, credit.split.batch(0), credit.path("usb"), source="usb-stick"
    )
    assert res.version.status is VersionStatus.QUARANTINED
    assert "source_lineage" in failing(res)
    lineage = next(c for c in res.report.checks if c.name == "source_lineage")
    assert "usb-stick" in lineage.summary
    assert res.version.source == "usb-stick"
    # the whole batch is suspect when its provenance is
    assert len(_flagged(res)) == 400


def test_checksum_mismatch_batch_is_quarantined(credit: CreditWS) -> None:
    path, declared = write_csv(credit.split.batch(1), credit.path("altered"))
    # in transit, after the source declared its checksum, three labels are flipped
    altered = path.read_bytes().replace(b"bad,", b"good,", 3)
    assert altered != path.read_bytes()
    path.write_bytes(altered)
    res = credit.ws.datasets.ingest(
        credit.steward, IngestRequest(PROJECT, DATASET, path, SOURCE, declared)
    )
    assert res.version.status is VersionStatus.QUARANTINED
    assert "source_lineage" in failing(res)
    lineage = next(c for c in res.report.checks if c.name == "source_lineage")
    assert "SHA-256" in lineage.summary
    assert res.version.declared_sha256 == declared and res.version.raw_digest != declared


def test_quarantined_batches_are_listed_but_not_in_the_trusted_reference(credit: CreditWS) -> None:
    versions = credit.ws.datasets.versions(credit.steward, PROJECT, DATASET)
    statuses = {v.status for v in versions}
    assert VersionStatus.QUARANTINED in statuses and VersionStatus.ACCEPTED in statuses
    ds = credit.ws.datasets.dataset(credit.steward, PROJECT, DATASET)
    pinned = next(v for v in versions if v.version == ds.reference_version)
    assert pinned.status is VersionStatus.ACCEPTED
