"""PII/PHI detection: positives, negatives (checksums), sampling, never values."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import polars as pl

from bastion.data_security.checks.pii import PiiKind, PiiPolicy, check_pii, scan_pii
from bastion.data_security.checks.pii_rules import iban_valid, luhn_valid

CARDS = ["4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005", "6011111111111117"]
IBANS = ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "FR1420041010050500013M02606"]


def _found(df: pl.DataFrame, **kw: object) -> set[tuple[str, PiiKind]]:
    scan = scan_pii(df, PiiPolicy(as_of=date(2025, 1, 1), **kw))  # type: ignore[arg-type]
    return {(f.column, f.kind) for f in scan.findings}


def test_each_kind_is_found_in_its_column() -> None:
    df = pl.DataFrame(
        {
            "contact": ["ann@example.com", "bob.smith@mail.co.uk", "x@y.org"],
            "tel": ["+14155552671", "(415) 555-2671", "020 7946 0018"],
            "ssn": ["123-45-6789", "078-05-1120", "219-09-9999"],
            "card": CARDS[:3],
            "account": IBANS,
            "ip": ["192.168.1.10", "10.0.0.1", "8.8.8.8"],
            "ip6": ["2001:db8::1", "::1", "fe80::1ff:fe23:4567:890a"],
            "date_of_birth": [date(1980, 5, 1), date(1990, 1, 1), date(1975, 3, 3)],
            "first_name": ["Ann", "Bob", "Zoë"],
        }
    )
    found = _found(df)
    assert found == {
        ("contact", PiiKind.EMAIL),
        ("tel", PiiKind.PHONE),
        ("ssn", PiiKind.SSN),
        ("card", PiiKind.CARD),
        ("account", PiiKind.IBAN),
        ("ip", PiiKind.IPV4),
        ("ip6", PiiKind.IPV6),
        ("date_of_birth", PiiKind.BIRTH_DATE),
        ("first_name", PiiKind.PERSON_NAME),
    }


def test_random_16_digit_numbers_failing_luhn_are_not_cards() -> None:
    r = np.random.default_rng(1)
    nums = [str(4_000_000_000_000_000 + int(x)) for x in r.integers(0, 10**15, 2_000)]
    bad = [n for n, ok in zip(nums, luhn_valid(nums), strict=True) if not ok]
    assert len(bad) > 1_500
    assert _found(pl.DataFrame({"ref": bad})) == set()
    assert luhn_valid(["4111111111111111", "4111111111111112"]).tolist() == [True, False]


def test_invalid_iban_checksum_is_not_an_iban() -> None:
    wrong = ["GB82 WEST 1234 5698 7654 33", "DE89370400440532013001", "GB82WEST123456987654"]
    assert _found(pl.DataFrame({"acct": wrong})) == set()
    assert iban_valid(["GB82WEST12345698765432", "GB83WEST12345698765432"]).tolist() == [
        True,
        False,
    ]


def test_invalid_ssn_ranges_and_bare_digits_are_not_ssns() -> None:
    bad = ["000-12-3456", "666-12-3456", "900-12-3456", "123-00-6789", "123-45-0000"]
    assert _found(pl.DataFrame({"code": bad})) == set()
    assert _found(pl.DataFrame({"order_no": ["123456789"] * 3})) == set()
    assert _found(pl.DataFrame({"ssn": ["123456789"] * 3})) == {("ssn", PiiKind.SSN)}


def test_non_pii_lookalikes() -> None:
    df = pl.DataFrame(
        {
            "product_name": ["Widget", "Gadget", "Thing"],
            "created_at": [date(2024, 5, 1), date(2024, 6, 1), date(2024, 7, 1)],
            "day": ["2020-01-15", "01-02-2020", "12:30:45"],
            "account_no": ["4155552671", "1234567890", "5551234567"],
        }
    )
    assert _found(df) == set()


def test_birth_dates_by_plausible_ages_without_a_telling_name() -> None:
    r = np.random.default_rng(3)
    days = r.integers(-15_000, 8_000, 500)
    df = pl.DataFrame(
        {"d": pl.Series([date(1970, 1, 1)]).dt.offset_by("0d").repeat_by(500).explode()}
    ).with_columns(pl.col("d") + pl.duration(days=pl.Series(days)))
    assert _found(df) == {("d", PiiKind.BIRTH_DATE)}


def test_report_never_contains_values_and_states_sample() -> None:
    n = 5_000
    df = pl.DataFrame(
        {
            "email": [f"secret{i}@corp.example" for i in range(n)],
            "card_no": ["4111111111111111"] * n,
        }
    )
    result = check_pii(df, PiiPolicy(sample_size=1_000))
    blob = json.dumps(result.to_dict()) + result.render_text()
    assert "secret" not in blob and "4111" not in blob and "corp.example" not in blob
    assert result.metrics["sample_rows"] == 1_000 and "sample of 1000 of 5000" in result.summary
    assert result.metrics["email.email.count"] == 1_000
    assert not result.passed and not result.blocking


def test_declared_columns_pass_and_undeclared_can_block() -> None:
    df = pl.DataFrame({"email": ["a@b.io", "c@d.io"]})
    assert check_pii(df, PiiPolicy(declared_columns=frozenset({"email"}))).passed
    strict = check_pii(df, PiiPolicy(undeclared_is_blocking=True))
    assert not strict.passed and strict.blocking


def test_integer_card_numbers_and_free_text_emails() -> None:
    df = pl.DataFrame(
        {
            "pan": [4111111111111111, 5500000000000004],
            "comment": ["call me at jo@ex.org please", "mail x@y.net"],
        }
    )
    assert _found(df) == {("pan", PiiKind.CARD), ("comment", PiiKind.EMAIL)}
