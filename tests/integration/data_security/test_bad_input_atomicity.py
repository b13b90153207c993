"""Bad input is refused with a clear error and leaves NOTHING half-ingested:
no version, no dataset, no stored object, no lineage edge, no scratch file, and
the audit log still verifies."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from data_security_support import (
    DATASET,
    PROJECT,
    SOURCE,
    CreditWS,
    blob_files,
    sha256_file,
)

from bastion.core.errors import InputError
from bastion.data_security import errors as E
from bastion.data_security.service import IngestRequest
from bastion.data_security.values import VersionStatus

ASSETS = Path(__file__).parents[2] / "assets" / "bad_inputs"


@dataclass(frozen=True)
class Snapshot:
    datasets: tuple[str, ...]
    versions: int
    blobs: frozenset[str]
    edges: int
    scratch: tuple[str, ...]

    @classmethod
    def of(cls, credit: CreditWS) -> Snapshot:
        ds = credit.ws.datasets
        scratch = credit.home / "tmp"
        return cls(
            tuple(d.name for d in ds.datasets(credit.admin, PROJECT)),
            len(ds.versions(credit.admin, PROJECT, DATASET)),
            frozenset(blob_files(credit.home)),
            len(credit.ws.lineage.edges()),
            tuple(sorted(p.name for p in scratch.iterdir())) if scratch.exists() else (),
        )


def _late_formula(path: Path) -> None:
    # the poisoned cell sits after the first 200,000-row read batch has been staged
    rows = [b"id,amount,note\n"]
    rows.extend(b"%d,%d,fine\n" % (i, i % 977) for i in range(250_000))
    rows.append(b'250000,1,"=cmd|\' /C calc\'!A0"\n')
    path.write_bytes(b"".join(rows))


def _copy(asset: str) -> Callable[[Path], object]:
    return lambda path: path.write_bytes((ASSETS / asset).read_bytes())


@dataclass(frozen=True)
class BadInput:
    name: str
    suffix: str
    make: Callable[[Path], object]
    error: type[InputError]
    words: str  # what the error message must say


BAD_INPUTS = [
    BadInput("malformed_csv", ".csv", _copy("unterminated_quote.csv"), E.MalformedTable, "line 3"),
    BadInput("formula_cells", ".csv", _copy("formula_injection_hyperlink.csv"),
             E.FormulaInjection, "formula"),
    BadInput("parquet_named_csv", ".csv", _copy("parquet_named_csv.csv"), E.FormatMismatch,
             "Parquet"),
    BadInput("gzip_named_csv", ".csv", _copy("gzip_named_csv.csv"), E.UnsupportedInput, "gzip"),
    BadInput("csv_named_parquet", ".parquet", lambda p: p.write_bytes(b"a,b\n1,2\n"),
             E.FormatMismatch, "not a Parquet file"),
    BadInput("empty_file", ".csv", lambda p: p.write_bytes(b""), E.EmptyTable, "empty"),
    BadInput("header_only", ".csv", lambda p: p.write_bytes(b"id,amount\n"), E.EmptyTable,
             "no rows"),
    BadInput("utf16_bom", ".csv", lambda p: p.write_bytes("id,amount\n1,2\n".encode("utf-16")),
             E.UnsupportedInput, "UTF-16"),
    BadInput("late_formula_cell", ".csv", _late_formula, E.FormulaInjection, "line 250002"),
]


@pytest.mark.parametrize("bad", [pytest.param(b, id=b.name) for b in BAD_INPUTS])
@pytest.mark.parametrize("target", ["existing_dataset", "new_dataset"])
def test_bad_input_is_refused_and_nothing_is_half_ingested(
    credit: CreditWS, bad: BadInput, target: str
) -> None:
    path = credit.path(bad.name, bad.suffix)
    bad.make(path)
    dataset = DATASET if target == "existing_dataset" else f"fresh-{uuid.uuid4().hex[:8]}"
    before = Snapshot.of(credit)
    req = IngestRequest(PROJECT, dataset, path, SOURCE, sha256_file(path))
    with pytest.raises(bad.error) as err:
        credit.ws.datasets.ingest(credit.steward, req)
    # a clear error: what, where (the file), how to fix
    text = err.value.diagnostics()
    assert bad.words.lower() in text.lower(), text
    assert path.name in text and err.value.hint
    after = Snapshot.of(credit)
    assert after == before
    assert credit.ws.audit.verify().ok


def test_refused_first_batch_leaves_no_empty_dataset(credit: CreditWS) -> None:
    path = credit.path("first-empty")
    path.write_bytes(b"")
    name = f"never-{uuid.uuid4().hex[:8]}"
    with pytest.raises(E.EmptyTable):
        credit.ws.datasets.ingest(
            credit.steward, IngestRequest(PROJECT, name, path, SOURCE, sha256_file(path))
        )
    assert name not in {d.name for d in credit.ws.datasets.datasets(credit.admin, PROJECT)}


def test_utf8_bom_is_stripped_not_refused(credit: CreditWS) -> None:
    name = f"bom-{uuid.uuid4().hex[:8]}"
    credit.ws.datasets.register_source(credit.steward, PROJECT, "bom-feed", datasets=(name,))
    path = credit.path("bom")
    path.write_bytes((ASSETS / "utf8_bom.csv").read_bytes())
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    res = credit.ws.datasets.ingest(
        credit.steward, IngestRequest(PROJECT, name, path, "bom-feed", sha256_file(path))
    )
    assert res.version.status is VersionStatus.ACCEPTED, res.report.render_text()
    _, frame = credit.ws.datasets.read_frame(credit.steward, PROJECT, res.version.ref)
    assert frame.columns == ["id", "income"]
    # the raw bytes, BOM included, are what the checksum covers
    assert res.version.raw_digest == sha256_file(path)


def test_malformed_declared_checksum_is_refused_before_reading(credit: CreditWS) -> None:
    path = credit.path("ok")
    path.write_bytes(b"id,amount\n1,2\n")
    before = Snapshot.of(credit)
    with pytest.raises(InputError, match="64 hex"):
        credit.ws.datasets.ingest(
            credit.steward, IngestRequest(PROJECT, DATASET, path, SOURCE, "abc123")
        )
    assert Snapshot.of(credit) == before
