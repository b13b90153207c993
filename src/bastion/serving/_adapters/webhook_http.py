"""The webhook :class:`~bastion.serving.delivery.Poster` over httpx.

It connects to the *pinned* address (never resolving the name again), sends the original
host as ``Host`` and, for https, as the TLS server name (SNI) the certificate is checked
against; no redirects are followed and no proxy or ``.netrc`` from the environment is used.
Only the status line and headers are read: the receiver's body is never read nor decoded,
so an endless or compressed (bomb) answer costs nothing.
"""

from __future__ import annotations

import httpx

from bastion.serving.webhooks import PinnedTarget


class HttpPoster:
    def post(self, target: PinnedTarget, body: bytes, headers: dict[str, str],
             timeout: float) -> int:
        extensions = {"sni_hostname": target.target.host} \
            if target.target.scheme == "https" else {}
        try:
            with (httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as c,
                  c.stream("POST", target.connect_url, content=body,
                           headers={**headers, "Host": target.host_header},
                           extensions=extensions) as r):
                return r.status_code  # the body is not read
        except httpx.TransportError as e:  # connect, read, timeout: the sender retries
            raise OSError(f"{type(e).__name__}: {e}") from e


__all__ = ["HttpPoster"]
