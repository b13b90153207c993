"""The adversarial-query detector on the real credit data and a real scikit-learn model:
ordinary rows are never suspected, exact repeats are ignored, a sweep and a uniform box
are suspected after ``min_rows``, the policy refuses (audited), memory stays bounded."""

from __future__ import annotations

from typing import Any

import anyio
import numpy as np
import pandas as pd
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
)
from bastion.serving.errors import Throttled
from bastion.serving.schema import derive_schema
from bastion.serving.values import Deployment, DeploymentState, ResponsePolicy

F = ["Seniority", "Home", "Time", "Age", "Marital", "Records", "Job", "Expenses", "Income",
     "Assets", "Debt", "Amount", "Price"]
CAT = ["Home", "Marital", "Records", "Job"]


class FakeAccess:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def record(self, actor: Actor, action: str, resource: str, outcome: Any,
               details: dict[str, Any]) -> None:
        self.records.append((actor.name, action, details))


@pytest.fixture(scope="module")
def world() -> tuple[Deployment, list[tuple[Any, ...]], Any]:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    full = credit_data().drop_nulls().sample(fraction=1.0, shuffle=True, seed=3)
    train, rest = full.head(800), full.slice(800)
    schema = derive_schema(infer_contract(profile_frame(train)), F, source="credit")
    d = Deployment("d1", "p", "scoring", 1, "scorer", 1, "r", DeploymentState.ACTIVE, schema,
                   ResponsePolicy(), "{}", "", "")
    num = [f for f in F if f not in CAT]
    model = Pipeline([("c", ColumnTransformer([("n", StandardScaler(), num),
                                               ("o", OneHotEncoder(handle_unknown="ignore"),
                                                CAT)])),
                      ("m", LogisticRegression(max_iter=500))])
    model.fit(train.select(F).to_pandas(), train["Status"].to_numpy())
    return d, rest.select(F).rows(), model


def _scores(model: Any, rows: list[Any]) -> list[list[float]]:
    return model.predict_proba(pd.DataFrame(rows, columns=F)).tolist()


def test_ordinary_traffic_of_3000_unseen_rows_is_never_suspected(world: tuple) -> None:
    d, rows, model = world
    guard = AdversarialGuard(FakeAccess())  # type: ignore[arg-type]
    scores = _scores(model, rows[:3000])
    for i in range(0, 3000, 8):
        assert guard.feed("app", d, rows[i:i + 8], scores[i:i + 8]) is None


def test_exact_repeats_of_one_row_are_not_an_attack(world: tuple) -> None:
    d, rows, model = world
    guard = AdversarialGuard(FakeAccess())  # type: ignore[arg-type]
    for _ in range(200):
        assert guard.feed("retry", d, [rows[0]], _scores(model, [rows[0]])) is None


def test_one_feature_sweep_is_suspected_after_min_rows(world: tuple) -> None:
    d, rows, model = world
    guard = AdversarialGuard(FakeAccess())  # type: ignore[arg-type]
    base, j = list(rows[0]), F.index("Income")
    found = []
    for k in range(60):
        r = [*base[:j], 50 + 4 * k, *base[j + 1:]]
        if guard.feed("sweeper", d, [r], _scores(model, [r])) is not None:
            found.append(k + 1)
    assert found == [24]  # raised once, then held (not raised again)


def test_extraction_by_uniform_rows_over_the_accepted_box_is_suspected(world: tuple) -> None:
    d, rows, model = world
    guard = AdversarialGuard(FakeAccess())  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    bands = {b.name: b for b in d.schema.ood.bands}
    hit = None
    for k in range(100):
        r = list(rows[int(rng.integers(len(rows)))])
        for name, b in bands.items():
            r[F.index(name)] = round(float(rng.uniform(max(b.low, 0.0), b.high)))
        s = guard.feed("extractor", d, [r], _scores(model, [r]))
        if s is not None:
            hit = (k + 1, s.signals)
            break
    assert hit is not None and hit[0] == 24 and "off_range" in hit[1]


def _suspect(guard: AdversarialGuard, d: Deployment, rows: list[Any], who: str) -> None:
    base, j = list(rows[0]), F.index("Income")
    for k in range(30):
        guard.feed(who, d, [[*base[:j], 50 + 4 * k, *base[j + 1:]]], None)


def test_blocked_principal_gets_403_with_the_reason_audited(world: tuple) -> None:
    d, rows, _ = world
    access = FakeAccess()
    guard = AdversarialGuard(access, DetectorOptions(policy=AdversarialPolicy.BLOCK))  # type: ignore[arg-type]
    _suspect(guard, d, rows, "mallory")
    actor = Actor("id", "mallory", "t", "rid")
    with pytest.raises(AdversarialBlocked, match=r"blocked on endpoint 'scoring'.*sweep"):
        anyio.run(guard.admit, actor, "p", "scoring")
    assert access.records[-1][1] == "predict.refused"
    assert access.records[-1][2]["reason"] == "adversarial_block"
    anyio.run(guard.admit, Actor("id2", "app", "t", "rid"), "p", "scoring")  # others pass


def test_throttled_principal_gets_one_request_per_interval_then_429(world: tuple) -> None:
    import time

    d, rows, _ = world
    options = DetectorOptions(throttle_seconds=1.0, hold_seconds=2.0)
    guard = AdversarialGuard(FakeAccess(), options)  # type: ignore[arg-type]
    actor = Actor("id", "mallory", "t", "rid")
    base, j = list(rows[0]), F.index("Income")
    for k in range(30):
        anyio.run(guard.observe, actor, d, [[*base[:j], 50 + 4 * k, *base[j + 1:]]], None)
    started = time.monotonic()
    anyio.run(guard.admit, actor, "p", "scoring")  # the one allowed request
    with pytest.raises(Throttled) as e:
        anyio.run(guard.admit, actor, "p", "scoring")
    assert e.value.retry_after == 1 and "sweep" in e.value.message
    time.sleep(1.05)
    anyio.run(guard.admit, actor, "p", "scoring")  # the next interval's request
    time.sleep(max(0.0, 2.1 - (time.monotonic() - started)))  # the hold ends
    anyio.run(guard.admit, actor, "p", "scoring")
    anyio.run(guard.admit, actor, "p", "scoring")


def test_flag_policy_never_refuses_but_audits_the_suspicion(world: tuple) -> None:
    d, rows, _ = world
    access = FakeAccess()
    guard = AdversarialGuard(access, DetectorOptions(policy=AdversarialPolicy.FLAG))  # type: ignore[arg-type]
    actor = Actor("id", "mallory", "t", "rid")
    base, j = list(rows[0]), F.index("Income")
    for k in range(30):
        anyio.run(guard.observe, actor, d, [[*base[:j], 50 + 4 * k, *base[j + 1:]]], None)
    suspected = [r for r in access.records if r[1] == "predict.adversarial_suspected"]
    assert len(suspected) == 1 and suspected[0][2]["rows_seen"] == 24
    assert suspected[0][2]["shares"]["sweep"] > 0.5
    anyio.run(guard.admit, actor, "p", "scoring")


def test_memory_is_bounded_by_tracked_pairs_and_window(world: tuple) -> None:
    d, rows, _ = world
    guard = AdversarialGuard(FakeAccess(), DetectorOptions(max_tracked=50, window=16))  # type: ignore[arg-type]
    for i in range(500):
        guard.feed(f"p{i}", d, rows[i:i + 3], None)
    assert guard.tracked() == 50
    for i in range(100):
        guard.feed("one", d, rows[i:i + 1], None)
    t = guard._tracks[("one", "p", "scoring")]
    assert len(t.flags) == 16 and t.numbers.shape[0] == 16 and len(t.others) == 16
