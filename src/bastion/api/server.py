"""Run the API under uvicorn (HTTPS when given a certificate and key).

Receipt limits (docs/security.md): uvicorn bounds the size of the request head
(``h11_max_incomplete_event_size``), idle keep-alive connections (``timeout_keep_alive``)
and concurrent connections (``limit_concurrency``: 503 beyond). uvicorn has no deadline
for the request head itself, so a client trickling one header byte every few seconds
holds its connection forever; :class:`HeaderDeadlineProtocol` adds one: a connection
whose request head is not complete ``header_timeout`` seconds after it opened (or after
its previous response) is closed. The body deadline is the request gate's (``_gate.py``).
"""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from bastion.api._limits import ApiLimits
from bastion.api.app import create_app
from bastion.core.access.cache import AccessCache
from bastion.core.errors import ConfigurationError
from bastion.core.settings import BastionSettings
from bastion.serving.gateway import GatewayOptions
from bastion.serving.monitor import MonitorOptions
from bastion.workspace import Bastion


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for receiving each request head."""

    header_timeout: float = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        self._arm()  # the next request head on this connection gets its own deadline
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self.header_timeout, self._expire)

    def _expire(self) -> None:
        # IDLE: the head of the next request has not been completely received.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def protocol_with(limits: ApiLimits) -> type[HeaderDeadlineProtocol]:
    return type("BastionH11", (HeaderDeadlineProtocol,), {"header_timeout": limits.header_timeout})


def uvicorn_options(limits: ApiLimits) -> dict[str, Any]:
    """The uvicorn settings that bound request receipt."""
    return {
        "http": protocol_with(limits),
        "h11_max_incomplete_event_size": limits.max_header_bytes,
        "timeout_keep_alive": limits.keep_alive,
        "limit_concurrency": limits.max_connections,
        # uvicorn's own default believes X-Forwarded-For from 127.0.0.1 (any local
        # process could claim any address); the request gate reads it, behind
        # BASTION_API_TRUSTED_PROXIES only (api/_proxies.py)
        "proxy_headers": False,
    }


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
        settings.resolved_home(),
        settings.master_source(),
        database_url=settings.database_url,
        witness_path=settings.audit_witness,
    )
    # the request hot path: verified tokens and bindings kept for a bounded window
    ws.access.cache = AccessCache(ttl=settings.api_access_cache_seconds)
    limits = ApiLimits.from_settings(settings)
    app = create_app(ws, limits)
    app.state.gateway_options = GatewayOptions.from_settings(settings)
    ws.monitor_options = MonitorOptions.from_settings(settings)  # retention, drift checks
    # What is loaded by now lives as long as the server: keep it out of the cyclic
    # collector's full passes. Unfrozen, each full pass walked every module object: a
    # stall of every request in flight, much of the gateway's p99 (docs/serving.md).
    gc.collect()
    gc.freeze()
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            ssl_certfile=str(tls_cert) if tls_cert else None,
            ssl_keyfile=str(tls_key) if tls_key else None,
            log_level="info",
            # one log line per request cost ~4 % of the gateway's CPU under load; every
            # decision is in the audit log and every prediction in the prediction log
            access_log=False,
            server_header=False,
            **uvicorn_options(limits),
        )
    finally:
        ws.close()


__all__ = ["HeaderDeadlineProtocol", "serve", "uvicorn_options"]
