"""The lineage graph service.

Nodes are ``(kind, id)`` pairs; ids carry the project (``credit/loans@3``).
Edges record the digest each end had when the edge was written.  Layers
register a *rehash* function per node kind so verification re-reads the real
bytes (an encrypted blob is decrypted, authenticated and re-hashed).

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


class NodeKind(enum.StrEnum):
    SOURCE = "source"
    DATASET_VERSION = "dataset_version"
    TRAINING_RUN = "training_run"
    MODEL_VERSION = "model_version"
    EVALUATION = "evaluation"
    DEPLOYMENT = "deployment"


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


@dataclass(frozen=True)
class VerifiedNode:
    node: Node
    ok: bool
    actual: str | None
    problem: str | None = None


@dataclass(frozen=True)
class LineageVerification:
    root: Node
    checked: tuple[VerifiedNode, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.checked)

    def to_dict(self) -> dict[str, JSON]:
        return {
            "root": self.root.id,
            "ok": self.ok,
            "checked": [
                {
                    "kind": v.node.kind,
                    "id": v.node.id,
                    "expected": v.node.digest,
                    "actual": v.actual,
                    "ok": v.ok,
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

_MAX_DEPTH = 32


class LineageGraph:
    def __init__(self, repo: LineageRepository) -> None:
        self._repo = repo
        self._rehash: dict[str, Rehash] = {}

    def register_rehash(self, kind: str, fn: Rehash) -> None:
        self._rehash[kind] = fn

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
        """Re-hash every artifact upstream of ``node`` (and itself)."""
        checked: list[VerifiedNode] = []
        seen: set[tuple[str, str]] = set()

        def visit(n: Node, depth: int) -> None:
            if n.key in seen or depth > _MAX_DEPTH:
                return
            seen.add(n.key)
            checked.append(self._check(n))
            for e in self._repo.edges_into(n.kind, n.id):
                visit(e.src, depth + 1)

        start = Node(node.kind, node.id, node.digest or self.node_digest(node))
        visit(start, 0)
        return LineageVerification(start, tuple(checked))

    def _check(self, n: Node) -> VerifiedNode:
        expected = n.digest or self.node_digest(n)
        fn = self._rehash.get(n.kind)
        if fn is None or expected is None:
            return VerifiedNode(Node(n.kind, n.id, expected), True, None, "no stored artifact")
        try:
            actual = fn(Node(n.kind, n.id, expected))
        except Exception as e:  # an integrity failure while re-reading is a failed check
            return VerifiedNode(Node(n.kind, n.id, expected), False, None, str(e))
        ok = actual == expected
        return VerifiedNode(
            Node(n.kind, n.id, expected), ok, actual, None if ok else "digest mismatch"
        )

    def edges(self) -> list[Edge]:
        return self._repo.all_edges()

    def edges_into(self, node: Node) -> list[Edge]:
        return self._repo.edges_into(node.kind, node.id)


def node_payload(node: Node) -> Mapping[str, JSON]:
    return {"kind": node.kind, "id": node.id, "digest": node.digest}


__all__ = [
    "Edge",
    "LineageGraph",
    "LineageRepository",
    "LineageVerification",
    "Node",
    "NodeKind",
    "Rehash",
    "TreeNode",
    "VerifiedNode",
    "node_payload",
]
