"""One validator for every name a user chooses, and for ``NAME@VERSION`` references.

Names are identifiers that end up in audit entries, resource strings, file
names of exports and terminal output, so they are held to one rule:

- the *whole* string matches (``fullmatch``: ``"x\\n"`` is not ``"x"``);
- ASCII letters, digits and ``. _ -`` (principals and projects also ``@``),
  starting with a letter or digit: no look-alike characters, no bidi controls,
  no separators, nothing a terminal or a path would interpret;
- uniqueness is case-insensitive: :func:`name_key` is the key a store compares,
  so ``Credit`` and ``credit`` cannot both exist;
- versions are ASCII digits only (superscript two and Arabic-Indic one are refused, not
  read as 2 or 1) and fit a signed 64-bit integer.

Object names (free text, e.g. file names) are canonicalised by
:func:`check_object_name`: NFC, no control or format characters, no backslash,
no absolute path and no ``.``/``..`` segments.

Example::

    check_name("dataset", "credit-applications")      # returns the name
    parse_ref("dataset", "credit@3")                    # ("credit", 3)
    parse_ref("dataset", "credit@latest")               # ("credit", None)
"""

from __future__ import annotations

import re
import unicodedata

from bastion.core.errors import InputError

_SIMPLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_WITH_AT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*")
_DIGITS = re.compile(r"[0-9]{1,18}")  # 18 digits always fit a signed 64-bit integer
MAX_VERSION = 2**63 - 1


def check_name(kind: str, name: object, *, max_length: int = 200, allow_at: bool = False) -> str:
    """Return ``name`` if it is a valid ``kind`` name; raise ``InputError`` naming the rule."""
    pattern = _WITH_AT if allow_at else _SIMPLE
    if not isinstance(name, str) or not 0 < len(name) <= max_length or not pattern.fullmatch(name):
        extra = ", '@'" if allow_at else ""
        raise InputError(
            f"invalid {kind} name {name!r}",
            hint=f"use 1-{max_length} ASCII letters, digits, '.', '_'{extra} or '-', "
            "starting with a letter or digit",
        )
    return name


def name_key(name: str) -> str:
    """The case-insensitive key two names collide on (``Credit`` ~ ``credit``)."""
    return name.casefold()


def parse_version(kind: str, text: str, ref: str) -> int:
    if not _DIGITS.fullmatch(text) or not 1 <= int(text) <= MAX_VERSION:
        raise InputError(
            f"invalid {kind} version in {ref!r}",
            hint=f"use NAME, NAME@latest or NAME@N with N an ASCII number from 1 to {MAX_VERSION}",
        )
    return int(text)


def parse_ref(kind: str, text: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME@latest`` -> (name, None); ``NAME@N`` -> (name, N)."""
    name, at, version = text.partition("@")
    check_name(kind, name)
    if not at or version == "latest":
        return name, None
    return name, parse_version(kind, version, text)


_BAD_OBJECT_CHARS = {"\\"}


def check_object_name(name: object, *, max_bytes: int = 300) -> str:
    """Canonicalise a free-text object name (NFC) or refuse it with the reason."""

    def bad(why: str) -> InputError:
        return InputError(
            f"invalid object name {name!r}: {why}",
            hint="use a relative name such as 'reports/q3.csv': printable characters, "
            f"'/' between parts, no '.' or '..' parts, at most {max_bytes} bytes",
        )

    if not isinstance(name, str) or not name:
        raise bad("it is empty")
    canonical = unicodedata.normalize("NFC", name)
    if len(canonical.encode()) > max_bytes:
        raise bad(f"it is longer than {max_bytes} bytes")
    for ch in canonical:
        category = unicodedata.category(ch)
        # Cc: control characters (newline, NUL); Cf: format characters such as the
        # bidi overrides that make a name display as something else; Cs/Co/Cn:
        # surrogates, private use, unassigned.
        if category in ("Cc", "Cf", "Cs", "Co", "Cn") or ch in _BAD_OBJECT_CHARS:
            raise bad(f"it contains the character U+{ord(ch):04X}")
    if canonical.startswith("/"):
        raise bad("it is an absolute path")
    if any(part in ("", ".", "..") for part in canonical.split("/")):
        raise bad("it has an empty, '.' or '..' part")
    if canonical != canonical.strip():
        raise bad("it starts or ends with white space")
    return canonical


__all__ = [
    "MAX_VERSION",
    "check_name",
    "check_object_name",
    "name_key",
    "parse_ref",
    "parse_version",
]
