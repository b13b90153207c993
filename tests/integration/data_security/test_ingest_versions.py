"""Ingesting CSV, Parquet and JSON Lines: accepted versions with schema, rows,
profile, raw SHA-256 and source; parents chain; the contract is inferred after
the first accepted batch; the data is encrypted at rest."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import polars as pl
from data_security_support import (
    PROJECT,
    CreditWS,
    blob_path,
    sha256_file,
    synthetic_frame,
    write_frame,
)

from bastion.data_security.profile.dataset import DatasetProfile
from bastion.data_security.service import IngestRequest
from bastion.data_security.values import VersionStatus


def test_csv_parquet_and_jsonl_batches_become_accepted_versions(credit: CreditWS) -> None:
    ws, steward = credit.ws, credit.steward
    marker = uuid.uuid4().hex
    name = f"formats-{marker[:8]}"
    ws.datasets.register_source(steward, PROJECT, "branch-feed", datasets=(name,))
    versions = []
    for i, fmt in enumerate(("csv", "parquet", "jsonl")):
        frame = synthetic_frame(marker, rows=300, seed=i, offset=1000 * i)
        path, digest = write_frame(frame, credit.path(f"batch-{fmt}", f".{fmt}"))
        res = ws.datasets.ingest(steward, IngestRequest(PROJECT, name, path, "branch-feed", digest))
        assert res.accepted, res.report.render_text()
        v = res.version
        versions.append(v)
        assert v.version == i + 1 and v.status is VersionStatus.ACCEPTED
        assert v.format == fmt and v.rows == 300 and v.source == "branch-feed"
        assert v.raw_digest == sha256_file(path) == digest and v.declared_sha256 == digest
        cols = {c["name"]: c["type"] for c in json.loads(v.schema)["columns"]}
        assert list(cols) == ["id", "ref", "amount", "city", "home"]
        assert cols["id"] == "int" and cols["amount"] == "float" and cols["city"] == "string"
        profile = DatasetProfile.from_bytes(ws.blobs.read_bytes(v.profile_digest))
        assert profile.row_count == 300
        # the raw bytes are kept exactly as delivered
        assert ws.blobs.read_bytes(v.raw_digest) == path.read_bytes()
        _, back = ws.datasets.read_frame(steward, PROJECT, v.ref)
        assert back.equals(frame.select(back.columns), null_equal=True)

    first, second, third = versions
    assert first.parent_version is None
    assert second.parent_version == 1 and third.parent_version == 2
    # contract v1 was inferred right after the first accepted batch
    assert first.contract_version is None
    assert second.contract_version == 1 and third.contract_version == 1
    contract = ws.datasets.contract(steward, PROJECT, name)
    assert contract is not None and contract.version == 1
    assert {c.name for c in contract.columns} == {"id", "ref", "amount", "city", "home"}
    # the first accepted batch is the pinned trusted reference
    assert ws.datasets.dataset(steward, PROJECT, name).reference_version == 1

    # encrypted at rest: no plaintext value (nor the marker) in any stored object
    for v in versions:
        for digest in (v.data_digest, v.raw_digest, v.profile_digest):
            stored = blob_path(credit.home, digest).read_bytes()
            assert marker.encode() not in stored and b"Zanzibar" not in stored
            assert b"PAR1" not in stored[:16]
    everything = b"".join(p.read_bytes() for p in (credit.home / "blobs").rglob("*.enc"))
    assert marker.encode() not in everything
    # ... and the metadata database holds no row values either
    if credit.db.startswith("sqlite"):
        meta = Path(credit.db.removeprefix("sqlite:///"))
        for f in meta.parent.glob(meta.name + "*"):  # the database, its WAL and shm
            assert marker.encode() not in f.read_bytes()


def test_integer_label_with_text_positive_label_is_audited(credit: CreditWS) -> None:
    """Regression: ``--positive-label 1`` arrives as text; a 0/1 label column is i64.
    The bias audit compared i64 with str and crashed with a raw polars error."""
    ws, steward = credit.ws, credit.steward
    marker = uuid.uuid4().hex
    name = f"intlabel-{marker[:8]}"
    ws.datasets.register_source(steward, PROJECT, "int-feed", datasets=(name,))
    frame = synthetic_frame(marker, rows=400).with_columns(
        ((pl.col("id") % 3 == 0) | (pl.col("city") == "Graz")).cast(pl.Int64).alias("approved")
    )
    path, digest = write_frame(frame, credit.path("intlabel"))
    res = ws.datasets.ingest(
        steward,
        IngestRequest(
            PROJECT, name, path, "int-feed", digest, label="approved", sensitive=("city",),
            positive_label="1",
        ),
    )
    bias = next(c for c in res.report.checks if c.name == "bias_city")
    rates = [
        float(v)
        for k, v in bias.metrics.items()
        if k.endswith(".base_rate") and isinstance(v, int | float)
    ]
    assert rates and max(rates) == 1.0 and 0.0 < min(rates) < 1.0
