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
