"""Shared helpers for the data-security integration tests: the credit data split,
batch files with their declared checksums, the poisoning attacks, blob inspection.

The credit data ships with Bastion (``bastion.demo.data_steps.credit_data``):
shuffled with a fixed seed, 70% is the trusted history and 400-row batches are
cut from the held-out 30% (never from trusted rows).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from bastion.core.access.values import Actor, PrincipalKind
from bastion.core.audit.entries import AuditEntry, AuditQuery
from bastion.data_security.service import IngestRequest, IngestResult
from bastion.data_security.values import DatasetVersion
from bastion.demo.data_steps import credit_data
from bastion.workspace import Bastion

PROJECT = "default"
DATASET = "credit"
SOURCE = "credit-bureau"
LABEL = "Status"
SEED = 7
BATCH = 400


@dataclass(frozen=True)
class CreditSplit:
    trusted: pl.DataFrame
    holdout: pl.DataFrame

    def batch(self, index: int, rows: int = BATCH) -> pl.DataFrame:
        """The ``index``-th disjoint batch of held-out rows (wraps around)."""
        start = (index * rows) % max(1, self.holdout.height - rows)
        return self.holdout.slice(start, rows)


def credit_split(seed: int = SEED) -> CreditSplit:
    full = credit_data().drop_nulls().with_row_index("application_id")
    shuffled = full.sample(fraction=1.0, shuffle=True, seed=seed)
    cut = int(shuffled.height * 0.7)
    return CreditSplit(shuffled.head(cut), shuffled.tail(shuffled.height - cut))


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_csv(frame: pl.DataFrame, path: Path) -> tuple[Path, str]:
    """Write ``frame`` as CSV; returns the path and the checksum its source declares."""
    frame.write_csv(path)
    return path, sha256_file(path)


@dataclass
class CreditWS:
    """A workspace on one database with the credit history accepted as ``credit@1``."""

    ws: Bastion
    home: Path
    work: Path
    db: str
    admin: Actor
    steward: Actor
    engineer: Actor
    consumer: Actor
    auditor: Actor
    split: CreditSplit
    history: DatasetVersion
    counter: int = 0

    def path(self, stem: str, suffix: str = ".csv") -> Path:
        """A fresh file name in the work folder."""
        self.counter += 1
        return self.work / f"{stem}-{self.counter}{suffix}"



# -- attacks -----------------------------------------------------------------------
def targeted_label_flip(batch: pl.DataFrame, count: int = 60) -> tuple[pl.DataFrame, set[int]]:
    """High-risk applicants (bad payers with records / big loans) relabelled good."""
    indexed = batch.with_row_index("_i")
    risky = (
        indexed.filter(pl.col(LABEL) == "bad")
        .with_columns((pl.col("Amount") / pl.col("Price")).alias("_risk"))
        .sort(["Records", "_risk"], descending=[True, True])
        .head(count)
    )
    rows = set(risky["_i"].to_list())
    out = indexed.with_columns(
        pl.when(pl.col("_i").is_in(list(rows))).then(pl.lit("good")).otherwise(pl.col(LABEL))
        .alias(LABEL)
    ).drop("_i")
    return out, rows


def backdoor_trigger(
    batch: pl.DataFrame, count: int = 12, trigger: int = 4321
) -> tuple[pl.DataFrame, set[int]]:
    """A rare exact Price value (absent from trusted data) always paired with 'good'."""
    rows = set(range(0, count * 7, 7))
    indexed = batch.with_row_index("_i")
    hit = pl.col("_i").is_in(list(rows))
    out = indexed.with_columns(
        pl.when(hit).then(pl.lit(trigger)).otherwise(pl.col("Price")).alias("Price"),
        pl.when(hit).then(pl.lit("good")).otherwise(pl.col(LABEL)).alias(LABEL),
    ).drop("_i")
    return out, rows


# -- workspace helpers -------------------------------------------------------------------
def make_actor(ws: Bastion, admin: Actor, name: str, role: str, project: str = PROJECT) -> Actor:
    ws.access.create_principal(admin, name, PrincipalKind.USER)
    ws.access.bind(admin, name, role, project)
    return ws.access.authenticate(ws.access.create_token(admin, name).secret)


def ingest_csv(
    ws: Bastion,
    actor: Actor,
    frame: pl.DataFrame,
    path: Path,
    *,
    dataset: str = DATASET,
    source: str = SOURCE,
    declared: str | None = None,
    **kw: object,
) -> IngestResult:
    path, digest = write_csv(frame, path)
    req = IngestRequest(PROJECT, dataset, path, source, declared or digest, **kw)  # type: ignore[arg-type]
    return ws.datasets.ingest(actor, req)


def blob_files(home: Path) -> set[str]:
    """Every stored object file (``blobs/objects/xx/<digest>.enc|.key``)."""
    root = home / "blobs" / "objects"
    if not root.exists():
        return set()
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def blob_path(home: Path, digest: str) -> Path:
    return home / "blobs" / "objects" / digest[:2] / f"{digest}.enc"


def audit_entries(ws: Bastion, **kw: object) -> list[AuditEntry]:
    return ws.audit.query(AuditQuery(limit=100_000, **kw))  # type: ignore[arg-type]


def failing(result: IngestResult) -> set[str]:
    return {c.name for c in result.report.blocking_failures}


def synthetic_frame(
    marker: str, rows: int = 300, seed: int = 0, *, offset: int = 0
) -> pl.DataFrame:
    """A small unlabeled table; ``marker`` is a unique plaintext (in column ``ref``, one
    value per row) to look for at rest."""
    cities = ["Lyon", "Porto", "Graz", "Zanzibar"]
    homes = ["rent", "owner", "parents"]
    return pl.DataFrame(
        {
            "id": list(range(offset, offset + rows)),
            "ref": [f"R{marker}-{i}" for i in range(offset, offset + rows)],
            "amount": [round(100 + ((i * 7919 + seed) % 1000) * 1.5, 2) for i in range(rows)],
            "city": [cities[(i + seed) % 4] for i in range(rows)],
            "home": [homes[(i // 2 + seed) % 3] for i in range(rows)],
        }
    )


def write_frame(frame: pl.DataFrame, path: Path) -> tuple[Path, str]:
    """Write ``frame`` in the format its suffix names (.csv, .parquet, .jsonl)."""
    if path.suffix == ".parquet":
        frame.write_parquet(path)
    elif path.suffix == ".jsonl":
        frame.write_ndjson(path)
    else:
        frame.write_csv(path)
    return path, sha256_file(path)
