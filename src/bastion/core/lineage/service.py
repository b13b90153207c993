"""The lineage graph on behalf of a principal: show, verify and export one project's graph.

Every method authorizes ``lineage.read`` on the project first, so commands and
routes never decide permissions themselves. A node outside the project named
is treated as missing.

Example::

    service = LineageService(access, graph)
    result = service.verify(actor, "default", Node(NodeKind.MODEL_VERSION, "default/scorer@1"))
"""

from __future__ import annotations

from bastion.core.access.service import AccessService
from bastion.core.access.values import Actor
from bastion.core.errors import NotFound
from bastion.core.lineage.graph import (
    CheckStatus,
    Edge,
    LineageGraph,
    LineageVerification,
    Node,
    TreeNode,
    VerifiedNode,
)


class LineageService:
    def __init__(self, access: AccessService, graph: LineageGraph) -> None:
        self._access = access
        self._graph = graph

    def _authorize(self, actor: Actor, project: str) -> None:
        self._access.authorize(actor, "lineage.read", f"project/{project}/lineage")

    def show(self, actor: Actor, project: str, node: Node) -> tuple[TreeNode, TreeNode]:
        """The upstream and downstream trees of ``node``; NotFound if it is not on the graph."""
        self._authorize(actor, project)
        if node.project != project or not self._graph.exists(node):
            raise NotFound(f"no {node.kind} {node.id!r} in the lineage graph of {project}")
        return self._graph.upstream(node), self._graph.downstream(node)

    def verify(self, actor: Actor, project: str, node: Node) -> LineageVerification:
        """Verify ``node`` and everything upstream (a missing node fails)."""
        self._authorize(actor, project)
        if node.project != project:
            why = f"no {node.kind} {node.id!r} in the lineage graph of {project}"
            return LineageVerification(
                node, (VerifiedNode(node, False, None, why, CheckStatus.MISSING),)
            )
        return self._graph.verify(node)

    def edges(self, actor: Actor, project: str) -> list[Edge]:
        """Every edge that ends in ``project`` (for an OpenLineage export)."""
        self._authorize(actor, project)
        return [e for e in self._graph.edges() if e.dst.project == project]


__all__ = ["LineageService"]
