"""Rate limits per principal and per endpoint (the ``limits`` library, in process)."""

from __future__ import annotations

import pytest

from bastion.core.errors import ConfigurationError
from bastion.serving.errors import Throttled
from bastion.serving.ratelimit import RateLimiter, RateLimitOptions


def test_flood_from_one_principal_is_throttled_and_others_are_not() -> None:
    limiter = RateLimiter(RateLimitOptions(per_principal="3/minute", per_endpoint="100/minute"))
    for _ in range(3):
        limiter.hit_principal("mallory")
    with pytest.raises(Throttled) as e:
        limiter.hit_principal("mallory")
    assert 1 <= e.value.retry_after <= 60 and "per principal" in e.value.message
    limiter.hit_principal("alice")  # a separate budget


def test_many_principals_together_hit_the_endpoint_limit() -> None:
    limiter = RateLimiter(RateLimitOptions(per_principal="100/minute", per_endpoint="5/minute"))
    for i in range(5):
        limiter.hit_principal(f"user{i}")
        limiter.hit_endpoint("credit", "scoring")
    with pytest.raises(Throttled) as e:
        limiter.hit_endpoint("credit", "scoring")
    assert "per endpoint" in e.value.message and e.value.retry_after >= 1
    limiter.hit_endpoint("credit", "other")  # another endpoint keeps its own budget
    limiter.hit_endpoint("risk", "scoring")  # and another project's endpoint of that name


@pytest.mark.parametrize("opts", [
    RateLimitOptions(per_principal="lots"),
    RateLimitOptions(storage_url="nosuch://here"),
])
def test_bad_limit_settings_are_configuration_errors(opts: RateLimitOptions) -> None:
    with pytest.raises(ConfigurationError):
        RateLimiter(opts)


def test_in_process_limit_starts_no_thread_per_hit(monkeypatch: pytest.MonkeyPatch) -> None:
    """limits' MemoryStorage started a threading.Timer whenever its last one had fired (every
    10 ms of traffic); ours expires from one daemon thread."""
    import threading

    limiter = RateLimiter(RateLimitOptions(per_principal="100000/second"))
    started: list[str] = []
    real = threading.Thread.start

    def counting(self: threading.Thread) -> None:
        started.append(self.name)
        real(self)

    monkeypatch.setattr(threading.Thread, "start", counting)
    import time

    for i in range(200):
        limiter.hit_principal(f"p{i % 7}")
        if i % 20 == 0:
            time.sleep(0.02)  # let a 10 ms timer fire, as real traffic does
    assert started == []


def test_in_process_limit_entries_expire_without_traffic_and_flood_memory_is_bounded() -> None:
    import time

    limiter = RateLimiter(RateLimitOptions(per_principal="5/second"))
    store = limiter._limiter.storage  # the in-process storage
    for i in range(50):
        if i < 5:
            limiter.hit_principal("flooder")
        else:
            with pytest.raises(Throttled):
                limiter.hit_principal("flooder")
    assert [len(events) for events in store.events.values()] == [5]  # refused hits: no entry
    time.sleep(2.5)  # the window (1 s) has passed and the expiry thread has run
    assert not any(store.events.values()), store.events
    limiter.hit_principal("flooder")  # a fresh window


def test_expiry_thread_killed_by_a_failing_pass_keeps_expiring_and_memory_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One daemon thread is the only thing that ever expires the in-process entries (the
    per-hit timer of limits is switched off): a pass that raises once (a limits upgrade, a
    race with a hit) must not end it, or every key's entries grow for as long as the
    process serves."""
    import time

    from bastion.serving import ratelimit

    failures = {"left": 1}
    real = ratelimit._MemoryStorage.expire

    def failing_once(self: ratelimit._MemoryStorage) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise KeyError("flooder")  # what limits' pass raises if a key vanishes under it
        real(self)

    monkeypatch.setattr(ratelimit._MemoryStorage, "expire", failing_once)
    limiter = RateLimiter(RateLimitOptions(per_principal="5/second"))
    store = limiter._limiter.storage
    for _ in range(5):
        limiter.hit_principal("flooder")
    deadline = time.monotonic() + 6
    while any(store.events.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert failures["left"] == 0  # the failing pass did run
    assert not any(store.events.values()), "the expiry thread died on a failing pass"
