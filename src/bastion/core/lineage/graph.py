"""The lineage graph service.

Nodes are ``(kind, id)`` pairs; ids carry the project (``credit/loans@3``).
Edges record the digest each end had when the edge was written.  Layers
register, per node kind, what verifies it: a *rehash* function re-reads the
real bytes (an encrypted blob is decrypted, authenticated and re-hashed), a
*binder* checks the node against the record that binds it (a source against
its registration record, a training run against its spec and inputs).

``verify`` reports every node as ``verified`` (re-hashed or bound), ``failed``,
``missing`` (no such node: the root named by the caller has no edge at all) or
``unverifiable`` (a kind nothing can check, or a node with no recorded digest
to re-hash against).  Unverifiable nodes are listed, never counted as verified;
a missing or failed node fails the whole verification.

Example::

    lineage.link(Node("source", "credit/bureau"), Node("dataset_version", "credit/loans@1",
                 "ab12..."), "produced")
    tree = lineage.upstream(Node("dataset_version", "credit/loans@1"))
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from bastion.core.canonical import JSON
from bastion.core.errors import BastionError


class NodeUnverifiable(BastionError):
    """A binder has nothing to check this node against (reported, not a failure)."""

    code = "lineage_unverifiable"


class NodeKind(enum.StrEnum):
    SOURCE = "source"
    DATASET_VERSION = "dataset_version"
    TRAINING_RUN = "training_run"
    MODEL_VERSION = "model_version"
    EVALUATION = "evaluation"
    DEPLOYMENT = "deployment"
    PROVIDER = "provider"  # a third-party provider (governance register)


@dataclass(frozen=True)
class Node:
    kind: str
    id: str
    digest: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.id)

    @property
    def project(self) -> str:
        return self.id.split("/", 1)[0]


@dataclass(frozen=True)
class Edge:
    src: Node
    dst: Node
    relation: str
    created_at: str


@dataclass(frozen=True)
class TreeNode:
    node: Node
    relation: str | None
    children: tuple[TreeNode, ...] = ()

    def to_dict(self) -> dict[str, JSON]:
        return {
            "kind": self.node.kind,
            "id": self.node.id,
            "digest": self.node.digest,
            "relation": self.relation,
            "children": [c.to_dict() for c in self.children],
        }

    def render(self, indent: str = "") -> str:
        rel = f" [{self.relation}]" if self.relation else ""
        digest = f" sha256:{self.node.digest[:12]}" if self.node.digest else ""
        lines = [f"{indent}{self.node.kind} {self.node.id}{digest}{rel}"]
        for child in self.children:
            lines.append(child.render(indent + "  "))
        return "\n".join(lines)


class CheckStatus(enum.StrEnum):
    VERIFIED = "verified"  # re-hashed, or checked against the record that binds it
    FAILED = "failed"  # digest mismatch, unreadable bytes, broken binding
    MISSING = "missing"  # the node does not exist
    UNVERIFIABLE = "unverifiable"  # nothing can check it: reported, not counted


@dataclass(frozen=True)
class VerifiedNode:
    node: Node
    ok: bool  # True only when VERIFIED
    actual: str | None
    problem: str | None = None
    status: CheckStatus = CheckStatus.VERIFIED
    #: how the node was verified ("re-hashed", or what bound it)
    method: str | None = None


@dataclass(frozen=True)
class LineageVerification:
    root: Node
    checked: tuple[VerifiedNode, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """No node failed or is missing (unverifiable ones are listed, not failures)."""
        return bool(self.checked) and all(
            v.status in (CheckStatus.VERIFIED, CheckStatus.UNVERIFIABLE) for v in self.checked
        )

    @property
    def verified(self) -> int:
        return sum(v.status is CheckStatus.VERIFIED for v in self.checked)

    @property
    def unverifiable(self) -> tuple[VerifiedNode, ...]:
        return tuple(v for v in self.checked if v.status is CheckStatus.UNVERIFIABLE)

    def to_dict(self) -> dict[str, JSON]:
        return {
            "root": self.root.id,
            "ok": self.ok,
            "verified": self.verified,
            "unverifiable": len(self.unverifiable),
            "checked": [
                {
                    "kind": v.node.kind,
                    "id": v.node.id,
                    "expected": v.node.digest,
                    "actual": v.actual,
                    "ok": v.ok,
                    "status": v.status.value,
                    "method": v.method,
                    "problem": v.problem,
                }
                for v in self.checked
            ],
        }


class LineageRepository(Protocol):
    def add(self, edge: Edge) -> None: ...
    def edges_into(self, kind: str, id: str) -> list[Edge]: ...
    def edges_from(self, kind: str, id: str) -> list[Edge]: ...
    def all_edges(self) -> list[Edge]: ...


#: re-reads an artifact and returns its digest now (raises on integrity failure)
Rehash = Callable[[Node], str | None]
#: checks a node against the record that binds it; returns what bound it
#: (e.g. "registration record") or raises when the binding does not hold
Binder = Callable[[Node], str]

_MAX_DEPTH = 32


class LineageGraph:
    def __init__(self, repo: LineageRepository) -> None:
        self._repo = repo
        self._rehash: dict[str, Rehash] = {}
        self._binders: dict[str, Binder] = {}

    def register_rehash(self, kind: str, fn: Rehash) -> None:
        self._rehash[kind] = fn

    def register_binder(self, kind: str, fn: Binder) -> None:
        self._binders[kind] = fn

    def exists(self, node: Node) -> bool:
        """Whether any edge touches ``node`` (every recorded node has one)."""
        return bool(
            self._repo.edges_into(node.kind, node.id) or self._repo.edges_from(node.kind, node.id)
        )

    def link(self, src: Node, dst: Node, relation: str) -> Edge:
        edge = Edge(src, dst, relation, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        self._repo.add(edge)
        return edge

    def upstream(self, node: Node, depth: int = 0) -> TreeNode:
        return self._walk(node, None, up=True, depth=depth, seen=set())

    def downstream(self, node: Node) -> TreeNode:
        return self._walk(node, None, up=False, depth=0, seen=set())

    def _walk(
        self, node: Node, relation: str | None, *, up: bool, depth: int, seen: set[tuple[str, str]]
    ) -> TreeNode:
        if depth > _MAX_DEPTH or node.key in seen:
            return TreeNode(node, relation)
        seen = seen | {node.key}
        edges = (
            self._repo.edges_into(node.kind, node.id)
            if up
            else self._repo.edges_from(node.kind, node.id)
        )
        children = tuple(
            self._walk(e.src if up else e.dst, e.relation, up=up, depth=depth + 1, seen=seen)
            for e in edges
        )
        return TreeNode(node, relation, children)

    def descendants(self, node: Node) -> list[Node]:
        """Every node downstream of ``node`` (breadth first, each once, no depth limit)."""
        seen = {node.key}
        out: list[Node] = []
        todo = [node]
        while todo:
            current = todo.pop(0)
            for e in self._repo.edges_from(current.kind, current.id):
                if e.dst.key not in seen:
                    seen.add(e.dst.key)
                    out.append(e.dst)
                    todo.append(e.dst)
        return out

    def node_digest(self, node: Node) -> str | None:
        """The digest recorded for ``node`` on any edge touching it."""
        for e in self._repo.edges_into(node.kind, node.id):
            if e.dst.digest:
                return e.dst.digest
        for e in self._repo.edges_from(node.kind, node.id):
            if e.src.digest:
                return e.src.digest
        return node.digest

    def verify(self, node: Node) -> LineageVerification:
        """Verify ``node`` and everything upstream of it (see the module docstring)."""
        start = Node(node.kind, node.id, node.digest or self.node_digest(node))
        if not self.exists(start):
            missing = VerifiedNode(
                start, False, None, f"no {node.kind} {node.id!r} in the lineage graph",
                CheckStatus.MISSING,
            )
            return LineageVerification(start, (missing,))
        checked: list[VerifiedNode] = []
        seen: set[tuple[str, str]] = set()

        def visit(n: Node, depth: int) -> None:
            if n.key in seen or depth > _MAX_DEPTH:
                return
            seen.add(n.key)
            checked.append(self._check(n))
            for e in self._repo.edges_into(n.kind, n.id):
                visit(e.src, depth + 1)

        visit(start, 0)
        return LineageVerification(start, tuple(checked))

    def _check(self, n: Node) -> VerifiedNode:
        node = Node(n.kind, n.id, n.digest or self.node_digest(n))
        binder = self._binders.get(n.kind)
        if binder is not None:
            return _bind(node, binder)
        rehash = self._rehash.get(n.kind)
        if rehash is None:
            why = "nothing can verify this kind of node"
            return VerifiedNode(node, False, None, why, CheckStatus.UNVERIFIABLE)
        if node.digest is None:
            why = "no digest was recorded to re-hash against"
            return VerifiedNode(node, False, None, why, CheckStatus.UNVERIFIABLE)
        try:
            actual = rehash(node)
        except NodeUnverifiable as e:  # e.g. bytes crypto-shredded by an erasure request
            return VerifiedNode(node, False, None, e.message, CheckStatus.UNVERIFIABLE)
        except Exception as e:  # an integrity failure while re-reading is a failed check
            return VerifiedNode(node, False, None, str(e), CheckStatus.FAILED)
        if actual != node.digest:
            return VerifiedNode(node, False, actual, "digest mismatch", CheckStatus.FAILED)
        return VerifiedNode(node, True, actual, None, CheckStatus.VERIFIED, "re-hashed")

    def edges(self) -> list[Edge]:
        return self._repo.all_edges()

    def edges_into(self, node: Node) -> list[Edge]:
        return self._repo.edges_into(node.kind, node.id)


def _bind(node: Node, binder: Binder) -> VerifiedNode:
    try:
        how = binder(node)
    except NodeUnverifiable as e:
        return VerifiedNode(node, False, None, e.message, CheckStatus.UNVERIFIABLE)
    except Exception as e:  # a binding that does not hold is a failed check
        return VerifiedNode(node, False, None, str(e), CheckStatus.FAILED)
    return VerifiedNode(node, True, node.digest, None, CheckStatus.VERIFIED, how)


def node_payload(node: Node) -> Mapping[str, JSON]:
    return {"kind": node.kind, "id": node.id, "digest": node.digest}


__all__ = [
    "Binder",
    "CheckStatus",
    "Edge",
    "LineageGraph",
    "LineageRepository",
    "LineageVerification",
    "Node",
    "NodeKind",
    "NodeUnverifiable",
    "Rehash",
    "TreeNode",
    "VerifiedNode",
    "node_payload",
]
