"""Names are canonical: look-alikes differing in case, trailing newlines and
Unicode digits in ``name@version`` are refused (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from data_security_support import DATASET, PROJECT, SOURCE, CreditWS, ingest_csv

from bastion.core.errors import Conflict, InputError


def test_look_alike_dataset_name_differing_in_case_is_refused(credit: CreditWS) -> None:
    before = [d.name for d in credit.ws.datasets.datasets(credit.admin, PROJECT)]
    batch = credit.split.batch(7, 50)
    with pytest.raises(Conflict, match="case-insensitive"):
        ingest_csv(credit.ws, credit.steward, batch, credit.work / "lookalike.csv",
                   dataset=DATASET.upper())  # fmt: skip
    assert [d.name for d in credit.ws.datasets.datasets(credit.admin, PROJECT)] == before


def test_look_alike_source_name_differing_in_case_is_refused(credit: CreditWS) -> None:
    with pytest.raises(Conflict, match="case-insensitive"):
        credit.ws.datasets.register_source(credit.steward, PROJECT, SOURCE.upper())
    assert [s.name for s in credit.ws.datasets.sources(credit.admin, PROJECT)].count(SOURCE) == 1


@pytest.mark.parametrize(
    "ref",
    [
        f"{DATASET}@\u00b2",  # superscript two
        f"{DATASET}@\u0661",  # Arabic-Indic one: int() would read it as 1
        f"{DATASET}@" + "9" * 25,  # beyond 64 bits
        f"{DATASET}\n@1",
        f"{DATASET}@1\n",
    ],
)
def test_dataset_ref_with_unicode_digits_overflow_or_newline_is_input_error(
    credit: CreditWS, ref: str
) -> None:
    with pytest.raises(InputError):
        credit.ws.datasets.version(credit.admin, PROJECT, ref)


def test_dataset_name_with_trailing_newline_is_refused(credit: CreditWS) -> None:
    with pytest.raises(InputError, match="invalid dataset name"):
        ingest_csv(credit.ws, credit.steward, credit.split.batch(8, 20),
                   credit.work / "nl.csv", dataset="credit2\n")  # fmt: skip
