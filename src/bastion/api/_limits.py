"""Request limits of the API server, read once from settings and passed down frozen.

Every limit, its default and its environment variable is listed in docs/security.md.
The server enforces them in three places:

- uvicorn (``server.py``): header size, header-receipt deadline, keep-alive, connections;
- the request gate (``_gate.py``): body size per route kind (413), body-receipt deadline (408);
- the upload helpers (``_uploads.py``): archive expansion (bytes, members, ratio).

Example::

    limits = ApiLimits.from_settings(BastionSettings())
    limits.body_limit(BodyKind.UPLOAD)   # 2 GiB by default
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from bastion.api._proxies import TrustedProxies
from bastion.core.errors import InputError
from bastion.core.settings import BastionSettings

MIB = 1024 * 1024
GIB = 1024 * MIB


class BodyKind(enum.Enum):
    """What a route accepts as its body; each kind has its own size limit."""

    JSON = "json"
    UPLOAD = "upload"
    MODEL = "model"


class PayloadTooLarge(InputError):
    code = "payload_too_large"


class RequestTimeout(InputError):
    code = "request_timeout"


class ArchiveTooLarge(InputError):
    """An archive whose expansion exceeds the caps (a decompression bomb or just too big)."""

    code = "archive_too_large"


@dataclass(frozen=True)
class ArchiveCaps:
    """How far an uploaded archive may expand."""

    max_bytes: int = 8 * GIB
    max_members: int = 10_000
    max_ratio: int = 100


@dataclass(frozen=True)
class ApiLimits:
    """Every request limit of the server (defaults match ``BastionSettings``)."""

    max_json_bytes: int = 1 * MIB
    max_upload_bytes: int = 2 * GIB
    max_model_bytes: int = 4 * GIB
    archive: ArchiveCaps = ArchiveCaps()
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive: int = 5
    max_header_bytes: int = 16 * 1024
    max_connections: int = 512
    proxies: TrustedProxies = field(default_factory=TrustedProxies)

    @classmethod
    def from_settings(cls, s: BastionSettings) -> ApiLimits:
        return cls(
            max_json_bytes=s.api_max_json_bytes,
            max_upload_bytes=s.api_max_upload_bytes,
            max_model_bytes=s.api_max_model_bytes,
            archive=ArchiveCaps(
                s.api_archive_max_bytes, s.api_archive_max_members, s.api_archive_max_ratio
            ),
            header_timeout=s.api_header_timeout,
            body_timeout=s.api_body_timeout,
            keep_alive=s.api_keep_alive,
            max_header_bytes=s.api_max_header_bytes,
            max_connections=s.api_max_connections,
            proxies=TrustedProxies.parse(s.api_trusted_proxies),
        )

    def body_limit(self, kind: BodyKind) -> int:
        return {
            BodyKind.JSON: self.max_json_bytes,
            BodyKind.UPLOAD: self.max_upload_bytes,
            BodyKind.MODEL: self.max_model_bytes,
        }[kind]


def env_name(kind: BodyKind) -> str:
    """The environment variable that raises the limit of ``kind`` (for error hints)."""
    return f"BASTION_API_MAX_{kind.name}_BYTES"


__all__ = [
    "ApiLimits",
    "ArchiveCaps",
    "ArchiveTooLarge",
    "BodyKind",
    "PayloadTooLarge",
    "RequestTimeout",
    "env_name",
]
