"""Webhook targets that cannot be turned against the machine that calls them (SSRF), and
the signature a receiver checks.

A webhook URL is attacker-influenced input: pointed at ``http://169.254.169.254`` it reads
cloud credentials, at ``http://127.0.0.1:6379`` it talks to Redis.  :class:`TargetGuard`
refuses any target that is not a plain ``http``/``https`` URL to a *global* address:

- no userinfo (``http://evil@127.0.0.1``), no control characters or spaces, a bounded
  length, a port that parses;
- IP literals in every form a resolver accepts — decimal ``2130706433``, octal
  ``0177.0.0.1``, hex ``0x7f.1``, IPv4-mapped IPv6 ``[::ffff:127.0.0.1]``, 6to4, Teredo,
  NAT64 — are read as the address they mean; a non-canonical IPv4 form is refused even when
  it means a public address (libraries disagree on what it means);
- loopback, link-local, private, shared (CGNAT), multicast, reserved and unspecified
  addresses are refused (``ipaddress``'s ``is_global`` plus the named classes);
- a host name is resolved and *every* address it resolves to must pass; the connection is
  then made to the address that was checked (pinned), so a DNS answer that changes between
  check and connect (rebinding) changes nothing.  The check runs at registration and again
  at every delivery.

The only way to reach loopback is the constructor argument
``unsafe_allow_loopback_for_tests`` — no setting or environment variable maps to it, so a
deployment's configuration cannot enable it.

The signature: ``X-Bastion-Signature: sha256=HEX`` where HEX is HMAC-SHA256 (stdlib
``hmac``) under the webhook's secret of ``TIMESTAMP + "." + BODY``, with
``X-Bastion-Timestamp: TIMESTAMP`` (seconds since the epoch; receivers reject old ones).

Example::

    guard = TargetGuard()
    target = guard.check("https://hooks.example.com/bastion")   # raises WebhookRefused
    pinned = guard.pin(target)                                  # resolve, check, pin
    headers = sign(secret, body, timestamp=int(time.time()))
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from bastion.serving.errors import WebhookRefused

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
#: host, port -> the addresses it resolves to (strings); injected in tests (no network)
Resolver = Callable[[str, int], list[str]]
MAX_URL = 2048
SIGNATURE_HEADER = "X-Bastion-Signature"
TIMESTAMP_HEADER = "X-Bastion-Timestamp"
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOOPBACK_V4 = ipaddress.IPv4Network("127.0.0.0/8")


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (``getaddrinfo``)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class WebhookTarget:
    """A URL that passed the syntactic checks: scheme, host (lowercase), port, path."""

    url: str
    scheme: str
    host: str
    port: int
    path: str  # path and query, at least "/"
    literal: IP | None  # the host is an IP literal


@dataclass(frozen=True)
class PinnedTarget:
    """Where to connect (an address that was checked) and what to call it (Host, SNI)."""

    target: WebhookTarget
    address: IP

    @property
    def connect_url(self) -> str:
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{self.target.scheme}://{host}:{self.target.port}{self.target.path}"

    @property
    def host_header(self) -> str:
        default = 443 if self.target.scheme == "https" else 80
        host = self.target.host if self.target.literal is None or \
            self.target.literal.version == 4 else f"[{self.target.host}]"
        return host if self.target.port == default else f"{host}:{self.target.port}"


def shown_url(url: str) -> str:
    """``url`` without its path and query (``https://hooks.example.com/…``): many receivers
    (chat webhooks) take the path as their only credential, so only the admin who typed
    the URL sees it whole; listings, logs, delivery errors and the audit see this."""
    try:
        parts = urlsplit(url[:MAX_URL])
    except ValueError:
        return "(unparsable URL)"
    hidden = "/…" if parts.path.strip("/") or parts.query or parts.fragment else ""
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2][:200]}{hidden}"


def _refuse(url: str, why: str) -> WebhookRefused:
    return WebhookRefused(
        f"webhook target {shown_url(url)!r} refused: {why}",
        hint="use an http(s) URL to a public host name or address, without credentials "
             "(webhooks may not reach loopback, link-local, private or reserved addresses)")


def _ipv4_literal(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a resolver would read ``host`` as (``inet_aton`` accepts the
    decimal, octal, hex and short forms), or None when it is a name."""
    if not host or not all(c in "0123456789abcdefx." for c in host):
        return None
    try:
        packed = socket.inet_aton(host)
    except OSError:
        return None
    return ipaddress.IPv4Address(packed)


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    compat = int(ip)  # deprecated IPv4-compatible ::a.b.c.d
    if compat >> 32 == 0 and compat > 1:
        return ipaddress.IPv4Address(compat)
    return None


def forbidden(ip: IP) -> str | None:
    """Why ``ip`` may not be a webhook target, or None when it is a global address."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            why = forbidden(inner)
            return f"{why} (embedded in {ip})" if why else None
    for name in ("unspecified", "loopback", "link_local", "multicast", "reserved", "private"):
        if getattr(ip, f"is_{name}"):
            return f"{ip} is a {name.replace('_', '-')} address"
    if not ip.is_global:
        return f"{ip} is not a global address"
    return None


class TargetGuard:
    """See the module docstring.  ``unsafe_allow_loopback_for_tests`` lets tests deliver to a
    receiver on 127.0.0.0/8 (only that; private and metadata addresses stay refused)."""

    def __init__(self, resolver: Resolver = system_resolver, *,
                 unsafe_allow_loopback_for_tests: bool = False) -> None:
        self._resolve = resolver
        self._loopback_ok = unsafe_allow_loopback_for_tests

    def check(self, url: str) -> WebhookTarget:
        """Syntactic checks and IP literals; raises :class:`WebhookRefused`."""
        if len(url) > MAX_URL:
            raise _refuse(url, f"longer than {MAX_URL} characters")
        if any(ord(c) <= 0x20 or ord(c) == 0x7F or c == "\\" for c in url):
            raise _refuse(url, "it contains spaces, backslashes or control characters")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise _refuse(url, f"scheme {parts.scheme!r} is not http or https")
        if "@" in parts.netloc or parts.username is not None or parts.password is not None:
            raise _refuse(url, "credentials (user@) in the URL are not allowed")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise _refuse(url, "no host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as e:
            raise _refuse(url, "the port is not a number in 1..65535") from e
        if "%" in host:
            raise _refuse(url, "percent signs in the host (IPv6 zone ids, encoded characters) "
                               "are not allowed")
        literal = self._literal(url, host)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        target = WebhookTarget(url, parts.scheme, host, port, path, literal)
        if literal is not None:
            self._allowed(url, literal)
        return target

    def _literal(self, url: str, host: str) -> IP | None:
        try:
            return ipaddress.ip_address(host)  # canonical dotted quad or IPv6
        except ValueError:
            pass
        v4 = _ipv4_literal(host)
        if v4 is not None:
            why = forbidden(v4) or "a non-canonical IPv4 form (write it as a dotted quad)"
            raise _refuse(url, f"{host!r} means {v4}: {why}")
        return None

    def _allowed(self, url: str, ip: IP) -> None:
        why = forbidden(ip)
        if why is None:
            return
        if self._loopback_ok and isinstance(ip, ipaddress.IPv4Address) and ip in _LOOPBACK_V4:
            return
        raise _refuse(url, why)

    def pin(self, target: WebhookTarget) -> PinnedTarget:
        """Resolve the host now and check every address; connect to the first one."""
        if target.literal is not None:
            self._allowed(target.url, target.literal)
            return PinnedTarget(target, target.literal)
        found = self._resolve(target.host, target.port)
        if not found:
            raise _refuse(target.url, f"{target.host} does not resolve")
        addresses: list[IP] = []
        for text in found:
            try:
                ip = ipaddress.ip_address(text.split("%")[0])
            except ValueError as e:
                raise _refuse(target.url, f"{target.host} resolved to {text!r}") from e
            try:
                self._allowed(target.url, ip)
            except WebhookRefused as e:
                raise _refuse(target.url, f"{target.host} resolves to {ip}: "
                                          f"{forbidden(ip)}") from e
            addresses.append(ip)
        return PinnedTarget(target, addresses[0])


def signature(secret: bytes, body: bytes, timestamp: int) -> str:
    """``sha256=HEX``: HMAC-SHA256 under ``secret`` of ``b"TIMESTAMP." + body``."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def sign(secret: bytes, body: bytes, *, timestamp: int) -> dict[str, str]:
    """The headers of a signed delivery."""
    return {SIGNATURE_HEADER: signature(secret, body, timestamp),
            TIMESTAMP_HEADER: str(timestamp)}


def verify_signature(secret: bytes, body: bytes, timestamp: int, header: str) -> bool:
    """What a receiver does (constant-time comparison)."""
    return hmac.compare_digest(signature(secret, body, timestamp), header)


__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "PinnedTarget",
    "Resolver",
    "TargetGuard",
    "WebhookTarget",
    "forbidden",
    "shown_url",
    "sign",
    "signature",
    "system_resolver",
    "verify_signature",
]
