"""A steward edits the audit policy and the data contract; invalid edits are refused
with the field named; a contract that forbids a category quarantines the next
batch; the trusted reference is re-pinned on demand."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl
import pytest
from data_security_support import (
    PROJECT,
    CreditWS,
    audit_entries,
    failing,
    synthetic_frame,
    write_frame,
)

from bastion.core.errors import AccessDenied, InputError
from bastion.data_security.errors import InvalidContract
from bastion.data_security.service import IngestRequest, IngestResult
from bastion.data_security.values import VersionStatus


@dataclass
class Homes:
    credit: CreditWS
    name: str
    marker: str
    batches: int = 0

    def ingest(self, frame: pl.DataFrame) -> IngestResult:
        self.batches += 1
        path, digest = write_frame(frame, self.credit.path(self.name))
        return self.credit.ws.datasets.ingest(
            self.credit.steward, IngestRequest(PROJECT, self.name, path, "homes-feed", digest)
        )

    def frame(self, rows: int = 240) -> pl.DataFrame:
        return synthetic_frame(self.marker, rows, seed=self.batches, offset=1000 * self.batches)


@pytest.fixture(scope="module")
def homes(credit: CreditWS) -> Iterator[Homes]:
    marker = uuid.uuid4().hex
    h = Homes(credit, f"homes-{marker[:8]}", marker)
    credit.ws.datasets.register_source(credit.steward, PROJECT, "homes-feed", datasets=(h.name,))
    first = h.ingest(h.frame())
    assert first.accepted, first.report.render_text()
    yield h


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"poison": {}}', "poison"),
        ('{"quality": []}', "'quality' must be an object"),
        ('{"poisoning": {"shift_alpah": 0.01}}', "shift_alpah"),
        ('{"pii": {"no_such_knob": true}}', "no_such_knob"),
    ],
    ids=["not_json", "not_object", "unknown_section", "section_not_object", "typo_in_field",
         "unknown_pii_field"],
)
def test_invalid_policy_is_refused_naming_the_field(
    homes: Homes, text: str, words: str
) -> None:
    ws, steward = homes.credit.ws, homes.credit.steward
    before = ws.datasets.policy(steward, PROJECT, homes.name)
    with pytest.raises(InputError) as err:
        ws.datasets.set_policy(steward, PROJECT, homes.name, text)
    assert words in err.value.diagnostics()
    assert ws.datasets.policy(steward, PROJECT, homes.name) == before


def test_valid_policy_is_stored_and_audited(homes: Homes) -> None:
    ws, steward = homes.credit.ws, homes.credit.steward
    policy = ws.datasets.set_policy(
        steward, PROJECT, homes.name, '{"poisoning": {"shift_alpha": 0.0005}}'
    )
    assert policy.poisoning == {"shift_alpha": 0.0005}
    assert ws.datasets.policy(homes.credit.engineer, PROJECT, homes.name) == policy
    updated = audit_entries(
        ws, action="policy.updated", resource=f"project/{PROJECT}/dataset/{homes.name}"
    )
    assert [e.actor for e in updated] == ["dana"]
    with pytest.raises(AccessDenied):
        ws.datasets.set_policy(homes.credit.engineer, PROJECT, homes.name, "{}")


def test_invalid_contract_is_refused_naming_the_field(homes: Homes) -> None:
    ws, steward = homes.credit.ws, homes.credit.steward
    current = ws.datasets.contract(steward, PROJECT, homes.name)
    assert current is not None
    doc = json.loads(current.to_json())
    doc["columns"][1]["type"] = "colour"
    with pytest.raises(InvalidContract) as err:
        ws.datasets.set_contract(steward, PROJECT, homes.name, json.dumps(doc))
    assert "columns[1] ('ref').type" in err.value.diagnostics()
    assert ws.datasets.contract(steward, PROJECT, homes.name) == current


def test_contract_forbidding_a_category_quarantines_the_next_batch(homes: Homes) -> None:
    ws, steward = homes.credit.ws, homes.credit.steward
    current = ws.datasets.contract(steward, PROJECT, homes.name)
    assert current is not None and current.version == 1
    doc = json.loads(current.to_json())
    home = next(c for c in doc["columns"] if c["name"] == "home")
    # the inferred category set is soft evidence; the steward writes the hard rule
    assert home["allowed_values"] is None
    assert sorted(home["inferred"]["categories"]) == ["owner", "parents", "rent"]
    home["allowed_values"] = ["owner", "rent"]  # the bank stopped lending to "parents"
    edited = ws.datasets.set_contract(steward, PROJECT, homes.name, json.dumps(doc))
    assert edited.version == current.version + 1
    assert ws.datasets.contract(steward, PROJECT, homes.name) == edited
    with pytest.raises(AccessDenied):
        ws.datasets.set_contract(homes.credit.engineer, PROJECT, homes.name, json.dumps(doc))

    frame = homes.frame()
    res = homes.ingest(frame)
    assert res.version.status is VersionStatus.QUARANTINED
    assert "data_contract" in failing(res)
    assert res.version.contract_version == edited.version
    contract_check = next(c for c in res.report.checks if c.name == "data_contract")
    parents = set(frame.with_row_index("i").filter(pl.col("home") == "parents")["i"].to_list())
    assert set(contract_check.flagged_rows) == parents
    assert any("home" in d for d in contract_check.details)

    # a batch without the forbidden category passes the edited contract
    ok = homes.ingest(homes.frame().filter(pl.col("home") != "parents"))
    assert ok.accepted, ok.report.render_text()


def test_repin_moves_the_trusted_reference_to_the_latest_accepted(homes: Homes) -> None:
    ws, steward = homes.credit.ws, homes.credit.steward
    assert ws.datasets.dataset(steward, PROJECT, homes.name).reference_version == 1
    accepted = [
        v.version
        for v in ws.datasets.versions(steward, PROJECT, homes.name)
        if v.status is VersionStatus.ACCEPTED
    ]
    assert len(accepted) >= 2
    with pytest.raises(AccessDenied):
        ws.datasets.repin(homes.credit.engineer, PROJECT, homes.name)
    pinned = ws.datasets.repin(steward, PROJECT, homes.name)
    assert pinned == accepted[-1]
    assert ws.datasets.dataset(steward, PROJECT, homes.name).reference_version == pinned
    entries = audit_entries(
        ws, action="reference.pinned", resource=f"project/{PROJECT}/dataset/{homes.name}"
    )
    assert [json.loads(e.details) for e in entries] == [{"version": pinned}]
