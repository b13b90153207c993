"""Canary routing (``CanaryTraffic.pick``) with a fake canary store and fake workers:
weights are honoured, a sticky key always lands on one arm, and which keys land on the
canary depends on the keyring's secret (a client cannot compute it)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections import Counter
from typing import Any

from bastion.serving.canary_traffic import CanaryTraffic
from bastion.serving.canary_values import Arm, Canary, CanaryState, canary_plan
from bastion.serving.metrics import GatewayMetrics
from bastion.serving.values import (
    Deployment,
    DeploymentState,
    FieldKind,
    FieldSpec,
    InputSchema,
    ResponsePolicy,
)

SCHEMA = InputSchema((FieldSpec("a", FieldKind.FLOAT),), "test")


def _deployment(i: str) -> Deployment:
    return Deployment(i, "p", "e", 2, "m", 2, "r" * 64, DeploymentState.CANARY, SCHEMA,
                      ResponsePolicy(), "{}", "t", "admin")


class _Store:
    def __init__(self, weight: int) -> None:
        self.canary = Canary("c1", "p", "e", "d-canary", "d-stable", canary_plan(weight),
                             CanaryState.RUNNING, 0, "t", "admin")

    def running(self, project: str, endpoint: str) -> tuple[Canary, Deployment]:
        return self.canary, _deployment("d-canary")


def _traffic(weight: int, secret: bytes) -> CanaryTraffic[Any]:
    async def start(d: Deployment) -> str:
        return "canary-worker"

    async def retire(live: str) -> None:
        return None

    def digest(message: bytes) -> str:
        return hmac.new(secret, message, hashlib.sha256).hexdigest()

    t: CanaryTraffic[Any] = CanaryTraffic(
        _Store(weight), GatewayMetrics(), start, retire,  # type: ignore[arg-type]
        digest, lambda live: _deployment("d-canary"), 0.0)

    async def follow() -> None:
        await t.refresh("p", "e")
        for _ in range(100):  # the canary's worker starts in the background
            if _started(t):
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the canary's worker never started")

    asyncio.run(follow())
    return t


def _started(t: CanaryTraffic[Any]) -> bool:
    return any(t.pick("p", "e", "stable", None).live == "canary-worker" for _ in range(200))


def _canary_keys(t: CanaryTraffic[Any]) -> set[str]:
    keys = (f"customer-{i}" for i in range(400))
    return {k for k in keys if t.pick("p", "e", "stable",
                                      {"X-Bastion-Request-Key": k}).arm is Arm.CANARY}


def test_random_split_follows_the_weight() -> None:
    t = _traffic(20, b"secret-one")
    arms = Counter(t.pick("p", "e", "stable", None).arm for _ in range(5000))
    assert 0.17 < arms[Arm.CANARY] / 5000 < 0.23, arms


def test_sticky_key_always_lands_on_one_arm_and_the_weight_holds() -> None:
    t = _traffic(30, b"secret-one")
    first = _canary_keys(t)
    assert all(_canary_keys(t) == first for _ in range(3))
    assert 0.22 < len(first) / 400 < 0.38, len(first)


def test_which_keys_reach_the_canary_depends_on_the_keyring_secret() -> None:
    """A client who knows the algorithm but not the keyring cannot pick its bucket."""
    ours, guessed = _canary_keys(_traffic(50, b"secret-one")), _canary_keys(
        _traffic(50, b"attacker-guess"))
    overlap = len(ours & guessed) / max(1, len(ours))
    assert 0.3 < overlap < 0.7, overlap  # about chance, not the same set
