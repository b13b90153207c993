"""The webhook SSRF guard: each attack named; registration and delivery checks alike."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.serving.errors import WebhookRefused
from bastion.serving.webhooks import TargetGuard, forbidden, sign, verify_signature


def _resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    return lambda host, port: table.get(host, [])


PUBLIC = _resolver({"hooks.example.com": ["93.184.216.34"]})


def _refused(url: str, words: str, guard: TargetGuard | None = None) -> None:
    g = guard or TargetGuard(PUBLIC)
    with pytest.raises(WebhookRefused) as e:
        g.pin(g.check(url))
    assert words in e.value.message, e.value.message


@pytest.mark.parametrize(("url", "words"), [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://10.0.0.1/", "private"),
    ("http://192.168.1.10/", "private"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://100.64.0.1/", "not a global"),
])
def test_internal_address_literals_are_refused(url: str, words: str) -> None:
    _refused(url, words)


@pytest.mark.parametrize(("url", "means"), [
    ("http://2130706433/", "127.0.0.1"),  # decimal
    ("http://0177.0.0.1/", "127.0.0.1"),  # octal
    ("http://0x7f.1/", "127.0.0.1"),  # hex, short form
    ("http://0x7f000001/", "127.0.0.1"),
    ("http://017700000001/", "127.0.0.1"),
    ("http://127.1/", "127.0.0.1"),
])
def test_decimal_octal_hex_ip_forms_are_read_as_the_address_they_mean(url: str,
                                                                      means: str) -> None:
    _refused(url, f"means {means}")


def test_non_canonical_form_of_a_public_address_is_refused_too() -> None:
    _refused("http://1572395042/", "non-canonical")


@pytest.mark.parametrize("url", [
    "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::10.0.0.1]/", "http://[2002:7f00:1::]/",
])
def test_ipv4_mapped_and_embedded_ipv6_is_refused(url: str) -> None:
    _refused(url, "embedded in")


def test_hostname_resolving_to_loopback_is_refused() -> None:
    guard = TargetGuard(_resolver({"evil.example": ["127.0.0.1"]}))
    target = guard.check("https://evil.example/hook")  # a name passes the syntax check...
    with pytest.raises(WebhookRefused, match=r"resolves to 127\.0\.0\.1"):
        guard.pin(target)  # ...and is refused once resolved


def test_hostname_with_one_private_address_among_public_ones_is_refused() -> None:
    guard = TargetGuard(_resolver({"mixed.example": ["93.184.216.34", "10.1.2.3"]}))
    _refused("https://mixed.example/", "resolves to 10.1.2.3", guard)


def test_dns_rebinding_is_caught_at_delivery_and_the_checked_address_is_pinned() -> None:
    answers = [["93.184.216.34"], ["127.0.0.1"]]
    guard = TargetGuard(lambda host, port: answers.pop(0))
    pinned = guard.pin(guard.check("https://rebind.example/x"))  # at registration: public
    assert pinned.connect_url == "https://93.184.216.34:443/x"  # the connection goes there
    assert pinned.host_header == "rebind.example"
    _refused("https://rebind.example/x", "resolves to 127.0.0.1", guard)  # at delivery


@pytest.mark.parametrize(("url", "words"), [
    ("http://evil@127.0.0.1/", "credentials"),
    ("http://user:pw@hooks.example.com/", "credentials"),
    ("http://hooks.example.com@127.0.0.1/", "credentials"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://hooks.example.com/", "scheme"),
    ("ftp://hooks.example.com/", "scheme"),
    ("http://hooks.example.com:99999/", "port"),
    ("http://hooks.example.com/a b", "spaces"),
    ("http://hooks.example.com\\@127.0.0.1/", "backslashes"),
    ("http:///nohost", "no host"),
    ("http://[fe80::1%25eth0]/", "zone"),
    ("http://%31%32%37.0.0.1/", "encoded"),
    ("http://nowhere.example/", "does not resolve"),
])
def test_userinfo_tricks_schemes_and_malformed_urls_are_refused(url: str, words: str) -> None:
    _refused(url, words)


def test_public_target_passes_and_keeps_port_path_and_query() -> None:
    g = TargetGuard(PUBLIC)
    pinned = g.pin(g.check("https://hooks.example.com:8443/in?team=ml"))
    assert pinned.connect_url == "https://93.184.216.34:8443/in?team=ml"
    assert pinned.host_header == "hooks.example.com:8443"


def test_loopback_allowance_is_for_loopback_only() -> None:
    g = TargetGuard(PUBLIC, unsafe_allow_loopback_for_tests=True)
    assert g.pin(g.check("http://127.0.0.1:9/x")).connect_url == "http://127.0.0.1:9/x"
    _refused("http://169.254.169.254/", "link-local", g)
    _refused("http://10.0.0.1/", "private", g)
    _refused("http://[::1]/", "loopback", g)


def test_signature_verifies_and_a_changed_body_or_time_does_not() -> None:
    headers = sign(b"k" * 32, b'{"a":1}', timestamp=1700000000)
    sig = headers["X-Bastion-Signature"]
    assert sig.startswith("sha256=") and headers["X-Bastion-Timestamp"] == "1700000000"
    assert verify_signature(b"k" * 32, b'{"a":1}', 1700000000, sig)
    assert not verify_signature(b"k" * 32, b'{"a":2}', 1700000000, sig)
    assert not verify_signature(b"k" * 32, b'{"a":1}', 1700000001, sig)
    assert not verify_signature(b"x" * 32, b'{"a":1}', 1700000000, sig)


# -- property: every spelling of an address is judged as that address ---------------------
@given(st.ip_addresses(v=4))
def test_every_ipv4_spelling_is_refused_unless_canonical_and_global(ip: object) -> None:
    assert isinstance(ip, ipaddress.IPv4Address)
    g = TargetGuard(PUBLIC)
    n = int(ip)
    octets = str(ip).split(".")
    for odd in (f"{n}", f"0x{n:x}", ".".join(f"0{int(o):o}" for o in octets),
                ".".join(f"0x{int(o):x}" for o in octets)):
        with pytest.raises(WebhookRefused):
            g.check(f"http://{odd}/")
    bad = forbidden(ip)
    for url in (f"http://{ip}/", f"http://[::ffff:{ip}]/"):
        if bad:
            with pytest.raises(WebhookRefused):
                g.pin(g.check(url))
        else:
            assert g.pin(g.check(url)).address is not None
