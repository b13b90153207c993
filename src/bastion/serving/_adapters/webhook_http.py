"""The webhook :class:`~bastion.serving.delivery.Poster` over httpx.

It connects to the *pinned* address (never resolving the name again), sends the original
host as ``Host`` and, for https, as the TLS server name (SNI) the certificate is checked
against; no redirects are followed and no proxy or ``.netrc`` from the environment is used.
Only the status line and headers are read: the receiver's body is never read nor decoded,
so an endless or compressed (bomb) answer costs nothing.  ``timeout`` bounds the whole
attempt, not only each read: at the deadline the socket is shut down, so a receiver that
drips its answer a byte at a time cannot hold the (single) sender thread.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from typing import Any

import httpx

from bastion.serving.webhooks import PinnedTarget


class HttpPoster:
    """``verify``: how the receiver's certificate is checked (default: the system's CAs)."""

    def __init__(self, verify: ssl.SSLContext | bool = True) -> None:
        self._verify = verify

    def post(self, target: PinnedTarget, body: bytes, headers: dict[str, str],
             timeout: float) -> int:
        sockets: list[socket.socket] = []
        expired = threading.Event()

        def trace(event: str, info: dict[str, Any]) -> None:
            if event == "connection.connect_tcp.complete":
                # a duplicate descriptor of the connection: still valid once TLS wraps (and
                # detaches) the original, and shutting it down ends the connection itself
                sockets.append(info["return_value"].get_extra_info("socket").dup())
                if expired.is_set():  # connected just after the deadline
                    expire()

        def expire() -> None:
            expired.set()
            for s in sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)  # unblocks the read in progress

        extensions: dict[str, Any] = {"trace": trace}
        if target.target.scheme == "https":
            extensions["sni_hostname"] = target.target.host
        deadline = threading.Timer(timeout, expire)
        deadline.daemon = True
        deadline.start()
        try:
            with (httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False,
                               verify=self._verify) as c,
                  c.stream("POST", target.connect_url, content=body,
                           headers={**headers, "Host": target.host_header},
                           extensions=extensions) as r):
                return r.status_code  # the body is not read
        except httpx.TransportError as e:  # connect, read, timeout: the sender retries
            if expired.is_set():
                raise TimeoutError(f"no answer within {timeout:g} s") from e
            raise OSError(f"{type(e).__name__}: {e}") from e
        finally:
            deadline.cancel()
            for s in sockets:
                s.close()


__all__ = ["HttpPoster"]
