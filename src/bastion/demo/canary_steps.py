"""Layer-3 canary step of the demo: a broken version goes out as a canary and the canary
analysis rolls it back by itself.

The broken version is a hotfix that always answers "bad": it is signed and scanned like
any version, carries the card, is approved by the two reviewers, and passes the release
gate only on waivers for its missing evaluation (evaluation, fairness, robustness) — the
gate is satisfied, production is not.  Deployed as a canary taking 30 % of the traffic
beside the approved stable version, it is judged against it over a sliding window; the
prediction-distribution check (layer 2's drift statistics) fires and the canary is rolled
back automatically, audited with the numbers, while the stable version answers every
request.

Example::

    run_serving(runner, state, governance, server, extra=partial(run_canary, state))
"""

from __future__ import annotations

import datetime as dt
import json
import time
from functools import partial
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier

from bastion.core.access.values import Actor, PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.demo.data_steps import PROJECT
from bastion.demo.foundation import DemoState
from bastion.demo.governance_steps import CARD
from bastion.demo.runner import DemoFailed, Runner, expect
from bastion.demo.serving_steps import ENDPOINT, ServingStory
from bastion.model_security.registry import RegisterRequest
from bastion.model_security.values import Framework, ModelVersion
from bastion.serving.canary_values import CanaryState, canary_plan
from bastion.workspace import Bastion

WEIGHT = 50  # percent of the traffic the broken canary takes
BATCH = 20  # rows per request
BURST = 6  # requests, then a pause for the analysis: few rows reach the drift sample
MAX_REQUESTS = 60
#: what the gate lets a version without an evaluation through on (nothing else)
WAIVED = {"evaluation", "fairness", "robustness"}


def always_bad_version(ws: Bastion, author: Actor, stable: ModelVersion,
                       folder: Path) -> ModelVersion:
    """A new version of ``stable``'s model that answers "bad" whatever the input: same
    inputs and training data, signed and scanned like any version (registered by
    ``author``, written to ``folder``).  The demo's broken hotfix; the serving bench's
    garbage canary."""
    run = json.loads(stable.training_run or "{}")
    features = [str(f) for f in run.get("features", [])]
    x = pd.DataFrame(np.zeros((4, len(features))), columns=features)
    model = DummyClassifier(strategy="constant", constant="bad").fit(
        x, ["good", "bad", "good", "bad"])
    folder.mkdir(exist_ok=True)
    joblib.dump(model, folder / "model.joblib")
    trained_on = tuple(t.split("#")[0].split("/", 1)[1] for t in stable.trained_on)
    return ws.models.register(author, RegisterRequest(
        stable.project, stable.name, folder, Framework.SKLEARN, trained_on=trained_on,
        training_run=run))


def _broken_version(st: DemoState, story: ServingStory) -> ModelVersion:
    """A hotfix that always answers "bad", signed and registered like any version."""
    stable = st.ws.models.version(st.admin, PROJECT, story.governance.models.ref())
    # an engineer of the team ships it (the admin who waives may not be its author)
    st.ws.access.create_principal(st.admin, "hotfix-engineer", PrincipalKind.USER)
    st.ws.access.bind(st.admin, "hotfix-engineer", "ml-engineer", PROJECT)
    author = st.ws.access.authenticate(
        st.ws.access.create_token(st.admin, "hotfix-engineer").secret)
    return always_bad_version(st.ws, author, stable, st.work / "hotfix")


def _through_the_gate(st: DemoState, story: ServingStory, v: ModelVersion) -> list[str]:
    cv = st.ws.cards.edit(st.admin, PROJECT, v.ref, CARD, source="demo card.yaml")
    failing = {o.rule for o in st.ws.gate.check(st.admin, PROJECT, v.ref).rules
               if o.outcome.value == "fail"}
    expect(failing - {"approvals"} <= WAIVED,
           f"the hotfix fails rules no waiver should cover: {sorted(failing)}")
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat(timespec="seconds")
    for rule in sorted(failing - {"approvals"}):
        st.ws.gate.waive(st.admin, PROJECT, v.ref, rule=rule, expires=until,
                         reason="hotfix shipped before its evaluation; canary as safety net")
    for reviewer in story.governance.reviewers:
        st.ws.approvals.approve(reviewer, PROJECT, v.ref, reason="urgent hotfix, waived",
                                expected_root_digest=v.root_digest,
                                expected_card_version=cv.card_version)
    return sorted(failing - {"approvals"})


def _traffic(st: DemoState, story: ServingStory) -> tuple[int, int, int]:
    """Batches from the stable version's holdout until the canary is decided:
    (requests, canary-answered requests, failed requests)."""
    d = st.ws.deployments.status(st.admin, PROJECT, ENDPOINT).active
    assert d is not None
    rows = story.governance.models.data.holdout.select(list(d.schema.columns)).to_dicts()
    sent = canary = failed = 0
    while sent < MAX_REQUESTS:
        for _ in range(BURST):
            at = (sent * BATCH) % max(1, len(rows) - BATCH)
            r = story.post({"rows": rows[at:at + BATCH]})
            while r.status_code == 429:  # the demo's per-principal limit (10/s)
                time.sleep(float(r.headers.get("Retry-After", "1")))
                r = story.post({"rows": rows[at:at + BATCH]})
            sent += 1
            failed += r.status_code != 200
            canary += r.status_code == 200 and r.json()["model"] != d.ref
        deadline = time.monotonic() + 6  # samples are flushed and judged about every second
        while time.monotonic() < deadline:
            c = st.ws.deployments.status(st.admin, PROJECT, ENDPOINT).canary
            if c is not None and c.state is not CanaryState.RUNNING:
                return sent, canary, failed
            time.sleep(0.3)
    raise DemoFailed(f"the canary was not decided after {sent} requests")


def broken_canary(st: DemoState, story: ServingStory) -> list[str]:
    v = _broken_version(st, story)
    waived = _through_the_gate(st, story, v)
    d = st.ws.deployments.deploy(st.admin, PROJECT, v.ref, ENDPOINT,
                                 canary=canary_plan(WEIGHT, promote_after=2000))
    sent, canary, failed = _traffic(st, story)
    status = st.ws.deployments.status(st.admin, PROJECT, ENDPOINT)
    c = status.canary
    expect(c is not None and c.state is CanaryState.ROLLED_BACK,
           f"the broken canary was {c.state.value if c else 'never started'}, not rolled back")
    assert c is not None and c.analysis is not None
    expect("prediction_shift" in c.analysis.failed,
           f"rolled back by {c.analysis.failed}, not by the prediction shift")
    expect(failed == 0, f"{failed} requests failed during the canary")
    expect(status.active is not None and status.active.ref == story.governance.models.ref(),
           "the stable version is no longer in service")
    shift = next(x for x in c.analysis.checks if x.name == "prediction_shift")
    audited = [e for e in st.ws.audit.query(AuditQuery(action="deployment.canary.rolled_back"))
               if e.resource.endswith(f"/endpoint/{ENDPOINT}")]
    expect(len(audited) == 1, f"{len(audited)} rollback audit entries, not one")
    return [
        f"{v.ref} (always 'bad') passed the gate on waivers for {', '.join(waived)} and two "
        f"approvals; deployed as a {WEIGHT} % canary (#{d.seq}) beside "
        f"{story.governance.models.ref()}",
        f"rolled back automatically after {sent} requests ({canary} answered by the canary): "
        f"check prediction_shift fired — {shift.reason}",
        f"{failed} failed requests; {status.active.ref if status.active else '?'} kept "
        "serving; audited once as deployment.canary.rolled_back with the evidence",
    ]


def run_canary(st: DemoState, r: Runner, story: ServingStory) -> None:
    """The canary step, for ``run_serving(..., extra=partial(run_canary, state))``."""
    r.step("serving", "a broken canary is rolled back automatically by the canary analysis",
           partial(broken_canary, st, story))


__all__ = ["always_bad_version", "broken_canary", "run_canary"]
