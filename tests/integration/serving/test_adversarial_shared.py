"""Two gateway replicas' adversarial guards on one Redis (the CI Redis): a principal
suspected by one is throttled or blocked by the other within ``share_seconds``, and the
throttle's one request per interval is one for both.  The control: with in-process
storage the other replica knows nothing."""

from __future__ import annotations

import time
import uuid
from typing import Any

import anyio
import pytest

from bastion.core.access.values import Actor
from bastion.data_security.contract.infer import infer_contract
from bastion.data_security.profile import profile_frame
from bastion.demo.data_steps import credit_data
from bastion.serving.adversarial import (
    AdversarialBlocked,
    AdversarialGuard,
    AdversarialPolicy,
    DetectorOptions,
    SharedSuspicions,
)
from bastion.serving.errors import Throttled
from bastion.serving.ratelimit import RateLimitOptions
from bastion.serving.schema import derive_schema
from bastion.serving.values import Deployment, DeploymentState, ResponsePolicy

F = ["Seniority", "Home", "Time", "Age", "Marital", "Records", "Job", "Expenses", "Income",
     "Assets", "Debt", "Amount", "Price"]


class FakeAccess:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def record(self, actor: Actor, action: str, resource: str, outcome: Any,
               details: dict[str, Any]) -> None:
        self.records.append((actor.name, action, details))


@pytest.fixture(scope="module")
def world() -> tuple[Deployment, list[Any]]:
    full = credit_data().drop_nulls().sample(fraction=1.0, shuffle=True, seed=3)
    schema = derive_schema(infer_contract(profile_frame(full.head(800))), F, source="credit")
    d = Deployment("d1", "p", "scoring", 1, "scorer", 1, "r", DeploymentState.ACTIVE, schema,
                   ResponsePolicy(), "{}", "", "")
    return d, full.slice(800).select(F).rows()


def _pair(storage_url: str, policy: AdversarialPolicy) -> tuple[AdversarialGuard, ...]:
    rate = RateLimitOptions(storage_url=storage_url, namespace=f"ws-{uuid.uuid4().hex[:12]}")
    options = DetectorOptions(policy=policy, share_seconds=0.2, throttle_seconds=5.0)
    return tuple(AdversarialGuard(FakeAccess(), options,  # type: ignore[arg-type]
                                  shared=SharedSuspicions(rate, options)) for _ in range(2))


def _sweep(guard: AdversarialGuard, d: Deployment, rows: list[Any], actor: Actor) -> None:
    base, j = list(rows[0]), F.index("Income")
    for k in range(30):
        anyio.run(guard.observe, actor, d, [[*base[:j], 50 + 4 * k, *base[j + 1:]]], None)
    assert guard.suspected(actor.name, "p", "scoring")


def test_a_principal_suspected_by_one_replica_is_blocked_by_the_other(
        redis_url: str, world: tuple) -> None:
    d, rows = world
    a, b = _pair(redis_url, AdversarialPolicy.BLOCK)
    mallory = Actor("m", f"mallory-{uuid.uuid4().hex[:8]}", "t", "rid")
    anyio.run(b.admit, mallory, "p", "scoring")  # B knows nothing yet (and remembers that)
    _sweep(a, d, rows, mallory)
    assert not b.suspected(mallory.name, "p", "scoring")  # B saw none of the rows
    time.sleep(0.25)  # B asks the shared storage again after share_seconds
    with pytest.raises(AdversarialBlocked, match="blocked on endpoint 'scoring'"):
        anyio.run(b.admit, mallory, "p", "scoring")
    anyio.run(b.admit, Actor("o", "app", "t", "rid"), "p", "scoring")  # others pass


def test_the_throttle_slot_is_one_for_every_replica(redis_url: str, world: tuple) -> None:
    d, rows = world
    a, b = _pair(redis_url, AdversarialPolicy.THROTTLE)
    mallory = Actor("m", f"mallory-{uuid.uuid4().hex[:8]}", "t", "rid")
    _sweep(a, d, rows, mallory)
    anyio.run(a.admit, mallory, "p", "scoring")  # the one request of this interval
    for guard in (b, a):
        with pytest.raises(Throttled) as e:
            anyio.run(guard.admit, mallory, "p", "scoring")
        assert 1 <= e.value.retry_after <= 5


def test_control_in_process_storage_shares_nothing(world: tuple) -> None:
    d, rows = world
    a, b = _pair("memory://", AdversarialPolicy.BLOCK)
    mallory = Actor("m", "mallory", "t", "rid")
    _sweep(a, d, rows, mallory)
    time.sleep(0.25)
    anyio.run(b.admit, mallory, "p", "scoring")  # the other process: not blocked
    with pytest.raises(AdversarialBlocked):
        anyio.run(a.admit, mallory, "p", "scoring")
