"""Roles and the permission table.

A role binding gives a principal a role in one project (or ``*``: every
project and the system).  A role is a set of actions; ``authorize`` allows an
action on a resource when a binding in the resource's project grants it.

| role         | may                                                                   |
|--------------|-----------------------------------------------------------------------|
| admin        | everything, including managing principals, tokens, roles and keys     |
| data-steward | create datasets, ingest, read/export data, edit contracts, register   |
|              | sources, release or reject quarantined batches, read access reports   |
| ml-engineer  | read accepted data, train/register/evaluate/verify models, lineage    |
| reviewer     | read models, evaluations and lineage; approve or reject releases      |
| deployer     | deploy, promote and roll back approved models; verify models          |
| auditor      | read and verify the audit log, lineage, metadata; compliance reports  |
| consumer     | call prediction endpoints, label its own answered predictions         |

Nobody may change their own role bindings (no self-grant), whatever their role.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class Role(enum.StrEnum):
    ADMIN = "admin"
    DATA_STEWARD = "data-steward"
    ML_ENGINEER = "ml-engineer"
    REVIEWER = "reviewer"
    DEPLOYER = "deployer"
    AUDITOR = "auditor"
    CONSUMER = "consumer"


#: every action Bastion authorizes, with a one-line description
ACTIONS: Mapping[str, str] = {
    "principal.create": "create users and service accounts",
    "principal.read": "list principals",
    "principal.disable": "disable a principal",
    "token.create": "issue an API token for a principal",
    "token.create_unexpiring": "issue an API token that never expires",
    "token.read": "list a principal's tokens",
    "token.revoke": "revoke a token",
    "role.bind": "grant a role in a project",
    "role.unbind": "remove a role binding",
    "role.read": "list role bindings",
    "project.create": "create a project",
    "project.read": "list projects",
    "keys.read": "list key versions",
    "keys.rotate": "rotate key-encryption or signing keys",
    "audit.read": "query the audit log",
    "audit.verify": "verify the audit log",
    "audit.checkpoint": "sign an audit checkpoint",
    "workspace.backup": "write a backup of the whole workspace (keyring, database, blobs)",
    "store.repair": "delete leftovers found by store fsck (--repair)",
    "blob.write": "store an encrypted object",
    "blob.read": "read an encrypted object",
    "dataset.create": "create a dataset",
    "dataset.ingest": "ingest a batch into a dataset",
    "dataset.read": "read or export dataset rows",
    "dataset.list": "list datasets and versions (metadata)",
    "dataset.review": "release or reject a quarantined batch",
    "dataset.erase": "erase a data subject's rows (GDPR Art. 17): new versions, keys shredded",
    "contract.edit": "edit a dataset's data contract or audit policy",
    "source.register": "register a trusted data source",
    "lineage.read": "show and verify lineage",
    "access.report": "read a dataset's access report",
    "model.register": "register a model version",
    "model.train": "train a model from a spec",
    "model.read": "read model metadata",
    "model.load": "load (download or export) a model artifact",
    "model.evaluate": "evaluate a model version",
    "model.verify": "verify a model's signature and digests",
    "model.scan": "scan an artifact for malicious serialization",
    "model.scan_policy": "change a project's scanner allow-list policy (admin only)",
    "model.approve": "approve or reject a model release",
    "card.edit": "write a new version of a model card (from a YAML file)",
    "card.read": "read a model card and its ML-BOM",
    "gate.check": "run the release gate on a model version; read gate policies and waivers",
    "gate.policy": "set a project's release policy (gate rules, thresholds, approvals per tier)",
    "waiver.grant": "waive a failing gate rule for one model version (named, reasoned, expiring)",
    "provider.manage": "register, assess and link third-party providers (models, APIs, data)",
    "provider.read": "list and show third-party providers and their assessments",
    "compliance.report": "write a compliance report (GDPR, HIPAA, SOC 2, EU AI Act) with evidence",
    "monitor.run": "run drift and performance monitors",
    "deployment.create": "deploy a model version",
    "deployment.rollback": "roll back a deployment",
    "deployment.read": "read deployments",
    "predict": "call a prediction endpoint",
    "predict.feedback": "label one's own answered predictions (the canary accuracy check)",
    "alert.read": "list alerts of deployed models and their webhooks",
    "alert.ack": "acknowledge (close) an alert",
    "alert.webhook": "add or remove alert webhooks (SSRF-checked targets)",
}

_STEWARD = {
    "dataset.create",
    "dataset.ingest",
    "dataset.read",
    "dataset.list",
    "dataset.review",
    "dataset.erase",
    "contract.edit",
    "source.register",
    "provider.manage",
    "provider.read",
    "lineage.read",
    "access.report",
    "blob.write",
    "blob.read",
    "project.read",
}
_ENGINEER = {
    "dataset.read",
    "dataset.list",
    "lineage.read",
    "model.register",
    "model.train",
    "model.read",
    "model.load",
    "model.evaluate",
    "model.verify",
    "model.scan",
    "card.edit",
    "card.read",
    "gate.check",
    "provider.read",
    "monitor.run",
    "blob.read",
    "project.read",
    "deployment.read",
    "alert.read",
    "alert.ack",
}
_REVIEWER = {
    "dataset.list",
    "lineage.read",
    "model.read",
    "model.verify",
    "model.approve",
    "card.read",
    "gate.check",
    "provider.read",
    "project.read",
    "deployment.read",
}
_DEPLOYER = {
    "card.read",
    "gate.check",
    "model.read",
    "model.verify",
    "model.load",
    "deployment.create",
    "deployment.rollback",
    "deployment.read",
    "monitor.run",
    "project.read",
    "alert.read",
    "alert.ack",
}
_AUDITOR = {
    "card.read",
    "gate.check",
    "provider.read",
    "compliance.report",
    "audit.read",
    "audit.verify",
    "lineage.read",
    "dataset.list",
    "model.read",
    "model.verify",
    "access.report",
    "principal.read",
    "role.read",
    "keys.read",
    "project.read",
    "deployment.read",
    "alert.read",
}

PERMISSIONS: Mapping[Role, frozenset[str]] = {
    Role.ADMIN: frozenset(ACTIONS),
    Role.DATA_STEWARD: frozenset(_STEWARD),
    Role.ML_ENGINEER: frozenset(_ENGINEER),
    Role.REVIEWER: frozenset(_REVIEWER),
    Role.DEPLOYER: frozenset(_DEPLOYER),
    Role.AUDITOR: frozenset(_AUDITOR),
    Role.CONSUMER: frozenset({"predict", "predict.feedback", "project.read"}),
}

#: actions a principal may always take on itself (own tokens), still audited
SELF_SERVICE = frozenset({"token.create", "token.read", "token.revoke"})


def permission_table() -> list[tuple[str, str, list[str]]]:
    """(action, description, roles granting it) rows for docs and the CLI."""
    return [
        (action, text, [r.value for r in Role if action in PERMISSIONS[r]])
        for action, text in ACTIONS.items()
    ]


__all__ = ["ACTIONS", "PERMISSIONS", "SELF_SERVICE", "Role", "permission_table"]
