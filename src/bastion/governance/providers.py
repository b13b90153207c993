"""The third-party register: external model/API providers and data sources, assessed.

- ``register`` a provider (one name rule, look-alikes of a registered name refused);
- ``assess`` it: data sent, DPA, certifications, review date and expiry, risk
  rating — each assessment is a new version (nothing is overwritten), its
  canonical content hashed, its recording audited;
- ``link`` a registered data source or a model version to it: a lineage edge
  ``provider -> source`` (``supplies``) or ``provider -> model_version``
  (``provides``), bound by its ``provider.linked`` audit entry, so lineage
  verification checks every provider edge against the tamper-evident log
  (:func:`bastion.governance.lineage_binders.provider_binder`);
- :class:`ProviderLineageCheck` is the port the release gate and compliance use:
  which providers in a model version's lineage are unassessed or expired.

Every call authorizes first, on the requested name, before anything is looked up;
every refusal is audited (``provider.refused``) and changes nothing.

Example::

    providers.register(actor, "credit", "acme-bureau", ProviderKind.DATA)
    providers.assess(actor, "credit", "acme-bureau", AssessmentRequest(
        ("personal", "financial"), True, ("ISO 27001",), "2026-11-01", "2027-11-01", "medium"))
    providers.link(actor, "credit", "acme-bureau", LinkTarget.SOURCE, "bureau")
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from bastion.core.access.service import AccessService
from bastion.core.access.values import Actor
from bastion.core.audit.entries import Outcome
from bastion.core.canonical import JSON, canonical_json
from bastion.core.errors import BastionError, Conflict, NotFound
from bastion.core.lineage.graph import Edge, LineageGraph, Node, NodeKind, TreeNode
from bastion.governance.provider_values import (
    Assessment,
    AssessmentRequest,
    Provider,
    ProviderKind,
    ProviderState,
    ProviderStatus,
    check_description,
    check_provider_name,
    state_of,
    validate_assessment,
)
from bastion.model_security.values import ModelRef, ModelVersion

#: lineage relation from a provider to what it supplies
SUPPLIES = "supplies"  # provider -> source
PROVIDES = "provides"  # provider -> model_version


class LinkTarget(enum.StrEnum):
    SOURCE = "source"
    MODEL = "model"


class ProviderRepository(Protocol):
    def add_provider(self, p: Provider) -> None: ...
    def provider(self, project: str, name: str) -> Provider | None: ...
    def lookalike(self, project: str, name: str) -> str | None: ...
    def providers(self, project: str) -> list[Provider]: ...
    def add_assessment(self, a: Assessment) -> Assessment: ...
    def assessments(self, project: str, provider: str) -> list[Assessment]: ...


class EdgesFrom(Protocol):
    def edges_from(self, kind: str, id: str) -> list[Edge]: ...


@dataclass(frozen=True)
class LinkTargets:
    """Whether what a provider is linked to exists (wired to the data and model stores)."""

    source_exists: Callable[[str, str], bool]
    model_version: Callable[[str, str, int], ModelVersion | None]


@dataclass(frozen=True)
class ProviderLink:
    target_kind: str  # "source" | "model_version"
    target: str  # lineage id
    relation: str
    linked_at: str


@dataclass(frozen=True)
class ProviderDetail:
    state: ProviderState
    history: tuple[Assessment, ...]
    links: tuple[ProviderLink, ...]

    def to_dict(self) -> dict[str, JSON]:
        return {
            **self.state.to_dict(),
            "history": [a.to_dict() for a in self.history],
            "links": [
                {"kind": k.target_kind, "target": k.target, "relation": k.relation,
                 "linked_at": k.linked_at}
                for k in self.links
            ],
        }  # fmt: skip


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def resource(project: str, name: str) -> str:
    return f"project/{project}/provider/{name}"


def provider_node(project: str, name: str) -> Node:
    return Node(NodeKind.PROVIDER, f"{project}/{name}")


class ProviderService:
    def __init__(
        self,
        access: AccessService,
        repo: ProviderRepository,
        lineage: LineageGraph,
        edges: EdgesFrom,
        targets: LinkTargets,
        *,
        today: Callable[[], dt.date] = _today,
    ) -> None:
        self._access = access
        self._repo = repo
        self._lineage = lineage
        self._edges = edges
        self._targets = targets
        self._today = today

    # -- writing -------------------------------------------------------------------------
    def register(
        self, actor: Actor, project: str, name: str, kind: ProviderKind, description: str = ""
    ) -> Provider:
        """Register ``name``; a name that looks like a registered one is refused."""
        check_provider_name(name)
        res = resource(project, name)
        self._access.authorize(actor, "provider.manage", res, details={"kind": kind.value})
        self._access.require_project(project)
        with self._refusals(actor, res, "register"):
            p = Provider(project, name, kind, check_description(description), _now(), actor.name)
            self._repo.add_provider(p)
        self._access.record(actor, "provider.registered", res, Outcome.OK, {"kind": kind.value})
        return p

    def assess(self, actor: Actor, project: str, name: str, req: AssessmentRequest) -> Assessment:
        """Record the next assessment of ``name`` (validated; expired or bad dates refused)."""
        check_provider_name(name)
        res = resource(project, name)
        self._access.authorize(actor, "provider.manage", res, details={"step": "assess"})
        with self._refusals(actor, res, "assess"):
            p = self._require(project, name)
            valid = validate_assessment(req, today=self._today())
        draft = Assessment(
            project, p.name, 0, valid.data_sent, valid.dpa, valid.certifications,
            valid.reviewed_on, valid.expires_on, valid.risk, valid.notes, "", _now(), actor.name,
        )  # fmt: skip
        digest = hashlib.sha256(canonical_json(draft.content())).hexdigest()
        stored = self._repo.add_assessment(dataclasses.replace(draft, sha256=digest))
        self._access.record(
            actor,
            "provider.assessed",
            res,
            Outcome.OK,
            {
                "assessment_version": stored.assessment_version,
                "sha256": digest,
                "risk": stored.risk.value,
                "dpa": stored.dpa,
                "data_sent": [c.value for c in stored.data_sent],
                "reviewed_on": stored.reviewed_on.isoformat(),
                "expires_on": stored.expires_on.isoformat(),
            },
        )
        return stored

    def link(
        self, actor: Actor, project: str, name: str, target_kind: LinkTarget, target: str
    ) -> ProviderLink:
        """Record in lineage that ``name`` supplies a source or provides a model version."""
        check_provider_name(name)
        res = resource(project, name)
        self._access.authorize(
            actor, "provider.manage", res, details={"link": f"{target_kind.value}:{target}"}
        )
        with self._refusals(actor, res, "link"):
            p = self._require(project, name)
            dst, relation = self._target_node(project, target_kind, target)
            src = provider_node(project, p.name)
            if any(e.dst.key == dst.key for e in self._edges.edges_from(src.kind, src.id)):
                raise Conflict(
                    f"provider {p.name!r} is already linked to {dst.kind} {dst.id}",
                    hint="a link is recorded once; see `bastion provider show`",
                )
        # The edge first, then its binding audit entry: a crash between the two leaves
        # an edge that lineage verification reports as unbound, never a silent link.
        edge = self._lineage.link(src, dst, relation)
        self._access.record(
            actor,
            "provider.linked",
            res,
            Outcome.OK,
            {"target_kind": dst.kind, "target": dst.id, "relation": relation},
        )
        return ProviderLink(dst.kind, dst.id, relation, edge.created_at)

    # -- reading ---------------------------------------------------------------------------
    def providers(self, actor: Actor, project: str) -> list[ProviderState]:
        self._access.authorize(actor, "provider.read", f"project/{project}/providers")
        today = self._today()
        return [self._state(p, today) for p in self._repo.providers(project)]

    def show(self, actor: Actor, project: str, name: str) -> ProviderDetail:
        check_provider_name(name)
        self._access.authorize(actor, "provider.read", resource(project, name))
        p = self._require(project, name)
        history = tuple(self._repo.assessments(project, p.name))
        node = provider_node(project, p.name)
        links = tuple(
            ProviderLink(e.dst.kind, e.dst.id, e.relation, e.created_at)
            for e in self._edges.edges_from(node.kind, node.id)
        )
        latest = history[-1] if history else None
        return ProviderDetail(state_of(p, latest, self._today()), history, links)

    # -- helpers ---------------------------------------------------------------------------
    def _state(self, p: Provider, today: dt.date) -> ProviderState:
        history = self._repo.assessments(p.project, p.name)
        return state_of(p, history[-1] if history else None, today)

    def _require(self, project: str, name: str) -> Provider:
        p = self._repo.provider(project, name)
        if p is None:
            near = self._repo.lookalike(project, name)
            hint = f"did you mean {near!r}?" if near else "register it: bastion provider register"
            raise NotFound(f"no provider {name!r} in project {project}", hint=hint)
        return p

    def _target_node(self, project: str, kind: LinkTarget, target: str) -> tuple[Node, str]:
        if kind is LinkTarget.SOURCE:
            check_provider_name(target)
            if not self._targets.source_exists(project, target):
                raise NotFound(f"no source {target!r} in project {project}")
            return Node(NodeKind.SOURCE, f"{project}/{target}"), SUPPLIES
        r = ModelRef.parse(target)
        if r.version is None:
            raise NotFound(
                f"say which version of model {r.name} the provider is linked to",
                hint=f"use {r.name}@VERSION",
            )
        v = self._targets.model_version(project, r.name, r.version)
        if v is None:
            raise NotFound(f"model {r.name} has no version {r.version} in project {project}")
        return Node(NodeKind.MODEL_VERSION, v.lineage_id, v.root_digest), PROVIDES

    def _refusals(self, actor: Actor, res: str, step: str) -> _Refusals:
        return _Refusals(self._access, actor, res, step)


class _Refusals:
    """Audit a refusal (``provider.refused``) raised inside the block, then re-raise it."""

    def __init__(self, access: AccessService, actor: Actor, res: str, step: str) -> None:
        self._args = (access, actor, res, step)

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, e: BaseException | None, tb: object) -> None:
        if isinstance(e, BastionError):
            access, actor, res, step = self._args
            details: dict[str, JSON] = {"step": step, "code": e.code, "reason": e.message[:500]}
            access.record(actor, "provider.refused", res, Outcome.FAILED, details)


class ProviderLineageCheck:
    """The port the release gate and the compliance checks use (no authorization: the
    caller has authorized its own action on the model version).

    ``unassessed_providers`` returns ``"NAME: REASON"`` for every provider in the
    model version's lineage — linked to the model itself, or to a source upstream
    of its training dataset versions — whose latest assessment is missing or expired.
    """

    def __init__(
        self,
        repo: ProviderRepository,
        lineage: LineageGraph,
        *,
        today: Callable[[], dt.date] = _today,
    ) -> None:
        self._repo = repo
        self._lineage = lineage
        self._today = today

    def providers_of(self, project: str, model_version: ModelVersion) -> list[ProviderState]:
        """Every provider in the lineage of ``model_version`` with its state today."""
        root = Node(NodeKind.MODEL_VERSION, model_version.lineage_id, model_version.root_digest)
        found: dict[str, ProviderState] = {}
        today = self._today()
        for node in _walk(self._lineage.upstream(root)):
            if node.kind != NodeKind.PROVIDER or node.id in found:
                continue
            owner, _, name = node.id.partition("/")
            p = self._repo.provider(owner, name)
            if p is None:  # an edge naming a provider nobody registered
                ghost = Provider(owner, name, ProviderKind.API, "", "", "")
                found[node.id] = ProviderState(
                    ghost, None, ProviderStatus.UNASSESSED, "not in the provider register"
                )
                continue
            history = self._repo.assessments(owner, name)
            found[node.id] = state_of(p, history[-1] if history else None, today)
        return [found[k] for k in sorted(found)]

    def unassessed_providers(self, project: str, model_version: ModelVersion) -> list[str]:
        return [
            f"{s.provider.name}: {s.reason}"
            for s in self.providers_of(project, model_version)
            if s.status is not ProviderStatus.CURRENT
        ]


def _walk(tree: TreeNode) -> Iterator[Node]:
    yield tree.node
    for child in tree.children:
        yield from _walk(child)


__all__ = [
    "PROVIDES",
    "SUPPLIES",
    "LinkTarget",
    "LinkTargets",
    "ProviderDetail",
    "ProviderLineageCheck",
    "ProviderLink",
    "ProviderRepository",
    "ProviderService",
    "provider_node",
    "resource",
]
