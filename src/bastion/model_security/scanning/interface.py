"""Value types and the format-scanner port of the malicious-artifact scanner.

A scan produces :class:`Finding` values (one per refused construct), grouped per
file in :class:`FileScan` and summed up in a :class:`ScanReport` whose
:class:`Verdict` is ``SAFE`` only when no finding at all was raised.

Example::

    report = scan_path(Path("model.joblib"))
    if not report.accepted:
        print(report.render())
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from bastion.model_security.scanning.policy import DEFAULT_POLICY, ScanPolicy

SCANNER_VERSION = "bastion-scan/1.1"


class Verdict(enum.Enum):
    """Outcome of a scan; only ``SAFE`` is accepted.

    ``UNKNOWN_FORMAT``: some content is none of the formats the scanner knows (so
    nothing can be said about it); refused unless the policy allows opaque data files.
    """

    SAFE = "safe"
    MALICIOUS = "malicious"
    ERROR = "error"
    UNKNOWN_FORMAT = "unknown-format"


class Severity(enum.Enum):
    """``CRITICAL`` = a code-execution or escape construct; ``ERROR`` = could not verify;
    ``UNKNOWN`` = content of no known format (opaque)."""

    CRITICAL = "critical"
    ERROR = "error"
    UNKNOWN = "unknown-format"


class ArtifactFormat(enum.Enum):
    """Formats recognised from magic bytes (never from the file extension)."""

    PICKLE = "pickle"
    JOBLIB_COMPRESSED = "joblib-compressed"
    ZIP = "zip"
    TAR = "tar"
    SAFETENSORS = "safetensors"
    ONNX = "onnx"
    HDF5 = "hdf5"
    NUMPY = "numpy"
    JSON = "json"
    TEXT = "text"
    SEVEN_ZIP = "7z"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ScanLimits:
    """Resource limits; exceeding one is a finding (fail closed), never a silent skip."""

    max_archive_members: int = 10_000
    max_total_uncompressed: int = 64 * 1024**3
    max_compression_ratio: float = 200.0
    max_decompressed_bytes: int = 16 * 1024**3
    max_nesting_depth: int = 4
    max_pickle_string: int = 1024 * 1024
    max_json_header: int = 100 * 1024 * 1024
    max_external_data_bytes: int = 64 * 1024**3
    max_pickle_opcodes: int = 50_000_000
    #: extra ``module.name`` globals a deployment trusts (e.g. ``numpy.log1p`` used by a
    #: FunctionTransformer); exact names only, reviewed like code.  Scanner-only: the
    #: restricted loader does not see it (fails closed); per-project extras belong in
    #: :class:`~bastion.model_security.scanning.policy.ScanPolicy`, which both enforce
    extra_allowed_globals: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Finding:
    """One refused construct: what, where (file, archive member, byte offset) and why."""

    code: str
    message: str
    file: str
    severity: Severity = Severity.CRITICAL
    member: str | None = None
    offset: int | None = None

    def location(self) -> str:
        parts = [self.file]
        if self.member:
            parts.append(f"member {self.member}")
        if self.offset is not None:
            parts.append(f"offset {self.offset}")
        return " / ".join(parts)

    def to_dict(self) -> dict[str, str | int | None]:
        return {
            "code": self.code,
            "message": self.message,
            "file": self.file,
            "severity": self.severity.value,
            "member": self.member,
            "offset": self.offset,
        }


@dataclass(frozen=True)
class FileScan:
    """What was scanned in one file: its detected format and size."""

    path: str
    format: ArtifactFormat
    size: int

    def to_dict(self) -> dict[str, str | int]:
        return {"path": self.path, "format": self.format.value, "size": self.size}


def verdict_of(findings: tuple[Finding, ...]) -> Verdict:
    if any(f.severity is Severity.CRITICAL for f in findings):
        return Verdict.MALICIOUS
    if any(f.severity is Severity.ERROR for f in findings):
        return Verdict.ERROR
    if findings:
        return Verdict.UNKNOWN_FORMAT
    return Verdict.SAFE


@dataclass(frozen=True)
class ScanReport:
    """The result of scanning a file or a folder."""

    verdict: Verdict
    findings: tuple[Finding, ...]
    files: tuple[FileScan, ...]
    scanner_version: str = SCANNER_VERSION

    @property
    def accepted(self) -> bool:
        return self.verdict is Verdict.SAFE

    def to_dict(self) -> dict[str, object]:
        return {
            "verdict": self.verdict.value,
            "accepted": self.accepted,
            "scanner_version": self.scanner_version,
            "findings": [f.to_dict() for f in self.findings],
            "files": [f.to_dict() for f in self.files],
        }

    def render(self) -> str:
        lines = [f"verdict: {self.verdict.value} ({len(self.files)} file(s) scanned)"]
        for f in self.findings:
            lines.append(f"  [{f.severity.value}] {f.code}: {f.message} ({f.location()})")
        return "\n".join(lines)


@dataclass
class ScanContext:
    """Mutable collector shared by the format scanners during one scan."""

    limits: ScanLimits
    policy: ScanPolicy = DEFAULT_POLICY
    findings: list[Finding] = field(default_factory=list)
    files: list[FileScan] = field(default_factory=list)
    #: files a scanned ONNX model names as external tensor data.  This never changes
    #: *how* they are scanned (by content, like every file); it only explains content
    #: of no known format (raw tensor bytes) so that it is not an "unknown format".
    tensor_data_paths: set[Path] = field(default_factory=set)

    def allows(self, module: str, name: str) -> bool:
        """The allow-list decision shared with the restricted loader."""
        return (self.policy.allows(module, name)
                or f"{module}.{name}" in self.limits.extra_allowed_globals)

    def add(
        self,
        code: str,
        message: str,
        *,
        file: str,
        member: str | None = None,
        offset: int | None = None,
        severity: Severity = Severity.CRITICAL,
    ) -> None:
        self.findings.append(Finding(code, message, file, severity, member, offset))

    def error(self, code: str, message: str, *, file: str, member: str | None = None,
              offset: int | None = None) -> None:
        self.add(code, message, file=file, member=member, offset=offset, severity=Severity.ERROR)


@dataclass(frozen=True)
class Where:
    """Location of the bytes being scanned, used to name findings."""

    file: str
    member: str | None = None
    depth: int = 0

    def inside(self, member: str) -> Where:
        name = member if self.member is None else f"{self.member}!{member}"
        return Where(self.file, name, self.depth + 1)


@dataclass(frozen=True)
class Blob:
    """Bytes to scan: a file on disk or a member of an archive (opened on demand)."""

    where: Where
    size: int | None
    open: Callable[[], BinaryIO]
    path: Path | None = None
    #: "torch": a member of a torch zip (its pickles may use persistent ids);
    #: "torch-storage": a ``data/<n>`` member, raw tensor bytes *by convention only*:
    #: it is scanned by content like any blob, and only bytes of no known format (or
    #: that no known format's parser accepts) are taken as raw storage
    hint: str = ""
    #: size of the compressed bytes this blob was decompressed from (ratio caps)
    compressed_size: int | None = None


class BlobScanner(Protocol):
    """Port: scans one :class:`Blob`, adding findings to the context."""

    def __call__(self, blob: Blob, ctx: ScanContext) -> None: ...
