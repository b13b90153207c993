"""Errors of the data-security layer (all derive from ``BastionError``).

::

    DataSecurityError
    ├── IngestError          a file cannot be read as a table (names file, line, column)
    │   └── TableReadError   raised by ``readers``; its subclasses are listed below
    ├── ContractViolation    a batch breaks the dataset's data contract
    └── BatchQuarantined     a batch failed a blocking audit check and was quarantined
"""

from __future__ import annotations

from bastion.core.errors import BastionError, InputError


class DataSecurityError(BastionError):
    code = "data_security_error"


class IngestError(DataSecurityError, InputError):
    """The input file is malformed; the message names the file, line and column."""

    code = "ingest_error"


class ContractViolation(DataSecurityError):
    code = "contract_violation"


class BatchQuarantined(DataSecurityError):
    code = "batch_quarantined"


__all__ = ["BatchQuarantined", "ContractViolation", "DataSecurityError", "IngestError"]


# --- table readers (``bastion.data_security.readers``) ---------------------------------
#
#   IngestError
#   └── TableReadError           names the file and, when known, line / row group / column
#       ├── UnsupportedInput     compressed, binary, spreadsheet or UTF-16 content
#       ├── FormatMismatch       declared format or extension disagrees with the content
#       ├── EmptyTable           empty file, no columns, or header but no rows
#       ├── BadHeader            duplicate or empty column names
#       ├── EncodingError        bytes that are not UTF-8
#       ├── MalformedTable       unterminated quote, invalid JSON, corrupt Parquet
#       ├── RaggedRow            too many / too few fields on a CSV line
#       ├── MixedTypeColumn      a value that does not fit the column's type
#       ├── NonFiniteValue       NaN / inf / overflow in a numeric column
#       ├── FormulaInjection     a cell starting with = + - @ (spreadsheet formula)
#       ├── OversizedValue       a cell or a line over the configured limit
#       └── UnsupportedColumnType nested JSON values, nested / binary Parquet columns


def _where(
    path: str, line: int | None, column: str | None, row_group: int | None, row: int | None
) -> str:
    parts = [path]
    if line is not None:
        parts.append(f"line {line}")
    if row_group is not None:
        parts.append(f"row group {row_group}")
    if row is not None:
        parts.append(f"row {row}")
    if column is not None:
        parts.append(f"column {column!r}")
    return ", ".join(parts)


class TableReadError(IngestError):
    """A file cannot be read as a table; carries where (file, line, column) as attributes.

    ``line`` is the 1-based physical line (CSV / JSON Lines); ``row_group`` and ``row``
    (0-based row inside the group) locate a Parquet cell.
    """

    code = "table_read_error"

    def __init__(
        self,
        what: str,
        *,
        path: str,
        line: int | None = None,
        column: str | None = None,
        row_group: int | None = None,
        row: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(f"{_where(path, line, column, row_group, row)}: {what}", hint=hint)
        self.what = what
        self.path = path
        self.line = line
        self.column = column
        self.row_group = row_group
        self.row = row

    def to_dict(self) -> dict[str, str | int | None]:
        """JSON-safe fields for API bodies and audit records."""
        return {
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "row_group": self.row_group,
            "row": self.row,
        }


class UnsupportedInput(TableReadError):
    code = "unsupported_input"


class FormatMismatch(TableReadError):
    code = "format_mismatch"


class EmptyTable(TableReadError):
    code = "empty_table"


class BadHeader(TableReadError):
    code = "bad_header"


class EncodingError(TableReadError):
    code = "encoding_error"


class MalformedTable(TableReadError):
    code = "malformed_table"


class RaggedRow(TableReadError):
    code = "ragged_row"


class MixedTypeColumn(TableReadError):
    code = "mixed_type_column"


class NonFiniteValue(TableReadError):
    code = "non_finite_value"


class FormulaInjection(TableReadError):
    code = "formula_injection"


class OversizedValue(TableReadError):
    code = "oversized_value"


class UnsupportedColumnType(TableReadError):
    code = "unsupported_column_type"


class ReaderMisuse(DataSecurityError):
    """A programming error: e.g. iterating a streaming reader twice."""

    code = "reader_misuse"


__all__ += [
    "BadHeader",
    "EmptyTable",
    "EncodingError",
    "FormatMismatch",
    "FormulaInjection",
    "MalformedTable",
    "MixedTypeColumn",
    "NonFiniteValue",
    "OversizedValue",
    "RaggedRow",
    "ReaderMisuse",
    "TableReadError",
    "UnsupportedColumnType",
    "UnsupportedInput",
]


# -- profiles, data contracts and audit checks (profile/, contract/, checks/) --


class InvalidProfile(DataSecurityError, InputError):
    """Serialized profile bytes/dict are malformed, of an unknown version, or incompatible."""

    code = "invalid_profile"


class InvalidContract(DataSecurityError, InputError):
    """A data-contract document is malformed; the message names the field and the problem."""

    code = "invalid_contract"


class AuditConfigError(DataSecurityError, InputError):
    """An audit check was configured wrongly (unknown column, bad label, bad threshold)."""

    code = "audit_config_error"


__all__ += ["AuditConfigError", "InvalidContract", "InvalidProfile"]


# -- training-data poisoning detection (poisoning/) --


class PoisoningInputError(DataSecurityError, InputError):
    """A batch or trusted history cannot be checked for poisoning (missing label, bad column)."""

    code = "poisoning_input_error"


class InvalidPoisoningReference(DataSecurityError, InputError):
    """Serialized poisoning-reference bytes are malformed, of an unknown version, or altered."""

    code = "invalid_poisoning_reference"


__all__ += ["InvalidPoisoningReference", "PoisoningInputError"]


class StatsInputInvalid(DataSecurityError, InputError):
    """Values given to a drift statistic are unusable (wrong type, empty, bad counts)."""

    code = "stats_input_invalid"


__all__ += ["StatsInputInvalid"]
