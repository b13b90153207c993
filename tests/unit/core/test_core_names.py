"""The one name validator: full match, ASCII, versions in ASCII digits, canonical object names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.core.errors import InputError
from bastion.core.names import (
    MAX_VERSION,
    check_name,
    check_object_name,
    name_key,
    parse_ref,
)


@pytest.mark.parametrize(
    "name",
    [
        "x\n",  # re.match with '$' accepted a trailing newline
        "x\r",
        "\nx",
        "cr\u0435dit",  # Cyrillic small ie (U+0435): a look-alike of "credit"
        "credit\u202egnp.exe",  # right-to-left override
        "\uff43redit",  # fullwidth c
        "",
        "-leading-dash",
        "a/b",
        "a\\b",
        "a b",
        "a" * 201,
        "x\x00",
    ],
)
def test_name_attack_is_refused(name: str) -> None:
    with pytest.raises(InputError, match="invalid dataset name"):
        check_name("dataset", name)


def test_case_variants_share_one_key() -> None:
    assert name_key("Credit") == name_key("credit") == name_key("CREDIT")


@pytest.mark.parametrize(
    "ref",
    [
        "credit@\u00b2",  # superscript two: int() would crash or accept it
        "credit@\u0661",  # Arabic-Indic one: int() reads it as 1
        "credit@0",
        "credit@-1",
        "credit@+1",
        "credit@ 1",
        "credit@1\n",
        f"credit@{MAX_VERSION + 1}",
        "credit@" + "9" * 40,  # beyond 64 bits
        "credit@1@2",
    ],
)
def test_version_attack_is_refused(ref: str) -> None:
    with pytest.raises(InputError):
        parse_ref("dataset", ref)


def test_refs_parse() -> None:
    assert parse_ref("dataset", "credit") == ("credit", None)
    assert parse_ref("dataset", "credit@latest") == ("credit", None)
    assert parse_ref("dataset", "credit@12") == ("credit", 12)


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "a/../b",
        "a//b",
        "a/./b",
        "report\u202efdp.exe",
        "back\\slash",
        "nul\x00byte",
        "new\nline",
        " padded",
        "x" * 301,
        "",
    ],
)
def test_object_name_attack_is_refused(name: str) -> None:
    with pytest.raises(InputError, match="invalid object name"):
        check_object_name(name)


def test_object_names_are_nfc() -> None:
    decomposed = "cafe\u0301.csv"
    assert check_object_name(decomposed) == "caf\u00e9.csv"
    assert check_object_name("reports/q3 2026.csv") == "reports/q3 2026.csv"


@given(st.text(max_size=60))
def test_check_name_accepts_only_what_it_documents(text: str) -> None:
    try:
        ok = check_name("dataset", text)
    except InputError:
        return
    assert ok == text and ok.isascii() and ok[0].isalnum()
    assert all(c.isalnum() or c in "._-" for c in ok)


@given(st.text(max_size=40), st.text(max_size=25))
def test_parse_ref_never_raises_anything_but_input_error(name: str, version: str) -> None:
    try:
        parsed_name, parsed_version = parse_ref("model", f"{name}@{version}")
    except InputError:
        return
    assert parsed_name == name
    assert parsed_version is None or 1 <= parsed_version <= MAX_VERSION


@given(st.text(max_size=80))
def test_object_name_is_canonical_or_refused(text: str) -> None:
    try:
        out = check_object_name(text)
    except InputError:
        return
    assert check_object_name(out) == out  # idempotent
    assert not out.startswith("/") and ".." not in out.split("/")
