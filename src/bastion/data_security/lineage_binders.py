"""What binds a source node in the lineage graph: its registration record.

A ``source`` node has no bytes to re-hash.  It verifies when the source is
registered in the project (the repository row) *and* that registration is on
the tamper-evident audit log (``source.registered``), and it is still trusted.
A source that was never registered, whose row was deleted, or that has been
distrusted fails verification.

Example::

    graph.register_binder(NodeKind.SOURCE, source_binder(dataset_repo, audit))
"""

from __future__ import annotations

from typing import Protocol

from bastion.core.audit.entries import AuditQuery
from bastion.core.audit.log import AuditLog
from bastion.core.errors import NotFound, VerificationFailed
from bastion.core.lineage.graph import Binder, Node
from bastion.data_security.values import Source


class _Sources(Protocol):
    def source(self, project: str, name: str) -> Source | None: ...


def source_binder(sources: _Sources, audit: AuditLog) -> Binder:
    def bind(node: Node) -> str:
        project, _, name = node.id.partition("/")
        src = sources.source(project, name)
        if src is None:
            raise NotFound(f"source {name!r} is not registered in project {project!r}")
        if not src.trusted:
            raise VerificationFailed(f"source {name!r} in {project!r} has been distrusted")
        resource = f"project/{project}/source/{name}"
        entries = audit.query(AuditQuery(action="source.registered", resource=resource, limit=1000))
        registered = [e for e in entries if e.resource == resource and e.outcome == "ok"]
        if not registered:
            raise VerificationFailed(
                f"source {name!r} in {project!r} has no registration on the audit log "
                "(its row was written outside Bastion)"
            )
        return f"registration record (audit entry {registered[0].seq})"

    return bind


__all__ = ["source_binder"]
