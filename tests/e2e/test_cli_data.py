"""End to end through the real ``bastion`` command: ingest, quarantine (exit 5 with
the report), review, export, bad input, lineage, access report, policy."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest_data import (  # noqa: F401  (the fixtures register by import)
    DATASET,
    LABEL,
    SOURCE,
    DataWS,
    data_cli_fixture,
    data_ws_fixture,
)


@dataclass(frozen=True)
class Quarantined:
    returncode: int
    output: str
    version: int


def run(cli: Any, data: DataWS, who: str, *args: str) -> Any:
    return cli.run(*args, token=data.tokens[who])


def n_versions(data: DataWS) -> int:
    ws = data.open()
    try:
        admin = ws.access.authenticate(data.tokens["admin"])
        return len(ws.datasets.versions(admin, "default", DATASET))
    finally:
        ws.close()


def targeted_label_flip(batch: pl.DataFrame, count: int = 60) -> pl.DataFrame:
    """High-risk applicants (bad payers with records / big loans) relabelled good."""
    indexed = batch.with_row_index("_i")
    risky = (
        indexed.filter(pl.col(LABEL) == "bad")
        .with_columns((pl.col("Amount") / pl.col("Price")).alias("_risk"))
        .sort(["Records", "_risk"], descending=[True, True])
        .head(count)["_i"]
    )
    return indexed.with_columns(
        pl.when(pl.col("_i").is_in(risky.implode())).then(pl.lit("good")).otherwise(pl.col(LABEL))
        .alias(LABEL)
    ).drop("_i")


@pytest.fixture(scope="module")
def poisoned(data_cli: Any, data_ws: DataWS) -> Quarantined:
    path, digest = data_ws.batch_file(
        targeted_label_flip(data_ws.holdout.slice(400, 400)), "poisoned"
    )
    # the checksum the source declared travels as FILE.sha256 beside the batch
    Path(f"{path}.sha256").write_text(f"{digest}  {path.name}\n")
    r = run(data_cli, data_ws, "dana", "data", "ingest", str(path), "-d", DATASET, "-s", SOURCE)
    return Quarantined(r.returncode, r.output, n_versions(data_ws))


def test_cli_poisoned_batch_exits_5_and_prints_the_report(
    poisoned: Quarantined, data_cli: Any, data_ws: DataWS
) -> None:
    assert poisoned.returncode == 5, poisoned.output
    out = poisoned.output
    assert f"QUARANTINED credit@{poisoned.version}" in out
    assert "Audit QUARANTINE" in out and "Suspicious rows" in out
    assert "[FAIL] poisoning/" in out
    assert f"bastion data release credit@{poisoned.version}" in out
    # the sidecar checksum was picked up: provenance passed, the content did not
    assert "[PASS] poisoning/source_lineage" in out
    # the stored report is the same one, readable as JSON by an auditor
    r = run(data_cli, data_ws, "olga", "data", "show", f"credit@{poisoned.version}", "--json")
    assert r.returncode == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["status"] == "quarantined" and doc["report"]["passed"] is False
    assert doc["report"]["flagged_rows"] and doc["report"]["blocking_failures"]


def test_cli_quarantined_batch_review(
    poisoned: Quarantined, data_cli: Any, data_ws: DataWS, tmp_path: Path
) -> None:
    ref = f"credit@{poisoned.version}"
    leak = tmp_path / "leak.csv"
    r = run(data_cli, data_ws, "eve", "data", "export", ref, "-o", str(leak))
    assert r.returncode == 3 and "may not dataset.review" in r.output and not leak.exists()
    r = run(data_cli, data_ws, "dana", "data", "release", ref, "--reason", "looks ok")
    assert r.returncode == 2 and "at least 10 characters" in r.output
    r = run(data_cli, data_ws, "dana", "data", "reject", ref, "--reason",
            "high-risk applicants relabelled good; bureau asked to re-send")
    assert r.returncode == 0, r.output
    assert f"{ref} is now rejected (by dana)" in r.stdout


def test_cli_export_of_accepted_data(data_cli: Any, data_ws: DataWS, tmp_path: Path) -> None:
    out = tmp_path / "history.parquet"
    r = run(data_cli, data_ws, "eve", "data", "export", "credit@1", "-o", str(out))
    assert r.returncode == 0, r.output
    frame = pl.read_parquet(out)
    assert frame.height == data_ws.trusted.height
    assert frame["application_id"].to_list() == data_ws.trusted["application_id"].to_list()


def test_exported_rows_are_not_readable_by_other_local_users(
    data_cli: Any, data_ws: DataWS, tmp_path: Path
) -> None:
    """Found: exports were written 0644: another local user read the exported rows."""
    old = os.umask(0o022)
    try:
        for name in ("rows.csv", "rows.parquet", "rows.jsonl"):
            out = tmp_path / name
            r = run(data_cli, data_ws, "eve", "data", "export", "credit@1", "-o", str(out))
            assert r.returncode == 0, r.output
            assert stat.S_IMODE(out.stat().st_mode) == 0o600, name
    finally:
        os.umask(old)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_cli_bad_input_is_a_clear_error_and_ingests_nothing(
    data_cli: Any, data_ws: DataWS, tmp_path: Path
) -> None:
    name, words = "formula.csv", "formula"
    path = tmp_path / name
    path.write_bytes(b'id,note\n1,ok\n2,"=HYPERLINK(""http://x.example"")"\n')
    before = n_versions(data_ws)
    r = run(data_cli, data_ws, "dana", "data", "ingest", str(path), "-d", DATASET, "-s", SOURCE)
    assert r.returncode == 2, r.output
    assert "(formula_injection)" in r.stderr and name in r.stderr and words in r.stderr.lower()
    assert "hint:" in r.stderr and "Traceback" not in r.output
    assert n_versions(data_ws) == before


def test_cli_policy_set_refuses_a_typo_naming_the_field(
    data_cli: Any, data_ws: DataWS, tmp_path: Path
) -> None:
    bad = tmp_path / "policy.json"
    bad.write_text('{"poisoning": {"shift_alpah": 0.01}}')
    r = run(data_cli, data_ws, "dana", "data", "policy", "set", DATASET, str(bad))
    assert r.returncode == 2 and "shift_alpah" in r.stderr and "known fields" in r.stderr


def test_cli_access_report(data_cli: Any, data_ws: DataWS) -> None:
    r = run(data_cli, data_ws, "olga", "data", "access-report", DATASET, "--json")
    assert r.returncode == 0, r.output
    doc = json.loads(r.stdout)
    by = {p["principal"]: p for p in doc["principals"]}
    assert by["dana"]["writes"] >= 1
    assert {f["kind"] for f in doc["flags"]} <= {"first_time_reader", "bulk_export",
                                               "repeated_denials"}


def test_cli_lineage_export_and_tampered_blob_fails_verify(
    data_cli: Any, data_ws: DataWS, tmp_path: Path
) -> None:
    events = tmp_path / "ol.jsonl"
    r = run(data_cli, data_ws, "olga", "lineage", "export", "--file", str(events))
    assert r.returncode == 0, r.output
    lines = [json.loads(x) for x in events.read_text().splitlines()]
    assert lines and all(e["eventType"] == "COMPLETE" for e in lines)

    ws = data_ws.open()
    try:
        admin = ws.access.authenticate(data_ws.tokens["admin"])
        digest = ws.datasets.version(admin, "default", "credit@1").data_digest
    finally:
        ws.close()
    enc = data_ws.home / "blobs" / "objects" / digest[:2] / f"{digest}.enc"
    original = enc.read_bytes()
    tampered = bytearray(original)
    tampered[len(tampered) // 3] ^= 0x80
    enc.write_bytes(bytes(tampered))
    try:
        r = run(data_cli, data_ws, "olga", "lineage", "verify", "credit@1")
        assert r.returncode == 4, r.output
        assert "MISMATCH dataset_version default/credit@1" in r.stdout
    finally:
        enc.write_bytes(original)


def test_cli_contract_breach_exits_6_not_the_poisoning_status(
    data_cli: Any, data_ws: DataWS
) -> None:
    # a fractional age in an integer column breaks the contract: no sign of an attack,
    # so the exit status and the verdict must not say "poisoning" (that is exit 5)
    batch = data_ws.holdout.slice(0, 300).with_columns(pl.col("Age").cast(pl.Float64))
    batch = batch.with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(30.5).otherwise(pl.col("Age")).alias("Age")
    )
    path, digest = data_ws.batch_file(batch, "fractional-age")
    r = run(data_cli, data_ws, "dana", "data", "ingest", str(path), "-d", DATASET, "-s", SOURCE,
            "--sha256", digest)
    assert r.returncode == 6, r.output
    assert "QUARANTINE (contract_violation)" in r.output
    assert "[FAIL] quality/data_contract" in r.output and "Poisoning suspected" not in r.output
