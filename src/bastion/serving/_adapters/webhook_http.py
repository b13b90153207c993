"""The webhook :class:`~bastion.serving.delivery.Poster` over httpx.

It connects to the *pinned* address (never resolving the name again), sends the original
host as ``Host`` and, for https, as the TLS server name (SNI) the certificate is checked
against; no redirects are followed and no proxy or ``.netrc`` from the environment is used.
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
            with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as c:
                r = c.post(target.connect_url, content=body,
                           headers={**headers, "Host": target.host_header},
                           extensions=extensions)
        except httpx.TransportError as e:  # connect, read, timeout: the sender retries
            raise OSError(f"{type(e).__name__}: {e}") from e
        return r.status_code


__all__ = ["HttpPoster"]
