"""Layer-1 steps of the demo: the poisoned batch is quarantined at ingestion.

One function per control.  Each requires the *specific* check it shows to be
the one that fired (by name): the poisoned batch must be quarantined by the
label-poisoning checks (and its flagged rows are scored against the rows the
demo poisoned), the unregistered source and the altered bytes by
``source_lineage`` for that reason and no other.

Example::

    story = DataStory()
    run_data(Runner(print), state, story)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path

import polars as pl

from bastion.core.access.values import Actor, PrincipalKind
from bastion.core.lineage.graph import Node, NodeKind
from bastion.data_security.checks.report import AuditReport, CheckResult
from bastion.data_security.service import DatasetNotUsable, IngestRequest, IngestResult
from bastion.demo.foundation import DemoState
from bastion.demo.runner import DemoFailed, Runner, expect

DATASET = "credit-applications"
SOURCE = "credit-bureau"
PROJECT = "default"
#: how many high-risk applicants the attacker relabels as good
N_POISONED = 60
#: the checks that must quarantine the poisoned batch (targeted relabelling)
POISONING_CHECKS = ("label_distribution_shift", "risk_conditional_label_rate")
#: floors on the row-level scoring of the poisoned batch (the report's
#: ``poisoning_rows`` against the rows the demo relabelled).  Poisoned rows the
#: trusted model cannot tell from genuine good applicants stay unflagged, so
#: the floors say "far better than chance" (chance precision = the poisoned
#: share of the batch, 15 %), not "every row".
MIN_PRECISION = 0.30
MIN_RECALL = 0.40
LINEAGE = "source_lineage"


@dataclass
class DataStory:
    steward: Actor | None = None
    trusted: pl.DataFrame = field(default_factory=pl.DataFrame)
    holdout: pl.DataFrame = field(default_factory=pl.DataFrame)
    accepted_ref: str = ""
    poisoned_ref: str = ""

    def split(self) -> None:
        """70 % trusted history, 30 % holdout for the later batches (fixed seed)."""
        full = credit_data().drop_nulls().with_row_index("application_id")
        shuffled = full.sample(fraction=1.0, shuffle=True, seed=7)
        n_trusted = int(shuffled.height * 0.7)
        self.trusted = shuffled.head(n_trusted)
        self.holdout = shuffled.tail(shuffled.height - n_trusted)

    def actor(self) -> Actor:
        if self.steward is None:
            raise DemoFailed("no data steward: the source registration step did not run")
        return self.steward


def credit_data() -> pl.DataFrame:
    with resources.files("bastion.demo").joinpath("data/credit_data.csv").open("rb") as fh:
        return pl.read_csv(fh, null_values=["NA", ""])


def write_batch(frame: pl.DataFrame, path: Path) -> str:
    """Write ``frame`` as CSV; return the SHA-256 the source declares for it."""
    frame.write_csv(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _features(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop("Status", "application_id").to_dummies(
        ["Home", "Marital", "Records", "Job"]
    )


def risk_scores(trusted: pl.DataFrame, batch: pl.DataFrame) -> list[float]:
    """P(bad) per batch row from the attacker's own model, fit on the trusted rows."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    x_trusted = _features(trusted)
    x_batch = _features(batch).select(
        [pl.col(c) if c in _features(batch).columns else pl.lit(0).alias(c)
         for c in x_trusted.columns]
    )  # fmt: skip
    model = HistGradientBoostingClassifier(random_state=7)
    model.fit(x_trusted.to_numpy(), (trusted["Status"] == "bad").to_numpy())
    return [float(p) for p in model.predict_proba(x_batch.to_numpy())[:, 1]]


def poison(
    batch: pl.DataFrame, trusted: pl.DataFrame, n: int = N_POISONED
) -> tuple[pl.DataFrame, set[int]]:
    """Relabel the ``n`` riskiest applicants labelled bad as good; return their row indices.

    The attacker ranks risk with a model of their own fit on the trusted history,
    so the flipped rows are the high-risk applicants the poisoned model would approve.
    """
    scored = batch.with_columns(pl.Series("_risk", risk_scores(trusted, batch)))
    bad = scored.filter(pl.col("Status") == "bad").sort("_risk", descending=True)
    bad_ids = bad["application_id"].head(n)
    hit = pl.col("application_id").is_in(bad_ids.implode())
    poisoned = batch.with_columns(
        pl.when(hit).then(pl.lit("good")).otherwise(pl.col("Status")).alias("Status")
    )
    rows = set(poisoned.with_row_index("i").filter(hit)["i"].to_list())
    return poisoned, rows


def _ingest(
    st: DemoState, story: DataStory, frame: pl.DataFrame, name: str, source: str = SOURCE
) -> IngestResult:
    path = st.work / name
    digest = write_batch(frame, path)
    req = IngestRequest(PROJECT, DATASET, path, source, digest)
    return st.ws.datasets.ingest(story.actor(), req)


def _check(report: AuditReport, name: str) -> CheckResult:
    found = [c for c in report.checks if c.name == name]
    expect(len(found) == 1, f"the report has no check {name!r}:\n{report.render_text()}")
    return found[0]


def _fired(report: AuditReport) -> set[str]:
    return {c.name for c in report.blocking_failures}


def register_source(st: DemoState, story: DataStory) -> list[str]:
    ws, admin = st.ws, st.admin
    ws.access.create_principal(admin, "dana", PrincipalKind.USER)
    ws.access.bind(admin, "dana", "data-steward", PROJECT)
    story.steward = ws.access.authenticate(ws.access.create_token(admin, "dana").secret)
    ws.datasets.register_source(
        story.steward, PROJECT, SOURCE, datasets=(DATASET,),
        description="monthly extract from the credit bureau",
    )
    return ["data steward dana registered trusted source credit-bureau for credit-applications"]


def trusted_history(st: DemoState, story: DataStory) -> list[str]:
    path = st.work / "history.csv"
    digest = write_batch(story.trusted, path)
    req = IngestRequest(
        PROJECT, DATASET, path, SOURCE, digest,
        label="Status", sensitive=("Age",), positive_label="good",
    )
    res = st.ws.datasets.ingest(story.actor(), req)
    expect(res.accepted, "the trusted history was not accepted:\n" + res.report.render_text())
    return [
        f"{res.version.ref}: {res.version.rows} rows accepted; contract inferred, "
        "trusted reference pinned"
    ]


def clean_batch(st: DemoState, story: DataStory) -> list[str]:
    res = _ingest(st, story, story.holdout.head(400), "batch-clean.csv")
    expect(res.accepted, "a clean batch was quarantined:\n" + res.report.render_text())
    story.accepted_ref = res.version.ref
    n_checks = len(res.report.checks)
    return [f"{res.version.ref}: {res.version.rows} rows, {n_checks} checks, accepted"]


def precision_recall(flagged: set[int], truth: set[int]) -> tuple[float, float]:
    hit = len(flagged & truth)
    return hit / max(1, len(flagged)), hit / max(1, len(truth))


def poisoned_batch(st: DemoState, story: DataStory) -> list[str]:
    poisoned, truth = poison(story.holdout.slice(400, 400), story.trusted)
    res = _ingest(st, story, poisoned, "batch-poisoned.csv")
    expect(not res.accepted, "the poisoned batch was ACCEPTED — the $12M failure mode")
    story.poisoned_ref = res.version.ref
    fired = _fired(res.report)
    missing = [n for n in POISONING_CHECKS if n not in fired]
    expect(not missing, f"quarantined, but not by {missing} (fired: {sorted(fired)})")
    expect(_check(res.report, LINEAGE).passed, "quarantined by source lineage, not by poisoning")
    flagged = set(res.report.poisoning_rows)  # the rows the report names as suspected poison
    precision, recall = precision_recall(flagged, truth)
    score = f"precision {precision:.2f}, recall {recall:.2f}"
    expect(precision >= MIN_PRECISION, f"{score}: precision below the floor {MIN_PRECISION}")
    expect(recall >= MIN_RECALL, f"{score}: recall below the floor {MIN_RECALL}")
    return [
        f"{res.version.ref}: QUARANTINED by {', '.join(sorted(fired))}",
        f"{len(truth)} of {res.version.rows} rows poisoned (the riskiest 'bad' relabelled "
        f"'good'); the report names {len(flagged)} rows, {len(flagged & truth)} of them poisoned: "
        f"{score} (floors {MIN_PRECISION} / {MIN_RECALL}; chance precision "
        f"{len(truth) / max(1, res.version.rows):.2f})",
    ]


def unregistered_source(st: DemoState, story: DataStory) -> list[str]:
    res = _ingest(
        st, story, story.holdout.slice(800, 400), "batch-unknown.csv", source="usb-stick"
    )
    expect(not res.accepted, "a batch from an unregistered source was accepted")
    fired = _fired(res.report)
    expect(fired == {LINEAGE}, f"expected only {LINEAGE} to fire, fired: {sorted(fired)}")
    lineage = _check(res.report, LINEAGE)
    expect(lineage.metrics.get("source_registered") == 0, f"{LINEAGE}: {lineage.summary}")
    expect(lineage.metrics.get("digest_matches") == 1, f"{LINEAGE}: {lineage.summary}")
    return [f"{res.version.ref}: QUARANTINED by {LINEAGE} — {lineage.summary}"]


def tampered_checksum(st: DemoState, story: DataStory) -> list[str]:
    path = st.work / "batch-altered.csv"
    declared = write_batch(story.holdout.slice(800, 400), path)
    # Someone in transit flips three labels after the source declared its checksum.
    altered = path.read_bytes().replace(b"bad,", b"good,", 3)
    expect(hashlib.sha256(altered).hexdigest() != declared, "the alteration changed no byte")
    path.write_bytes(altered)
    req = IngestRequest(PROJECT, DATASET, path, SOURCE, declared)
    res = st.ws.datasets.ingest(story.actor(), req)
    expect(not res.accepted, "bytes that do not match the declared checksum were accepted")
    fired = _fired(res.report)
    expect(fired == {LINEAGE}, f"expected only {LINEAGE} to fire, fired: {sorted(fired)}")
    lineage = _check(res.report, LINEAGE)
    expect(lineage.metrics.get("source_registered") == 1, f"{LINEAGE}: {lineage.summary}")
    expect(lineage.metrics.get("digest_matches") == 0, f"{LINEAGE}: {lineage.summary}")
    actual = str(lineage.metrics.get("actual_sha256"))
    expect(actual == hashlib.sha256(altered).hexdigest(), f"{LINEAGE} hashed other bytes")
    return [
        f"{res.version.ref}: QUARANTINED by {LINEAGE} — {lineage.summary}",
        f"declared sha256:{declared[:16]}…, {LINEAGE} measured sha256:{actual[:16]}…",
    ]


def never_for_training(st: DemoState, story: DataStory) -> list[str]:
    try:
        st.ws.datasets.read_frame(st.admin, PROJECT, story.poisoned_ref, purpose="training")
    except DatasetNotUsable as e:
        return [f"training on {story.poisoned_ref} refused: {e.message}"]
    raise DemoFailed("a quarantined batch was handed out for training")


def lineage_and_access(st: DemoState, story: DataStory) -> list[str]:
    result = st.ws.lineage.verify(Node(NodeKind.DATASET_VERSION, f"{PROJECT}/{story.accepted_ref}"))
    expect(result.ok, f"lineage verification failed: {result.to_dict()}")
    report = st.ws.access_reports.access_report(st.admin, PROJECT, DATASET)
    flags = ", ".join(sorted({f.kind for f in report.flags})) or "none"
    return [
        f"lineage of {story.accepted_ref} verified: {len(result.checked)} artifacts intact",
        f"access report: {len(report.principals)} principals, {len(report.flags)} flags ({flags})",
    ]


DATA: tuple[tuple[str, Callable[[DemoState, DataStory], list[str]]], ...] = (
    ("steward registers a trusted source", register_source),
    ("trusted history ingested, reference pinned", trusted_history),
    ("clean batch accepted", clean_batch),
    ("POISONED batch quarantined by the poisoning checks", poisoned_batch),
    ("batch from an unregistered source quarantined by source lineage", unregistered_source),
    ("batch altered after its checksum quarantined by source lineage", tampered_checksum),
    ("quarantined data never reaches training", never_for_training),
    ("lineage verified, access audited", lineage_and_access),
)


def run_data(r: Runner, st: DemoState, story: DataStory) -> None:
    story.split()
    for name, control in DATA:
        r.step("data", name, partial(control, st, story))


__all__ = [
    "DATA", "DATASET", "PROJECT", "SOURCE", "DataStory", "credit_data", "poison",
    "precision_recall", "run_data", "write_batch",
]
