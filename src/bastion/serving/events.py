"""Worker events into the audit log, as the gateway (no principal acts in a crash).

Example::

    worker = SandboxedWorker(spec, sandbox, on_event=audited(ws.access, "credit/scoring"))
"""

from __future__ import annotations

from collections.abc import Mapping

from bastion.core.access.service import AccessService
from bastion.core.access.values import Actor, PrincipalId
from bastion.core.audit.entries import Outcome
from bastion.core.canonical import JSON
from bastion.serving.workers import EventSink

#: the actor of events no principal caused (a worker crash, a restart)
GATEWAY = Actor(PrincipalId("system:gateway"), "system:gateway")


def audited(access: AccessService, resource: str) -> EventSink:
    """An event sink appending ``serving.worker.*`` events to the audit log."""

    def sink(event: str, details: Mapping[str, JSON]) -> None:
        ok = event.endswith("restarted")
        access.record(GATEWAY, event, resource, Outcome.OK if ok else Outcome.FAILED,
                      dict(details))

    return sink


__all__ = ["GATEWAY", "audited"]
