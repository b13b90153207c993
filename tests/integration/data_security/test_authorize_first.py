"""Authorize first, reveal nothing (SQLite and PostgreSQL).

The attack: a principal with no right on a dataset probes names and versions;
when a handler looked the resource up before ``authorize``, "not found" versus
"access denied" told it which datasets, versions and projects exist, and the
probes left no audit entry. Every probe below must read the same for an
existing and a missing target, and be audited as a denied decision.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from data_security_support import DATASET, PROJECT, CreditWS

from bastion.core.access.values import Actor, PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.errors import BastionError, NotVisible

Probe = Callable[[CreditWS, Actor, str], object]

PROBES: dict[str, Probe] = {
    "set_policy": lambda c, a, n: c.ws.datasets.set_policy(a, PROJECT, n, "{}"),
    "set_contract": lambda c, a, n: c.ws.datasets.set_contract(a, PROJECT, n, "{}"),
    "read_version": lambda c, a, n: c.ws.datasets.read_frame(a, PROJECT, f"{n}@1"),
    "read_missing_version": lambda c, a, n: c.ws.datasets.read_frame(a, PROJECT, f"{n}@999"),
    "review": lambda c, a, n: c.ws.datasets.review(
        a, PROJECT, f"{n}@1", release=True, reason="probing for existence"
    ),
    "versions": lambda c, a, n: c.ws.datasets.versions(a, PROJECT, n),
}


def _outcome(fn: Callable[[], object]) -> tuple[type[BaseException], str]:
    try:
        fn()
    except BastionError as e:
        return type(e), e.message
    raise AssertionError("the probe was allowed")


@pytest.fixture
def nobody(credit: CreditWS) -> Actor:
    name = f"nobody{credit.counter}"
    credit.counter += 1
    credit.ws.access.create_principal(credit.admin, name, PrincipalKind.USER)
    return credit.ws.access.authenticate(credit.ws.access.create_token(credit.admin, name).secret)


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_roleless_probe_cannot_tell_existing_dataset_from_missing(
    credit: CreditWS, nobody: Actor, probe: str
) -> None:
    before = len(credit.ws.audit.query(AuditQuery(actor=nobody.name)))
    there = _outcome(lambda: PROBES[probe](credit, nobody, DATASET))
    ghost = _outcome(lambda: PROBES[probe](credit, nobody, "ghost-dataset"))
    assert there[0] is ghost[0] is NotVisible
    assert there[1].replace(DATASET, "X") == ghost[1].replace("ghost-dataset", "X")
    entries = credit.ws.audit.query(AuditQuery(actor=nobody.name))[before:]
    assert len(entries) >= 2 and all(e.outcome == "denied" for e in entries)


def test_roleless_probe_cannot_tell_existing_project_from_missing(
    credit: CreditWS, nobody: Actor
) -> None:
    outcomes = []
    for project in (PROJECT, "no-such-project"):
        outcomes.append(
            _outcome(lambda p=project: credit.ws.datasets.register_source(nobody, p, "probe"))
        )
    assert outcomes[0][0] is outcomes[1][0] is NotVisible


def test_project_bound_steward_lists_only_its_projects(credit: CreditWS) -> None:
    credit.ws.access.create_project(credit.admin, "other-team")
    names = [p.name for p in credit.ws.access.projects(credit.steward)]
    assert names == [PROJECT]
    assert "other-team" in [p.name for p in credit.ws.access.projects(credit.admin)]
