"""What the approval and gate services read, and who may not approve what.

:class:`ReleaseSources` bundles the evidence stores (wired by the composition
root).  :class:`Duties` answers separation-of-duties questions from records a
database edit cannot rewrite quietly: the author of a model version is whoever
the *audit log* says registered (or trained) it, the releasers of its training
data are the actors of ``dataset.released`` entries for every dataset version
upstream of it in lineage; each is widened to the humans behind it
(:class:`~bastion.governance.release_ports.IdentityDirectory`).

Example::

    duties = Duties(sources)
    conflict = duties.conflict(version, humans_of_actor)   # None, or why not
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bastion.core.access.service import AccessService
from bastion.core.audit.entries import AuditEntry, AuditQuery
from bastion.core.audit.log import AuditLog
from bastion.core.lineage.graph import Node, NodeKind, TreeNode
from bastion.governance.facts import Evidence
from bastion.governance.gate_policy import DEFAULT_POLICY, ReleasePolicy, parse_policy
from bastion.governance.ports import CardRepository
from bastion.governance.release_ports import IdentityDirectory, ProviderEvidence, ReleaseRepository
from bastion.governance.release_values import PolicyVersion
from bastion.model_security.values import ModelVersion


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(t: dt.datetime, *, exact: bool = False) -> str:
    """ISO 8601, to the second (``exact``: to the microsecond, so records order by it)."""
    return t.isoformat(timespec="microseconds" if exact else "seconds")


@dataclass(frozen=True)
class ReleaseSources:
    access: AccessService
    repo: ReleaseRepository
    cards: CardRepository
    evidence: Evidence
    audit: AuditLog
    identities: IdentityDirectory
    providers: ProviderEvidence
    #: the project's active signing key: (key id, private PEM), in memory only
    signing_key: Callable[[str], tuple[str, bytes]]
    #: (project, training-data lineage ids "p/ds@v") -> the open drift alerts the live
    #: monitors raised on endpoints serving models trained on that data (descriptions);
    #: required: a default of "none" would let a new wiring skip the gate's drift rule
    drift_alerts: Callable[[str, tuple[str, ...]], list[str]]
    now: Callable[[], dt.datetime] = utc_now


def model_resource(project: str, name: str) -> str:
    return f"project/{project}/model/{name}"


def entries(audit: AuditLog, action: str, resource: str) -> Iterator[AuditEntry]:
    """Every audit entry of ``action`` on exactly ``resource`` (the query is a prefix match)."""
    after = 0
    while True:
        page = audit.query(AuditQuery(action=action, resource=resource, after_seq=after))
        for e in page:
            if e.resource == resource:
                yield e
        if len(page) < 1000:
            return
        after = page[-1].seq


def details(e: AuditEntry) -> dict[str, object]:
    try:
        d = json.loads(e.details)
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}


def walk(tree: TreeNode) -> Iterator[Node]:
    yield tree.node
    for child in tree.children:
        yield from walk(child)


@dataclass(frozen=True)
class Party:
    """Someone who may not approve: a principal, the humans behind it, and why."""

    principal: str
    humans: frozenset[str]
    role: str  # "registered" | "released dataset X@v"
    audit_seq: int | None


class Duties:
    def __init__(self, sources: ReleaseSources) -> None:
        self._s = sources

    def authors(self, v: ModelVersion) -> list[Party]:
        """Who registered (or trained: training registers) ``v``, per the audit log and record."""
        found = [Party(v.created_by, self._s.identities.humans(v.created_by), "registered", None)]
        for e in entries(self._s.audit, "model.registered", model_resource(v.project, v.name)):
            d = details(e)
            if d.get("version_id") == v.id:
                humans = self._s.identities.humans(e.actor)
                found.append(Party(e.actor, humans, "registered", e.seq))
        return found

    def releasers(self, v: ModelVersion) -> list[Party]:
        """Who released any dataset version upstream of ``v`` from quarantine."""
        root = Node(NodeKind.MODEL_VERSION, v.lineage_id, v.root_digest)
        versions: set[str] = {t.partition("#")[0] for t in v.trained_on}
        for node in walk(self._s.evidence.lineage.upstream(root)):
            if node.kind == NodeKind.DATASET_VERSION:
                versions.add(node.id)
        found: list[Party] = []
        for lineage_id in sorted(versions):
            project, _, ref = lineage_id.partition("/")
            name, _, number = ref.partition("@")
            resource = f"project/{project}/dataset/{name}"
            for e in entries(self._s.audit, "dataset.released", resource):
                if str(details(e).get("version")) == number:
                    humans = self._s.identities.humans(e.actor)
                    found.append(Party(e.actor, humans, f"released {name}@{number}", e.seq))
        return found

    def conflict(self, v: ModelVersion, humans: frozenset[str]) -> Party | None:
        """The first author or releaser who is one of ``humans`` (None: no conflict)."""
        for party in [*self.authors(v), *self.releasers(v)]:
            if party.humans & humans:
                return party
        return None

    def author_conflict(self, v: ModelVersion, humans: frozenset[str]) -> Party | None:
        return next((p for p in self.authors(v) if p.humans & humans), None)


@functools.lru_cache(maxsize=64)
def _compiled(text: str) -> ReleasePolicy:
    return parse_policy(text)


def active_policy(repo: ReleaseRepository, project: str) -> tuple[PolicyVersion, ReleasePolicy]:
    """The project's newest stored policy, or the built-in default (version 0)."""
    stored = repo.policies(project)
    if stored:
        latest = stored[-1]
        return latest, _compiled(latest.document)
    default = _compiled(DEFAULT_POLICY)
    return PolicyVersion("default", project, 0, DEFAULT_POLICY, default.sha256, "", "bastion"), (
        default
    )


__all__ = [
    "Duties",
    "Party",
    "ReleaseSources",
    "active_policy",
    "details",
    "entries",
    "iso",
    "model_resource",
    "utc_now",
    "walk",
]
