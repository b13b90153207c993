"""The client address from forwarding headers, believed only behind trusted proxies."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.api._proxies import MAX_HOPS, TrustedProxies
from bastion.core.errors import ConfigurationError

PROXIES = TrustedProxies.parse("10.0.0.0/8, 192.0.2.7, 2001:db8:ffff::/48")


def xff(value: str) -> list[tuple[bytes, bytes]]:
    return [(b"x-forwarded-for", value.encode("latin-1"))]


def test_spoofed_x_forwarded_for_is_ignored_when_no_proxy_is_trusted() -> None:
    assert TrustedProxies().client("198.51.100.4", xff("1.2.3.4")) == "198.51.100.4"


def test_spoofed_x_forwarded_for_is_ignored_from_an_untrusted_peer() -> None:
    assert PROXIES.client("198.51.100.4", xff("10.0.0.1, 1.2.3.4")) == "198.51.100.4"


def test_the_right_hop_is_taken_behind_a_chain_of_trusted_proxies() -> None:
    # the client claimed 6.6.6.6; the first proxy of ours appended the real 203.0.113.9
    chain = xff("6.6.6.6, 203.0.113.9, 10.9.9.9, 192.0.2.7")
    assert PROXIES.client("10.1.2.3", chain) == "203.0.113.9"


def test_several_header_lines_are_one_chain() -> None:
    lines = [(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-for", b"203.0.113.9, 10.0.0.5")]
    assert PROXIES.client("10.1.2.3", lines) == "203.0.113.9"


def test_forwarded_header_with_ipv6_and_port() -> None:
    headers = [(b"forwarded", b'for=6.6.6.6, for="[2001:db8::7]:4711";proto=https, for=10.0.0.9')]
    assert PROXIES.client("10.1.2.3", headers) == "2001:db8::7"


def test_ipv4_with_port_in_x_forwarded_for() -> None:
    assert PROXIES.client("10.1.2.3", xff("203.0.113.9:5555")) == "203.0.113.9"


def test_only_trusted_hops_give_the_leftmost() -> None:
    assert PROXIES.client("10.1.2.3", xff("10.0.0.1, 10.0.0.2")) == "10.0.0.1"


def test_no_header_behind_a_proxy_gives_the_proxy() -> None:
    assert PROXIES.client("10.1.2.3", []) == "10.1.2.3"


@pytest.mark.parametrize(
    "value", ["unknown", "<script>", "_hidden", "", "1.2.3.4.5", "::ffff:zz", "\x00\xff"]
)
def test_malformed_forwarded_for_falls_back_to_the_last_trusted_hop(value: str) -> None:
    got = PROXIES.client("10.1.2.3", xff(f"6.6.6.6, {value}"))
    assert got == "10.1.2.3"


def test_malformed_hop_left_of_the_real_client_is_not_reached() -> None:
    assert PROXIES.client("10.1.2.3", xff("garbage, 203.0.113.9")) == "203.0.113.9"


def test_spoofed_forwarded_next_to_x_forwarded_for_is_ambiguous_and_ignored() -> None:
    headers = [(b"forwarded", b"for=6.6.6.6"), (b"x-forwarded-for", b"203.0.113.9")]
    assert PROXIES.client("10.1.2.3", headers) == "10.1.2.3"


def test_overlong_forwarding_chain_is_ignored() -> None:
    chain = ", ".join(["10.0.0.1"] * MAX_HOPS + ["203.0.113.9"])
    assert PROXIES.client("10.1.2.3", xff(chain)) == "10.1.2.3"


def test_bad_trusted_proxy_setting_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="not an IP address or CIDR"):
        TrustedProxies.parse("10.0.0.0/8, proxy.example")


@given(st.binary(max_size=300))
def test_any_header_bytes_give_an_address_never_an_exception(raw: bytes) -> None:
    for name in (b"x-forwarded-for", b"forwarded"):
        got = PROXIES.client("10.1.2.3", [(name, raw)])
        assert str(ipaddress.ip_address(got)) == got  # an address, never the raw header
