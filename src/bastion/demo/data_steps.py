"""Layer-1 steps of the demo: the poisoned batch is quarantined at ingestion."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import polars as pl

from bastion.core.access.values import Actor, PrincipalKind
from bastion.core.lineage.graph import Node, NodeKind
from bastion.data_security.service import DatasetNotUsable, IngestRequest
from bastion.demo.foundation import DemoState
from bastion.demo.runner import DemoFailed, Runner, expect

DATASET = "credit-applications"
SOURCE = "credit-bureau"
PROJECT = "default"


@dataclass
class DataStory:
    steward: Actor | None = None
    trusted: pl.DataFrame = field(default_factory=pl.DataFrame)
    holdout: pl.DataFrame = field(default_factory=pl.DataFrame)
    accepted_ref: str = ""
    poisoned_ref: str = ""


def credit_data() -> pl.DataFrame:
    with resources.files("bastion.demo").joinpath("data/credit_data.csv").open("rb") as fh:
        return pl.read_csv(fh, null_values=["NA", ""])


def _write(frame: pl.DataFrame, path: Path) -> str:
    frame.write_csv(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_data(r: Runner, st: DemoState, story: DataStory) -> None:
    ws, admin = st.ws, st.admin
    full = credit_data().drop_nulls().with_row_index("application_id")
    shuffled = full.sample(fraction=1.0, shuffle=True, seed=7)
    n_trusted = int(shuffled.height * 0.7)
    story.trusted = shuffled.head(n_trusted)
    story.holdout = shuffled.tail(shuffled.height - n_trusted)

    def setup() -> list[str]:
        ws.access.create_principal(admin, "dana", PrincipalKind.USER)
        ws.access.bind(admin, "dana", "data-steward", PROJECT)
        story.steward = ws.access.authenticate(ws.access.create_token(admin, "dana").secret)
        ws.datasets.register_source(
            story.steward,
            PROJECT,
            SOURCE,
            datasets=(DATASET,),
            description="monthly extract from the credit bureau",
        )
        return ["data steward dana registered trusted source credit-bureau for credit-applications"]

    def trusted_history() -> list[str]:
        assert story.steward is not None
        path = st.work / "history.csv"
        digest = _write(story.trusted, path)
        res = ws.datasets.ingest(
            story.steward,
            IngestRequest(
                PROJECT,
                DATASET,
                path,
                SOURCE,
                digest,
                label="Status",
                sensitive=("Age",),
                positive_label="good",
            ),
        )
        expect(res.accepted, "the trusted history was not accepted:\n" + res.report.render_text())
        return [
            f"{res.version.ref}: {res.version.rows} rows accepted; contract inferred, "
            "trusted reference pinned"
        ]

    def clean_batch() -> list[str]:
        assert story.steward is not None
        path = st.work / "batch-clean.csv"
        digest = _write(story.holdout.head(400), path)
        res = ws.datasets.ingest(
            story.steward, IngestRequest(PROJECT, DATASET, path, SOURCE, digest)
        )
        expect(res.accepted, "a clean batch was quarantined:\n" + res.report.render_text())
        story.accepted_ref = res.version.ref
        return [
            f"{res.version.ref}: {res.version.rows} rows, {len(res.report.checks)} checks, accepted"
        ]

    def poisoned_batch() -> list[str]:
        assert story.steward is not None
        batch = story.holdout.slice(400, 400)
        # The attack: high-risk applicants (labelled bad) relabelled as good, so
        # a model trained on this data approves them.
        bad_ids = batch.filter(pl.col("Status") == "bad")["application_id"].head(60)
        poisoned = batch.with_columns(
            pl.when(pl.col("application_id").is_in(bad_ids.implode()))
            .then(pl.lit("good"))
            .otherwise(pl.col("Status"))
            .alias("Status")
        )
        path = st.work / "batch-poisoned.csv"
        digest = _write(poisoned, path)
        res = ws.datasets.ingest(
            story.steward, IngestRequest(PROJECT, DATASET, path, SOURCE, digest)
        )
        expect(not res.accepted, "the poisoned batch was ACCEPTED — the $12M failure mode")
        story.poisoned_ref = res.version.ref
        truth = set(
            poisoned.with_row_index("i")
            .filter(pl.col("application_id").is_in(bad_ids.implode()))["i"]
            .to_list()
        )
        failing = [c for c in res.report.blocking_failures]
        flagged = set()
        for c in failing:
            if c.category == "poisoning":
                flagged |= set(c.flagged_rows)
        hit = len(truth & flagged)
        return [
            f"{res.version.ref}: QUARANTINED by {', '.join(c.name for c in failing)}",
            f"{len(bad_ids)} high-risk applicants relabelled 'good'; poisoning checks flag "
            f"{len(flagged)} rows, {hit} of them relabelled "
            f"(recall {hit / max(1, len(truth)):.0%})",
        ]

    def unregistered_source() -> list[str]:
        assert story.steward is not None
        path = st.work / "batch-unknown.csv"
        digest = _write(story.holdout.slice(800, 200), path)
        res = ws.datasets.ingest(
            story.steward, IngestRequest(PROJECT, DATASET, path, "usb-stick", digest)
        )
        expect(not res.accepted, "a batch from an unregistered source was accepted")
        lineage = next(c for c in res.report.checks if c.name == "source_lineage")
        return [f"{res.version.ref}: quarantined — {lineage.summary}"]

    def tampered_checksum() -> list[str]:
        assert story.steward is not None
        path = st.work / "batch-altered.csv"
        digest = _write(story.holdout.slice(1000, 200), path)
        # Someone in transit flips three labels after the source declared its checksum.
        path.write_bytes(path.read_bytes().replace(b"bad,", b"good,", 3))
        res = ws.datasets.ingest(
            story.steward, IngestRequest(PROJECT, DATASET, path, SOURCE, digest)
        )
        expect(not res.accepted, "bytes that do not match the declared checksum were accepted")
        return [
            f"{res.version.ref}: quarantined — bytes altered after the source signed off "
            "(SHA-256 mismatch)"
        ]

    def never_for_training() -> list[str]:
        try:
            ws.datasets.read_frame(admin, PROJECT, story.poisoned_ref, purpose="training")
        except DatasetNotUsable as e:
            return [f"training on {story.poisoned_ref} refused: {e.message}"]
        raise DemoFailed("a quarantined batch was handed out for training")

    def lineage_and_access() -> list[str]:
        result = ws.lineage.verify(
            Node(NodeKind.DATASET_VERSION, f"{PROJECT}/{story.accepted_ref}")
        )
        expect(result.ok, f"lineage verification failed: {result.to_dict()}")
        report = ws.access_reports.access_report(admin, PROJECT, DATASET)
        return [
            f"lineage of {story.accepted_ref} re-hashed: {len(result.checked)} artifacts intact",
            f"access report: {len(report.principals)} principals, "
            f"{len(report.flags)} flags ({', '.join(sorted({f.kind for f in report.flags}))})",
        ]

    r.step("data", "steward registers a trusted source", setup)
    r.step("data", "trusted history ingested, reference pinned", trusted_history)
    r.step("data", "clean batch accepted", clean_batch)
    r.step("data", "POISONED batch quarantined at ingestion", poisoned_batch)
    r.step("data", "batch from an unregistered source quarantined", unregistered_source)
    r.step("data", "batch altered after checksum quarantined", tampered_checksum)
    r.step("data", "quarantined data never reaches training", never_for_training)
    r.step("data", "lineage verified, access audited", lineage_and_access)


__all__ = ["DataStory", "credit_data", "run_data"]
