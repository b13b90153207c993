"""The access cache of the request hot path (core/access/cache.py) on a real database.

The gateway process (``gw`` below: a second ``Bastion`` on the same workspace, as
``bastion serve`` is) keeps verified tokens and role bindings for ``TTL`` seconds. A
revocation, a disabled principal or a removed binding made by *another* process (the
admin's ``ws``) is refused there within that window; one made through the gateway's own
``AccessService`` at once. Refusals are never cached, and an expiry is checked on every
hit."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import sqlalchemy as sa

from bastion.core.access.cache import AccessCache
from bastion.core.access.values import PrincipalKind
from bastion.core.errors import AccessDenied, AuthenticationFailed, NotVisible
from bastion.workspace import Bastion
from conftest import WS

TTL = 0.5


def gateway(w: WS) -> Bastion:
    gw = w.reopen()
    gw.access.cache = AccessCache(ttl=TTL)
    return gw


def consumer(w: WS, name: str) -> str:
    w.ws.access.create_principal(w.admin, name, PrincipalKind.SERVICE)
    w.ws.access.bind(w.admin, name, "consumer", "default")
    return w.ws.access.create_token(w.admin, name).secret


def refused_after(check: object, limit: float) -> float:
    """Seconds until ``check()`` raises; fails if it still passes after ``limit``."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        try:
            check()  # type: ignore[operator]
        except (AuthenticationFailed, AccessDenied, NotVisible):
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"still accepted after {limit} s")


def test_token_revoked_by_another_process_is_refused_within_the_window(workspace: WS) -> None:
    gw = gateway(workspace)
    secret = consumer(workspace, "app")
    actor = gw.access.authenticate(secret)
    assert gw.access.cached_actor(secret, request_id="r") is not None  # cached now
    workspace.ws.access.revoke_token(workspace.admin, actor.token_id or "")
    took = refused_after(lambda: gw.access.authenticate(secret), 5 * TTL)
    assert took <= TTL + 0.2
    assert gw.access.cached_actor(secret, request_id="r") is None


def test_token_revoked_through_the_gateway_itself_is_refused_at_once(workspace: WS) -> None:
    gw = gateway(workspace)
    secret = consumer(workspace, "app")
    actor = gw.access.authenticate(secret)
    admin = gw.access.authenticate(workspace.token)
    gw.access.revoke_token(admin, actor.token_id or "")
    with pytest.raises(AuthenticationFailed, match="revoked"):
        gw.access.authenticate(secret)


def test_removed_binding_stops_authorizing_within_the_window(workspace: WS) -> None:
    gw = gateway(workspace)
    actor = gw.access.authenticate(consumer(workspace, "app"))
    gw.access.authorize(actor, "predict", "project/default/endpoint/scoring")
    workspace.ws.access.unbind(workspace.admin, "app", "consumer", "default")
    took = refused_after(
        lambda: gw.access.authorize(actor, "predict", "project/default/endpoint/scoring"),
        5 * TTL)
    assert took <= TTL + 0.2


def test_wrong_secret_with_a_cached_token_id_is_refused_and_audited(workspace: WS) -> None:
    gw = gateway(workspace)
    secret = consumer(workspace, "app")
    gw.access.authenticate(secret)
    prefix, tid, _ = secret.split("_")
    forged = f"{prefix}_{tid}_{'A' * 43}"  # the right id, not the secret
    assert gw.access.cached_actor(forged, request_id="r") is None
    with pytest.raises(AuthenticationFailed, match="not valid"):
        gw.access.authenticate(forged)


def test_expired_token_is_refused_even_while_cached(workspace: WS) -> None:
    gw = gateway(workspace)
    gw.access.cache = AccessCache(ttl=60)  # the window cannot be what refuses it
    workspace.ws.access.create_principal(workspace.admin, "temp", PrincipalKind.SERVICE)
    workspace.ws.access.bind(workspace.admin, "temp", "consumer", "default")
    issued = workspace.ws.access.create_token(workspace.admin, "temp",
                                              expires_in=dt.timedelta(seconds=2))
    gw.access.authenticate(issued.secret)
    assert gw.access.cached_actor(issued.secret, request_id="r") is not None
    time.sleep(2.1)
    assert gw.access.cached_actor(issued.secret, request_id="r") is None
    with pytest.raises(AuthenticationFailed, match="expired"):
        gw.access.authenticate(issued.secret)


def test_the_cache_is_off_unless_turned_on(workspace: WS) -> None:
    """The library and the CLI read the database every time (only ``bastion serve``
    turns the cache on): a change is seen at once."""
    other = workspace.reopen()
    secret = consumer(workspace, "app")
    actor = other.access.authenticate(secret)
    with workspace.ws.engine.begin() as c:
        c.execute(sa.text("UPDATE tokens SET revoked_at = :t WHERE id = :i"),
                  {"t": dt.datetime.now(dt.UTC).isoformat(), "i": actor.token_id})
    with pytest.raises(AuthenticationFailed, match="revoked"):
        other.access.authenticate(secret)
