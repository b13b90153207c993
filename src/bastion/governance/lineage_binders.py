"""What binds a provider node in the lineage graph: its register row and the audit log.

A ``provider`` node (``<project>/<name>``) has no bytes to re-hash.  It verifies
when the provider is in the register, its registration is on the tamper-evident
audit log (``provider.registered``), and *every* edge leaving it (to a source or
a model version) has its ``provider.linked`` entry on the log.  A provider edge
written into the database by hand, or a provider row nobody registered through
Bastion, fails verification.

Example::

    graph.register_binder(NodeKind.PROVIDER, provider_binder(providers, edges, audit))
"""

from __future__ import annotations

import json

from bastion.core.audit.entries import AuditQuery
from bastion.core.audit.log import AuditLog
from bastion.core.errors import NotFound, VerificationFailed
from bastion.core.lineage.graph import Binder, Node
from bastion.governance.providers import EdgesFrom, ProviderRepository, resource


def provider_binder(repo: ProviderRepository, edges: EdgesFrom, audit: AuditLog) -> Binder:
    def bind(node: Node) -> str:
        project, _, name = node.id.partition("/")
        if repo.provider(project, name) is None:
            raise NotFound(f"provider {name!r} is not in the register of project {project!r}")
        res = resource(project, name)

        def entries(action: str) -> list[tuple[int, str]]:
            found = audit.query(AuditQuery(action=action, resource=res, limit=100_000))
            return [(e.seq, e.details) for e in found if e.resource == res and e.outcome == "ok"]

        registered = entries("provider.registered")
        if not registered:
            raise VerificationFailed(
                f"provider {name!r} in {project!r} has no registration on the audit log "
                "(its row was written outside Bastion)"
            )
        linked = set()
        for _, details in entries("provider.linked"):
            d = json.loads(details)
            linked.add((d.get("target_kind"), d.get("target")))
        unbound = [
            e.dst.id
            for e in edges.edges_from(node.kind, node.id)
            if (e.dst.kind, e.dst.id) not in linked
        ]
        if unbound:
            raise VerificationFailed(
                f"provider {name!r} has lineage edges with no provider.linked entry on the "
                f"audit log: {', '.join(sorted(unbound))}"
            )
        return f"register row and audit entries (registered at {registered[0][0]})"

    return bind


__all__ = ["provider_binder"]
