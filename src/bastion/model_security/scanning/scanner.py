"""The scan service: walk a file or folder, dispatch each blob by its magic bytes.

Example::

    report = scan_path(Path("models/credit-v3"))
    require_safe(Path("model.joblib"))   # raises MaliciousArtifact when refused
"""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import BinaryIO, cast

from bastion.model_security.errors import MaliciousArtifact
from bastion.model_security.scanning.archive import scan_tar, scan_zip
from bastion.model_security.scanning.detect import HEAD_SIZE, detect, looks_like_tar
from bastion.model_security.scanning.interface import (
    ArtifactFormat,
    Blob,
    FileScan,
    Finding,
    ScanContext,
    ScanLimits,
    ScanReport,
    Severity,
    Where,
    verdict_of,
)
from bastion.model_security.scanning.joblib_format import joblib_compression
from bastion.model_security.scanning.keras import scan_hdf5
from bastion.model_security.scanning.numpy_format import scan_npy
from bastion.model_security.scanning.onnx_format import scan_onnx
from bastion.model_security.scanning.pickle_scan import scan_pickle_stream
from bastion.model_security.scanning.pickle_values import PickleMode
from bastion.model_security.scanning.pickle_vm import PickleMachine
from bastion.model_security.scanning.policy import DEFAULT_POLICY, ScanPolicy
from bastion.model_security.scanning.safetensors_format import scan_safetensors
from bastion.model_security.scanning.streams import (
    LimitExceeded,
    Source,
    Truncated,
    decompressing,
    lz4_available,
)

ProgressCallback = Callable[[str], None]


def scan_path(path: Path, *, limits: ScanLimits | None = None,
              progress: ProgressCallback | None = None,
              policy: ScanPolicy | None = None) -> ScanReport:
    """Scan a file or every file under a folder; never executes anything it reads."""
    ctx = ScanContext(limits or ScanLimits(), policy or DEFAULT_POLICY)
    try:
        st = path.lstat()
    except OSError as e:
        ctx.error("unreadable", f"cannot stat: {e}", file=str(path))
        return _report(ctx)
    if stat.S_ISDIR(st.st_mode):
        _scan_folder(path, ctx, progress)
    else:
        _scan_file(path, path.name, ctx, progress, root_is_folder=False)
    return _report(ctx)


def scan_bytes(data: bytes, name: str, *, limits: ScanLimits | None = None,
               policy: ScanPolicy | None = None) -> ScanReport:
    """Scan an in-memory artifact (e.g. an upload) named *name* in findings."""
    ctx = ScanContext(limits or ScanLimits(), policy or DEFAULT_POLICY)
    blob = Blob(Where(name), len(data), lambda: io.BytesIO(data))
    ctx.files.append(FileScan(name, _safe_detect(blob), len(data)))
    scan_blob(blob, ctx)
    return _report(ctx)


def require_safe(path: Path, *, limits: ScanLimits | None = None,
                 policy: ScanPolicy | None = None) -> ScanReport:
    """Scan and raise :class:`MaliciousArtifact` unless the verdict is SAFE."""
    report = scan_path(path, limits=limits, policy=policy)
    if not report.accepted:
        first = report.findings[0] if report.findings else None
        what = f"{first.code} at {first.location()}" if first else "no findings"
        raise MaliciousArtifact(
            f"model artifact {path} refused by the scanner ({report.verdict.value}: {what})\n"
            + report.render(),
            hint="do not load this artifact; rebuild it from trusted code, or export it "
                 "to a code-free format (safetensors, ONNX, XGBoost JSON)",
        )
    return report


def _report(ctx: ScanContext) -> ScanReport:
    seen: set[tuple[str, str, str | None, int | None]] = set()
    unique: list[Finding] = []
    for f in ctx.findings:
        key = (f.code, f.file, f.member, f.offset)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    findings = tuple(unique)
    return ScanReport(verdict_of(findings), findings, tuple(ctx.files))


def _scan_folder(root: Path, ctx: ScanContext, progress: ProgressCallback | None) -> None:
    paths: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for d in list(dirnames):
            if (base / d).is_symlink():
                ctx.add("folder_symlink", f"directory {d!r} is a symbolic link",
                        file=str((base / d).relative_to(root)))
                dirnames.remove(d)
        paths.extend(base / name for name in sorted(filenames))
        if len(paths) > ctx.limits.max_archive_members:
            ctx.add("archive_too_many_members", "too many files in the model folder",
                    file=str(root))
            return
    # ONNX models first: the files they name as external data are still scanned by
    # content, but content of no known format there is raw tensor data, not "unknown"
    paths.sort(key=lambda p: (not _is_onnx(p), str(p)))
    for path in paths:
        _scan_file(path, str(path.relative_to(root)), ctx, progress, root_is_folder=True)


def _is_onnx(path: Path) -> bool:
    if path.is_symlink() or not path.is_file():
        return False
    with path.open("rb") as fh:
        return detect(fh.read(HEAD_SIZE), None) is ArtifactFormat.ONNX


def _scan_file(path: Path, label: str, ctx: ScanContext, progress: ProgressCallback | None,
               *, root_is_folder: bool) -> None:
    if progress is not None:
        progress(label)
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        ctx.add("folder_symlink", f"{label} is a symbolic link to {os.readlink(path)!r}",
                file=label)
        return
    if not stat.S_ISREG(st.st_mode):
        ctx.add("special_file", f"{label} is not a regular file", file=label)
        return
    if st.st_nlink > 1 and root_is_folder:
        ctx.add("folder_hardlink", f"{label} has {st.st_nlink} hard links (may alias a file "
                "outside the model folder)", file=label)
    blob = Blob(Where(label), st.st_size, lambda: path.open("rb"), path)
    ctx.files.append(FileScan(label, _safe_detect(blob), st.st_size))
    try:
        scan_blob(blob, ctx)
    except OSError as e:
        ctx.error("unreadable", f"I/O error while scanning: {e}", file=label)


def _safe_detect(blob: Blob) -> ArtifactFormat:
    try:
        with blob.open() as fh:
            return detect(fh.read(HEAD_SIZE), blob.size)
    except (OSError, LimitExceeded, ValueError):
        return ArtifactFormat.UNKNOWN


@contextmanager
def _materialized(blob: Blob) -> Iterator[Path]:
    """A real path for parsers that need one (h5py, onnx, nested zips)."""
    if blob.path is not None:
        yield blob.path
        return
    with tempfile.TemporaryDirectory(prefix="bastion-scan-") as tmp:
        target = Path(tmp) / "member"
        with blob.open() as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
        yield target


def scan_blob(blob: Blob, ctx: ScanContext) -> None:
    """Scan one blob; every failure to parse is an ERROR finding, never a pass."""
    where = blob.where
    if where.depth > ctx.limits.max_nesting_depth:
        ctx.error("nesting_too_deep", "archives nested too deeply", file=where.file,
                  member=where.member)
        return
    try:
        with blob.open() as fh:
            head = fh.read(HEAD_SIZE)
        fmt = detect(head, blob.size)
        _dispatch(blob, fmt, head, ctx)
    except LimitExceeded as e:
        ctx.error("limit_exceeded", str(e), file=where.file, member=where.member)
    except Exception as e:  # fail closed: a scanner fault is a refusal, never a pass
        ctx.error("scanner_error", f"{type(e).__name__}: {e}", file=where.file,
                  member=where.member)


def _opener(blob: Blob, stack: ExitStack, wrap: Callable[[BinaryIO], BinaryIO] | None = None,
            *, sized: bool = True) -> Callable[[], Source]:
    def open_source() -> Source:
        fh = stack.enter_context(blob.open())
        if wrap is not None:
            fh = stack.enter_context(wrap(fh))
        return Source(fh, size=blob.size if sized else None)

    return open_source


def _dispatch(blob: Blob, fmt: ArtifactFormat, head: bytes, ctx: ScanContext) -> None:
    if blob.hint == "torch-storage":
        _scan_storage(blob, fmt, head, ctx)
    else:
        _scan_content(blob, fmt, head, ctx)


def _scan_content(blob: Blob, fmt: ArtifactFormat, head: bytes, ctx: ScanContext) -> bool:
    """Scan *blob* as the format its content is; True when it is a known format."""
    where = blob.where
    torch = blob.hint in ("torch", "torch-storage")
    with ExitStack() as stack:
        if fmt is ArtifactFormat.PICKLE:
            scan_pickle_stream(_opener(blob, stack), where, ctx, torch=torch)
            if looks_like_tar(head):  # one byte stream can be a pickle *and* a tar
                scan_tar(_seekable(blob, stack), where, ctx, scan_blob,
                         compressed_size=blob.compressed_size)
        elif fmt is ArtifactFormat.JOBLIB_COMPRESSED:
            _scan_compressed(blob, head, ctx)
        elif fmt is ArtifactFormat.NUMPY:
            scan_npy(_opener(blob, stack), where, ctx)
        elif fmt is ArtifactFormat.ZIP:
            scan_zip(_seekable(blob, stack), where, ctx, scan_blob)
        elif fmt is ArtifactFormat.TAR:
            scan_tar(_seekable(blob, stack), where, ctx, scan_blob,
                     compressed_size=blob.compressed_size)
            _pickle_alongside(blob, ctx, stack)
        elif fmt is ArtifactFormat.SAFETENSORS:
            fh = stack.enter_context(blob.open())
            scan_safetensors(fh, blob.size or 0, where, ctx)
        elif fmt is ArtifactFormat.ONNX:
            path = stack.enter_context(_materialized(blob))
            model_dir = blob.path.parent if blob.path is not None else None
            scan_onnx(path, where, ctx, model_dir=model_dir)
        elif fmt is ArtifactFormat.HDF5:
            scan_hdf5(stack.enter_context(_materialized(blob)), where, ctx)
        elif fmt is ArtifactFormat.JSON:
            return True  # JSON / UBJSON (xgboost) is data only
        elif fmt in (ArtifactFormat.TEXT, ArtifactFormat.UNKNOWN):
            return _text_or_pickle(blob, fmt, ctx, stack)
        else:
            ctx.error("unsupported_format", f"{fmt.value} archives cannot be inspected",
                      file=where.file, member=where.member)
        return True


def _scan_compressed(blob: Blob, head: bytes, ctx: ScanContext) -> None:
    """A compressed stream (joblib's compressors; also tar.gz / .bz2 / .xz).

    The decompressed bytes are scanned by *their* content as a nested blob: a pickle
    (what ``joblib.load`` reads), a tar (checked for tar structure before and
    alongside any pickle reading), a zip, an ONNX model...
    """
    where = blob.where
    kind = joblib_compression(head) or ""
    if kind == "zfile" or (kind == "lz4" and not lz4_available()):
        ctx.error("unsupported_compression", f"{kind}-compressed stream cannot be "
                  "inspected (install the lz4 package, or re-save the model)",
                  file=where.file, member=where.member)
        return
    limit = ctx.limits.max_decompressed_bytes

    @contextmanager
    def opened() -> Iterator[BinaryIO]:
        with blob.open() as raw, decompressing(raw, kind, limit=limit) as fh:
            yield fh

    inner = Blob(Where(where.file, where.member, where.depth + 1), None,
                 lambda: cast(BinaryIO, io.BufferedReader(_CtxStream(opened()), 1024 * 1024)),
                 compressed_size=blob.size, hint=blob.hint)
    try:
        with inner.open() as fh:
            dec_head = fh.read(HEAD_SIZE)
    except Truncated as e:
        ctx.error("malformed_compression", f"{kind} stream cannot be decompressed: {e}",
                  file=where.file, member=where.member)
        return
    inner_fmt = detect(dec_head, None)
    if inner_fmt in (ArtifactFormat.TEXT, ArtifactFormat.UNKNOWN, ArtifactFormat.JSON) \
            and not _looks_pickled(dec_head):
        # joblib.load would unpickle it: read it as a pickle so its error is reported
        inner_fmt = ArtifactFormat.PICKLE
    scan_blob_as(inner, inner_fmt, dec_head, ctx)


def _looks_pickled(head: bytes) -> bool:
    return bool(head) and head[:1] in b"(cdilpSVIFLNTU]}.)KJM"


def scan_blob_as(blob: Blob, fmt: ArtifactFormat, head: bytes, ctx: ScanContext) -> None:
    if blob.where.depth > ctx.limits.max_nesting_depth:
        ctx.error("nesting_too_deep", "archives nested too deeply", file=blob.where.file,
                  member=blob.where.member)
        return
    _dispatch(blob, fmt, head, ctx)


class _CtxStream(io.RawIOBase):
    """A readable stream that closes a context manager (decompressor + file) with it."""

    def __init__(self, cm: AbstractContextManager[BinaryIO]) -> None:
        self._cm = cm
        self._fh = cm.__enter__()

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._fh.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._cm.__exit__(None, None, None)
        super().close()


def _seekable(blob: Blob, stack: ExitStack) -> BinaryIO:
    """A seekable handle on the blob (a real file or zip window; else a temp copy)."""
    fh = stack.enter_context(blob.open())
    if fh.seekable():
        return fh
    return stack.enter_context(stack.enter_context(_materialized(blob)).open("rb"))


def _scan_storage(blob: Blob, fmt: ArtifactFormat, head: bytes, ctx: ScanContext) -> None:
    """A torch ``data/<n>`` member: raw bytes by naming convention, not by proof.

    Its content is scanned like any blob's.  Anything dangerous found is reported;
    content that *is* a known format (a pickle, an archive ...) is itself a finding
    (torch never reads a storage as one, another loader would); bytes that merely
    start like a format and fail to parse as it are raw tensor data.
    """
    trial = ScanContext(ctx.limits, ctx.policy)
    try:
        recognised = _scan_content(blob, fmt, head, trial)
    except Exception as e:  # bytes that look like a format but break its parser
        trial.error("scanner_error", f"{type(e).__name__}: {e}", file=blob.where.file,
                    member=blob.where.member)
        recognised = True
    errors = [f for f in trial.findings if f.severity is Severity.ERROR]
    if any(f.severity is not Severity.ERROR for f in trial.findings):
        ctx.findings.extend(trial.findings)
    if recognised and not errors and fmt not in (ArtifactFormat.TEXT, ArtifactFormat.JSON):
        what = fmt.value if fmt is not ArtifactFormat.UNKNOWN else "pickle or archive"
        ctx.add("torch_storage_disguised", "member is named as raw tensor storage but its "
                f"content is a well-formed {what}", file=blob.where.file,
                member=blob.where.member)


def _pickle_alongside(blob: Blob, ctx: ScanContext, stack: ExitStack) -> None:
    """A tar (or anything) that a pickle loader may also read: scan the pickle side too."""
    parsed, imports = _trial(blob, stack, ctx)
    if parsed or imports:
        scan_pickle_stream(_opener(blob, stack), blob.where, ctx, torch=blob.hint == "torch")


def _trial(blob: Blob, stack: ExitStack, ctx: ScanContext) -> tuple[bool, bool]:
    """Run the pickle emulator on a blob that may or may not be a pickle.

    Returns (parsed, imports): *parsed* when it is a pickle or a *prefix* of one
    (every opcode valid until the data ran out: a truncated pickle, refused later);
    *imports* when, before failing, it would import a disallowed global from a module
    that exists here (a missing module makes pickle.load fail harmlessly, so a label
    file reading ``cat\\ndog`` is text, while ``cos\\nsystem`` is not).
    """
    trial = ScanContext(ctx.limits, ctx.policy)
    machine = PickleMachine(_opener(blob, stack)(), blob.where, trial,
                            mode=PickleMode(report_errors=False))
    parsed = False
    try:
        machine.run()
        parsed = True
    except Truncated:
        parsed = True
    except Exception:  # any other failure means "not a pickle"
        parsed = False
    imports = any(not ctx.allows(module, name) and _module_exists(module)
                  for module, name in machine.globals_seen)
    return parsed, imports


def _module_exists(module: str) -> bool:
    """Whether the top-level package of *module* is importable (found, never imported)."""
    top = module.split(".", 1)[0]
    if not top.isidentifier():
        return False
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return True  # cannot tell: fail closed


def _text_or_pickle(blob: Blob, fmt: ArtifactFormat, ctx: ScanContext,
                    stack: ExitStack) -> bool:
    """Text or bytes of no magic: a protocol 0/1 pickle, a prefixed archive, or opaque.

    Returns whether the content was recognised as a pickle or an archive.
    """
    parsed, imports = _trial(blob, stack, ctx)
    if parsed or imports:
        # protocol 0/1 pickle (or a prefix of one that imports code before failing)
        scan_pickle_stream(_opener(blob, stack), blob.where, ctx, torch=blob.hint == "torch")
        return True
    # zipfile accepts archives with a prefix (it reads the end).  No tarfile.is_tarfile
    # here: it says yes to any run of zero bytes (an empty archive), e.g. a zero bias;
    # real tar headers were recognised by detect() (magic or header checksum)
    fh = _seekable(blob, stack)
    if zipfile.is_zipfile(fh):
        scan_zip(fh, blob.where, ctx, scan_blob)
        return True
    if fmt is ArtifactFormat.UNKNOWN and not _opaque_allowed(blob, ctx):
        ctx.add("unknown_format", "content is none of the formats the scanner knows (not a "
                "pickle, archive, ONNX, safetensors, numpy, HDF5, JSON or text), so nothing "
                "can be said about it; an admin can accept opaque data files with "
                "'bastion model scan-policy allow --opaque-data --project P'",
                file=blob.where.file, member=blob.where.member, severity=Severity.UNKNOWN)
    return False


def _opaque_allowed(blob: Blob, ctx: ScanContext) -> bool:
    """Opaque bytes are accepted as raw tensor data (torch storage, ONNX external data
    named by a scanned model) or when the project's policy allows opaque data files."""
    if blob.hint == "torch-storage" or ctx.policy.allow_opaque_data:
        return True
    return blob.path is not None and blob.where.member is None and \
        blob.path.resolve() in ctx.tensor_data_paths
