"""The permission table: sane, closed over known actions, least privilege."""

from __future__ import annotations

from pathlib import Path

from bastion.core.access.roles import ACTIONS, PERMISSIONS, SELF_SERVICE, Role, permission_table

ADMIN_ONLY = {
    "principal.create",
    "principal.disable",
    "token.create",
    "token.revoke",
    "role.bind",
    "role.unbind",
    "keys.rotate",
}


def test_every_role_has_a_permission_set() -> None:
    assert set(PERMISSIONS) == set(Role)


def test_admin_has_every_action() -> None:
    assert PERMISSIONS[Role.ADMIN] == frozenset(ACTIONS)


def test_consumer_may_only_predict_label_its_predictions_and_read_projects() -> None:
    assert PERMISSIONS[Role.CONSUMER] == frozenset({"predict", "predict.feedback", "project.read"})


def test_permissions_name_only_known_actions() -> None:
    for role, actions in PERMISSIONS.items():
        assert actions <= set(ACTIONS), (role, actions - set(ACTIONS))
    assert set(SELF_SERVICE) <= set(ACTIONS)


def test_identity_and_key_management_is_admin_only() -> None:
    for role, actions in PERMISSIONS.items():
        if role is not Role.ADMIN:
            assert not actions & ADMIN_ONLY, (role, actions & ADMIN_ONLY)


def test_separation_of_duties_in_the_table() -> None:
    # Whoever approves a release is not who deploys it, nor who trains it.
    approvers = {r for r, a in PERMISSIONS.items() if "model.approve" in a} - {Role.ADMIN}
    deployers = {r for r, a in PERMISSIONS.items() if "deployment.create" in a} - {Role.ADMIN}
    trainers = {r for r, a in PERMISSIONS.items() if "model.train" in a} - {Role.ADMIN}
    assert approvers == {Role.REVIEWER}
    assert not approvers & deployers and not approvers & trainers
    # The auditor reads everything about the log but cannot sign checkpoints or write data.
    auditor = PERMISSIONS[Role.AUDITOR]
    assert {"audit.read", "audit.verify"} <= auditor
    assert not {"blob.write", "dataset.ingest", "audit.checkpoint"} & auditor


def test_permission_table_rows_match_permissions() -> None:
    rows = permission_table()
    assert [a for a, _, _ in rows] == list(ACTIONS)
    for action, description, roles in rows:
        assert description
        assert "admin" in roles
        assert set(roles) == {r.value for r in Role if action in PERMISSIONS[r]}


def _markdown_rows() -> list[str]:
    header = "| action | what | " + " | ".join(r.value for r in Role) + " |"
    rows = [header, "|" + "---|" * (2 + len(Role))]
    for action, description, roles in permission_table():
        marks = " | ".join("✓" if r.value in roles else "" for r in Role)
        rows.append(f"| `{action}` | {description} | {marks} |")
    return rows


def test_docs_permission_table_is_the_code_table() -> None:
    # docs/permissions.md claims to be generated from the code: hold it to that.
    doc = Path(__file__).parents[3] / "docs" / "permissions.md"
    table = [ln for ln in doc.read_text().splitlines() if ln.startswith("|")]
    expected = [" ".join(r.split()) for r in _markdown_rows()]
    got = [" ".join(r.split()) for r in table]
    assert got == expected, "docs/permissions.md is stale; its table should be:\n" + "\n".join(
        _markdown_rows()
    )
