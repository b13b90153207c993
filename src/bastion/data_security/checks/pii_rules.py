"""The PII/PHI recognisers: vectorised polars expressions plus numpy checksums.

Each recogniser turns a column (stripped strings) into a boolean mask of
"this value is (or contains) kind K".  Checksums (Luhn for cards, mod-97 for
IBANs) run in numpy over the format-matching candidates only.  Nothing here
ever returns or logs a matched value.

Example::

    mask = card_mask(pl.Series(["4111 1111 1111 1111", "1234 5678 9012 3456"]))
    assert mask.to_list() == [True, False]
"""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import numpy.typing as npt
import polars as pl

EMAIL_RE = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"
_SEP = r"[\s\-\.\(\)]"
E164_RE = r"^(\+[1-9]\d{7,14}|00[1-9]\d{7,13})$"
# NANP needs a separator before the last four digits so bare 10-digit ids do not match.
NANP_RE = r"^(\+?1[\s\-\.]?)?\(?[2-9]\d{2}\)?[\s\-\.]?[2-9]\d{2}[\s\-\.]\d{4}$"
# National trunk-prefix formats: 020 7946 0018, 01 23 45 67 89, 030-1234567.
TRUNK_RE = r"^0\d{1,4}([\s\-]\d{2,8}){1,4}$"
SSN_RE = r"^(\d{3})[\- ](\d{2})[\- ](\d{4})$"
SSN_BARE_RE = r"^(\d{3})(\d{2})(\d{4})$"
# Issuer identification ranges: Visa, Mastercard (51-55, 2221-2720), Amex,
# Diners, Discover, JCB, UnionPay.
CARD_IIN_RE = (
    r"^(4\d{12}(\d{3}){0,2}|5[1-5]\d{14}|2(22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)\d{12}"
    r"|3[47]\d{13}|3(0[0-5]|[689]\d)\d{11,16}|6(011|5\d\d|4[4-9]\d)\d{12,15}"
    r"|35(2[89]|[3-8]\d)\d{12,15}|62\d{14,17})$"
)
IBAN_RE = r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$"
_OCTET = r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4_RE = rf"^({_OCTET}\.){{3}}{_OCTET}$"
_H = r"[0-9a-fA-F]{1,4}"
IPV6_RE = (
    rf"^(({_H}:){{7}}{_H}|({_H}:){{1,7}}:|({_H}:){{1,6}}:{_H}|({_H}:){{1,5}}(:{_H}){{1,2}}"
    rf"|({_H}:){{1,4}}(:{_H}){{1,3}}|({_H}:){{1,3}}(:{_H}){{1,4}}|({_H}:){{1,2}}(:{_H}){{1,5}}"
    rf"|{_H}:(:{_H}){{1,6}}|:((:{_H}){{1,7}}|:))$"
)
PERSON_NAME_VALUE_RE = r"^\p{L}[\p{L}'\-\. ]*$"

#: IBAN lengths by country (ISO 13616 registry); unknown countries need 15-34 chars
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27,
    "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19,
    "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}  # fmt: skip

_NAME_TOKENS = re.compile(
    r"(^|_)(first_?name|last_?name|full_?name|given_?name|family_?name|middle_?name|"
    r"maiden_?name|sur_?name|fore_?name|name|patient|patient_?name|customer_?name|"
    r"applicant_?name|holder_?name|person_?name|employee_?name|beneficiary)$"
)
_NOT_PERSON = re.compile(
    r"(file|product|model|column|table|host|user|company|business|brand|item|dataset|"
    r"feature|field|city|country|street|bank|branch|merchant|device|app|project)_?name"
)
_BIRTH_NAME = re.compile(r"(birth|dob|born|bday)", re.IGNORECASE)
_EVENT_DATE = re.compile(
    r"(created|updated|modified|timestamp|_at$|txn|transaction|posted|issued|expir|"
    r"application|start|end|open|close|due|paid)",
    re.IGNORECASE,
)


def _snake(name: str) -> str:
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def is_person_name_column(name: str) -> bool:
    """Column-name heuristic for person names (``first_name``, ``Surname``, ``patient``)."""
    snake = _snake(name)
    return bool(_NAME_TOKENS.search(snake)) and not _NOT_PERSON.search(snake)


def is_birth_date_name(name: str) -> bool:
    """Column-name heuristic for dates of birth (``dob``, ``date_of_birth``, ``born``)."""
    return bool(_BIRTH_NAME.search(name))


def is_event_date_name(name: str) -> bool:
    """Names of dates that are events, not births (``created_at``, ``txn_date``)."""
    return bool(_EVENT_DATE.search(name))


def is_ssn_name(name: str) -> bool:
    return bool(re.search(r"(ssn|social_?sec|tax_?id|\btin\b)", _snake(name)))


def email_mask(s: pl.Series) -> pl.Series:
    return s.str.contains(EMAIL_RE).fill_null(False)


def phone_mask(s: pl.Series) -> pl.Series:
    compact = s.str.replace_all(_SEP, "")
    digits = compact.str.replace_all(r"\D", "").str.len_chars()
    trunk = s.str.contains(TRUNK_RE) & digits.is_between(9, 12)
    # E.164 needs the leading '+' or '00': plain digit runs are not phone numbers.
    e164 = s.str.contains(r"^(\+|00)") & compact.str.contains(E164_RE)
    # 3-2-4 digit groups are the SSN layout, not a phone number.
    ssn_like = s.str.contains(r"^\d{3}[\- ]\d{2}[\- ]\d{4}$")
    return ((e164 | s.str.contains(NANP_RE) | trunk) & ~ssn_like).fill_null(False)


def _ssn_parts_valid(s: pl.Series, pattern: str) -> pl.Series:
    fields = s.str.extract_groups(pattern).struct.unnest()
    area, group, serial = (fields.get_column(f).cast(pl.Int32, strict=False) for f in "123")
    ok = (area > 0) & (area != 666) & (area < 900) & (group > 0) & (serial > 0)
    return ok.fill_null(False)


def ssn_mask(s: pl.Series, *, allow_bare: bool) -> pl.Series:
    """US SSNs: area not 000/666/9xx, group not 00, serial not 0000.

    Undelimited nine-digit values count only when ``allow_bare`` (the column
    name says SSN): otherwise any nine-digit id would match.
    """
    ok = _ssn_parts_valid(s, SSN_RE)
    if allow_bare:
        ok = ok | _ssn_parts_valid(s, SSN_BARE_RE)
    return ok


def _digit_matrix(values: list[str], width: int) -> npt.NDArray[np.uint8]:
    """Right-aligned (n, width) uint8 matrix of ASCII codes, zero-padded on the left."""
    raw = np.array([v.rjust(width, "0") for v in values], dtype=f"S{width}")
    return raw.view(np.uint8).reshape(len(values), width)


def luhn_valid(values: list[str]) -> npt.NDArray[np.bool_]:
    """Luhn checksum for digit strings of up to 19 digits."""
    if not values:
        return np.zeros(0, dtype=bool)
    digits = _digit_matrix(values, 19).astype(np.int64) - ord("0")
    doubled = digits[:, 1::2] * 2  # odd positions from the right, 19 columns wide
    digits[:, 1::2] = np.where(doubled > 9, doubled - 9, doubled)
    return np.asarray(digits.sum(axis=1) % 10 == 0, dtype=np.bool_)


def card_mask(s: pl.Series) -> pl.Series:
    """Payment cards: separators only, a plausible IIN and length, and a valid Luhn digit."""
    digits = s.str.replace_all(r"[\s\-]", "")
    candidate = (s.str.contains(r"^[\d\s\-]+$") & digits.str.contains(CARD_IIN_RE)).fill_null(False)
    out = np.zeros(s.len(), dtype=bool)
    idx = candidate.arg_true().to_numpy()
    if idx.size:
        out[idx] = luhn_valid(digits.gather(idx).to_list())
    return pl.Series(s.name, out)


def iban_valid(values: list[str]) -> npt.NDArray[np.bool_]:
    """ISO 13616 mod-97 check (``values`` already upper-case, no spaces)."""
    if not values:
        return np.zeros(0, dtype=bool)
    moved = [v[4:] + v[:4] for v in values]
    codes = np.array(moved, dtype="S34").view(np.uint8).reshape(len(values), 34).astype(np.int64)
    rem = np.zeros(len(values), dtype=np.int64)
    for j in range(34):
        c = codes[:, j]
        is_digit = (c >= 48) & (c <= 57)
        is_alpha = (c >= 65) & (c <= 90)
        # Letters count as two digits (A=10 ... Z=35), so shift by 100 instead of 10.
        rem = np.where(is_digit, (rem * 10 + c - 48) % 97, rem)
        rem = np.where(is_alpha, (rem * 100 + c - 55) % 97, rem)
    lengths_ok = np.array(
        [IBAN_LENGTHS.get(v[:2], len(v)) == len(v) and 15 <= len(v) <= 34 for v in values]
    )
    return np.asarray((rem == 1) & lengths_ok, dtype=np.bool_)


def iban_mask(s: pl.Series) -> pl.Series:
    compact = s.str.replace_all(r"\s", "").str.to_uppercase()
    candidate = compact.str.contains(IBAN_RE).fill_null(False)
    out = np.zeros(s.len(), dtype=bool)
    idx = candidate.arg_true().to_numpy()
    if idx.size:
        out[idx] = iban_valid(compact.gather(idx).to_list())
    return pl.Series(s.name, out)


def ipv4_mask(s: pl.Series) -> pl.Series:
    return s.str.contains(IPV4_RE).fill_null(False)


def ipv6_mask(s: pl.Series) -> pl.Series:
    return (s.str.contains(":") & s.str.contains(IPV6_RE)).fill_null(False)


def person_name_values(s: pl.Series) -> pl.Series:
    return s.str.contains(PERSON_NAME_VALUE_RE).fill_null(False)


def plausible_ages(dates: pl.Series, as_of: date) -> pl.Series:
    """Ages in whole years (float) of ``dates`` (a Date series) on ``as_of``."""
    delta = pl.select((pl.lit(as_of, dtype=pl.Date) - dates.cast(pl.Date)).dt.total_days())
    return delta.to_series().cast(pl.Float64) / 365.25


__all__ = [
    "card_mask",
    "email_mask",
    "iban_mask",
    "iban_valid",
    "ipv4_mask",
    "ipv6_mask",
    "is_birth_date_name",
    "is_event_date_name",
    "is_person_name_column",
    "is_ssn_name",
    "luhn_valid",
    "person_name_values",
    "phone_mask",
    "plausible_ages",
    "ssn_mask",
]
