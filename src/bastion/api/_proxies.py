"""The client address of a request: forwarding headers count only behind trusted proxies.

``X-Forwarded-For`` and ``Forwarded`` are written by whoever sends the request, so a
client that reaches the server directly can claim any address in them.  They are
read only when the TCP peer is in ``BASTION_API_TRUSTED_PROXIES`` (comma-separated
CIDRs; empty, the default, ignores them).  Then the chain (header entries, then the
peer) is walked from the right: every hop that is a trusted proxy is skipped, and the
first one that is not is the client: an address a client put on the left of the
chain is never taken while a trusted proxy appended the real one to its right.

Refused, falling back to the last trusted hop that spoke (never to a claimed
address): a malformed entry (not an IP address, ``unknown``, an obfuscated
``_name``), a chain longer than 32 hops, and a request carrying *both* headers —
a proxy that writes one passes the other through unchanged from the client, so
which of the two it wrote cannot be told.

Example::

    proxies = TrustedProxies.parse("10.0.0.0/8, 192.168.1.7")
    proxies.client("10.1.2.3", [(b"x-forwarded-for", b"203.0.113.9")])   # "203.0.113.9"
    proxies.client("198.51.100.4", [(b"x-forwarded-for", b"1.2.3.4")])   # "198.51.100.4"
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from bastion.core.errors import ConfigurationError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_HOPS = 32
_XFF = b"x-forwarded-for"
_FORWARDED = b"forwarded"


def _address(text: str) -> IPAddress | None:
    """An IP address from one hop as headers write it (``[v6]:port``, ``v4:port``)."""
    text = text.strip().strip('"').strip()
    if text.startswith("["):  # "[2001:db8::1]:4711"
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # "192.0.2.1:4711"
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _forwarded_for(value: str) -> list[str]:
    """The ``for=`` of each element of an RFC 7239 ``Forwarded`` value ('' when absent)."""
    hops = []
    for element in value.split(","):
        found = ""
        for pair in element.split(";"):
            key, _, v = pair.partition("=")
            if key.strip().lower() == "for":
                found = v
        hops.append(found)
    return hops


@dataclass(frozen=True)
class TrustedProxies:
    """See the module docstring."""

    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        networks = []
        for item in (p.strip() for p in text.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigurationError(
                    f"BASTION_API_TRUSTED_PROXIES: {item[:60]!r} is not an IP address or CIDR",
                    hint="list the proxies in front of the server, e.g. 10.0.0.0/8,192.0.2.7",
                ) from None
        return cls(tuple(networks))

    def trusts(self, address: IPAddress) -> bool:
        return any(address in n for n in self.networks)

    def client(self, peer: str, headers: Iterable[tuple[bytes, bytes]]) -> str:
        """The client address of a request from TCP ``peer`` with these raw headers."""
        peer_ip = _address(peer)
        if not self.networks or peer_ip is None or not self.trusts(peer_ip):
            return peer
        xff: list[str] = []
        fwd: list[str] = []
        for key, value in headers:
            if key == _XFF:
                xff.extend(value.decode("latin-1").split(","))
            elif key == _FORWARDED:
                fwd.extend(_forwarded_for(value.decode("latin-1")))
        if (xff and fwd) or len(xff) + len(fwd) > MAX_HOPS:
            return peer  # ambiguous or absurd: only the peer is known
        last = peer_ip
        for hop in reversed(xff or fwd):
            address = _address(hop)
            if address is None:
                return str(last)  # nothing left of a malformed hop can be trusted
            if not self.trusts(address):
                return str(address)
            last = address
        return str(last)  # every hop is a proxy of ours: the leftmost one spoke first


__all__ = ["MAX_HOPS", "TrustedProxies"]
