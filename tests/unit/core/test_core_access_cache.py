"""AccessCache alone, on a fake clock: the window, the generation guard, the bound."""

from __future__ import annotations

from bastion.core.access.cache import AccessCache, Subject, VerifiedToken
from bastion.core.access.values import PrincipalId, TokenId

ENTRY = VerifiedToken(PrincipalId("p1"), "app", TokenId("t1"), None)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_lives_exactly_the_window() -> None:
    clock = Clock()
    cache = AccessCache(ttl=1.0, clock=clock)
    cache.put_token(b"k", ENTRY, cache.generation)
    clock.now += 0.99
    assert cache.token(b"k") == ENTRY
    clock.now += 0.02
    assert cache.token(b"k") is None


def test_a_read_that_began_before_a_revocation_cannot_store_its_stale_result() -> None:
    """The race: a miss reads the token (still valid), a revocation here invalidates,
    then the miss stores what it read. The generation guard drops that store."""
    cache = AccessCache(ttl=10.0, clock=Clock())
    generation = cache.generation  # the read begins
    cache.invalidate()  # revoke_token in this process
    cache.put_token(b"k", ENTRY, generation)
    cache.put_subject(PrincipalId("p1"), Subject(None, ()), generation)
    assert cache.token(b"k") is None and cache.subject(PrincipalId("p1")) is None


def test_invalidate_forgets_everything_at_once() -> None:
    cache = AccessCache(ttl=10.0, clock=Clock())
    cache.put_token(b"k", ENTRY, cache.generation)
    cache.put_subject(PrincipalId("p1"), Subject(None, ()), cache.generation)
    cache.invalidate()
    assert cache.token(b"k") is None and cache.subject(PrincipalId("p1")) is None


def test_a_flood_of_distinct_tokens_is_bounded_in_memory() -> None:
    cache = AccessCache(ttl=10.0, max_entries=100, clock=Clock())
    for i in range(1000):
        cache.put_token(str(i).encode(), ENTRY, cache.generation)
    assert len(cache._tokens.items) <= 100


def test_ttl_zero_caches_nothing() -> None:
    cache = AccessCache(ttl=0.0, clock=Clock())
    cache.put_token(b"k", ENTRY, cache.generation)
    assert cache.token(b"k") is None
