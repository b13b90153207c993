"""Malicious-model scanning: refuse artifacts that could run code when loaded.

The pipeline is *detect -> parse without executing -> decide by allow-list*:

- ``detect.py``        format from magic bytes (extensions lie)
- ``pickle_vm.py``     pickle emulator (stack + memo exact, protocols 0-5);
  ``pickle_opcodes.py`` its opcode handlers, ``pickle_values.py`` its symbolic values
- ``pickle_scan.py``   multi-pickle streams, legacy (non-zip) torch files
- ``torch_legacy.py``  the torch<0.4 tar checkpoint format
- ``joblib_format.py`` joblib arrays inside the pickle stream, compressed joblib
- ``allowlist.py``     the globals a supported model may import
- ``archive.py``       zip (PyTorch, Keras, npz) and tar containers, bombs, traversal
- ``streams.py``       bounded streaming reads and decompression (no whole-file reads)
- ``interface.py``     the values (Verdict, Finding, ScanReport, ScanLimits) and ports
- ``safetensors_format.py``, ``onnx_format.py``, ``keras.py``, ``numpy_format.py``
- ``scanner.py``       the service: :func:`scan_path`, :func:`scan_bytes`, :func:`require_safe`

Any parse failure is an ``ERROR`` verdict (refused), never "no issues".

Example::

    from bastion.model_security.scanning import require_safe
    report = require_safe(Path("credit-model.joblib"))   # raises MaliciousArtifact
    print(report.render())
"""

from __future__ import annotations

from bastion.model_security.scanning.interface import (
    SCANNER_VERSION,
    ArtifactFormat,
    FileScan,
    Finding,
    ScanLimits,
    ScanReport,
    Severity,
    Verdict,
)
from bastion.model_security.scanning.scanner import require_safe, scan_bytes, scan_path

__all__ = [
    "SCANNER_VERSION",
    "ArtifactFormat",
    "FileScan",
    "Finding",
    "ScanLimits",
    "ScanReport",
    "Severity",
    "Verdict",
    "require_safe",
    "scan_bytes",
    "scan_path",
]
