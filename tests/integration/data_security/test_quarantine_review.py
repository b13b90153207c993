"""Quarantined versions: never usable for training, readable only by reviewers,
released or rejected by a data steward with a reason, every step audited."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from data_security_support import (
    DATASET,
    PROJECT,
    CreditWS,
    audit_entries,
    ingest_csv,
)

from bastion.core.errors import AccessDenied, Conflict, InputError
from bastion.data_security.service import DatasetNotUsable
from bastion.data_security.values import DatasetVersion, VersionStatus

RESOURCE = f"project/{PROJECT}/dataset/{DATASET}"


def _quarantine(credit: CreditWS, index: int, stem: str) -> DatasetVersion:
    """A clean batch delivered through an unregistered channel: quarantined on lineage."""
    res = ingest_csv(
        credit.ws, credit.steward, credit.split.batch(index), credit.path(stem), source="usb-stick"
    )
    assert res.version.status is VersionStatus.QUARANTINED
    return res.version


@pytest.fixture(scope="module")
def held(credit: CreditWS) -> Iterator[DatasetVersion]:
    yield _quarantine(credit, 2, "held")


def test_quarantined_version_is_never_usable_for_training(
    credit: CreditWS, held: DatasetVersion
) -> None:
    for who in (credit.admin, credit.steward):
        with pytest.raises(DatasetNotUsable, match="training"):
            credit.ws.datasets.read_frame(who, PROJECT, held.ref, purpose="training")
    with pytest.raises(DatasetNotUsable):
        credit.ws.datasets.usable_version(credit.engineer, PROJECT, held.ref)


def test_quarantined_version_is_readable_only_by_data_stewards(
    credit: CreditWS, held: DatasetVersion
) -> None:
    v, frame = credit.ws.datasets.read_frame(credit.steward, PROJECT, held.ref)
    assert v.version == held.version and frame.height == 400
    with pytest.raises(AccessDenied):
        credit.ws.datasets.read_frame(credit.engineer, PROJECT, held.ref)
    with pytest.raises(AccessDenied):
        credit.ws.datasets.export(
            credit.engineer, PROJECT, held.ref, credit.path("leak", ".csv")
        )
    # ... while the same engineer reads accepted data
    _, accepted = credit.ws.datasets.read_frame(credit.engineer, PROJECT, credit.history.ref)
    assert accepted.height == credit.history.rows
    denied = audit_entries(credit.ws, actor="eve", action="dataset.review", outcome="denied")
    assert any(json.loads(e.details).get("version") == held.version for e in denied)


def test_release_needs_a_reason_of_ten_characters(credit: CreditWS, held: DatasetVersion) -> None:
    for reason in ("", "ok", "  fine    "):
        with pytest.raises(InputError, match="at least 10 characters"):
            credit.ws.datasets.review(
                credit.steward, PROJECT, held.ref, release=True, reason=reason
            )
    assert credit.ws.datasets.version(credit.steward, PROJECT, held.ref).status is (
        VersionStatus.QUARANTINED
    )


def test_ml_engineer_cannot_release(credit: CreditWS, held: DatasetVersion) -> None:
    with pytest.raises(AccessDenied):
        credit.ws.datasets.review(
            credit.engineer, PROJECT, held.ref, release=True, reason="looks fine to me, ship it"
        )
    assert credit.ws.datasets.version(credit.steward, PROJECT, held.ref).status is (
        VersionStatus.QUARANTINED
    )


def test_release_with_reason_is_audited_and_makes_it_usable(
    credit: CreditWS, held: DatasetVersion
) -> None:
    reason = "courier confirmed the USB delivery came from the bureau (ticket 4411)"
    out = credit.ws.datasets.review(credit.steward, PROJECT, held.ref, release=True, reason=reason)
    assert out.status is VersionStatus.ACCEPTED
    assert out.reviewed_by == "dana" and out.review_reason == reason and out.reviewed_at
    released = audit_entries(credit.ws, action="dataset.released", resource=RESOURCE)
    assert [json.loads(e.details) for e in released] == [
        {"version": held.version, "version_id": held.id, "reason": reason}
    ]
    assert released[0].actor == "dana"
    # now usable, and training on it means every accepted batch up to it
    assert credit.ws.datasets.usable_version(credit.engineer, PROJECT, held.ref).version == (
        held.version
    )
    _, frame = credit.ws.datasets.read_frame(
        credit.engineer, PROJECT, held.ref, purpose="training"
    )
    accepted = [
        v
        for v in credit.ws.datasets.versions(credit.steward, PROJECT, DATASET)
        if v.status is VersionStatus.ACCEPTED and v.version <= held.version
    ]
    assert frame.height == sum(v.rows for v in accepted) and frame.height > held.rows
    assert credit.ws.audit.verify().ok


def test_reject_makes_version_rejected_for_good(credit: CreditWS) -> None:
    v = _quarantine(credit, 1, "rejected")
    reason = "labels flipped in transit; the bureau re-sends the batch"
    out = credit.ws.datasets.review(credit.steward, PROJECT, v.ref, release=False, reason=reason)
    assert out.status is VersionStatus.REJECTED and out.review_reason == reason
    rejected = audit_entries(credit.ws, action="dataset.rejected", resource=RESOURCE)
    want = {"version": v.version, "version_id": v.id, "reason": reason}
    assert any(json.loads(e.details) == want for e in rejected)
    with pytest.raises(DatasetNotUsable):
        credit.ws.datasets.read_frame(credit.steward, PROJECT, v.ref, purpose="training")
    with pytest.raises(Conflict, match="rejected"):
        credit.ws.datasets.review(
            credit.steward, PROJECT, v.ref, release=True, reason="changed my mind after all"
        )


def test_releasing_an_accepted_version_is_a_conflict(credit: CreditWS) -> None:
    with pytest.raises(Conflict, match="not quarantined"):
        credit.ws.datasets.review(
            credit.steward,
            PROJECT,
            credit.history.ref,
            release=True,
            reason="releasing twice must not be possible",
        )
    with pytest.raises(InputError, match="exact version"):
        credit.ws.datasets.review(
            credit.steward, PROJECT, DATASET, release=True, reason="no version number given"
        )
