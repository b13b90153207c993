"""Run the API under uvicorn (HTTPS when given a certificate and key)."""

from __future__ import annotations

from pathlib import Path

import uvicorn

from bastion.api.app import create_app
from bastion.core.errors import ConfigurationError
from bastion.core.settings import BastionSettings
from bastion.workspace import Bastion


def serve(
    settings: BastionSettings,
    *,
    host: str,
    port: int,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
) -> None:
    if (tls_cert is None) != (tls_key is None):
        raise ConfigurationError("give both --tls-cert and --tls-key, or neither")
    ws = Bastion.open(
        settings.resolved_home(), settings.master_source(), database_url=settings.database_url
    )
    try:
        uvicorn.run(
            create_app(ws),
            host=host,
            port=port,
            ssl_certfile=str(tls_cert) if tls_cert else None,
            ssl_keyfile=str(tls_key) if tls_key else None,
            log_level="info",
            server_header=False,
        )
    finally:
        ws.close()


__all__ = ["serve"]
