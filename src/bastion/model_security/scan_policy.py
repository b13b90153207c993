"""Per-project scan policy: what an admin allows beyond the built-in allow-list.

The policy is stored one entry per row (``global`` ``module.name`` entries and
``flag`` entries: ``torchscript``, ``opaque-data``).  Changing it needs the
admin-only action ``model.scan_policy``; every change is recorded in the audit
log (``model.scan_policy.changed`` with the entry, the old and the new value).
The registry scans *and* loads with the same :class:`ScanPolicy`, so a global
allowed here is accepted by the scanner and by the restricted loader alike.

Example::

    service.allow(admin, "credit", globals_=("pandas.core.frame.DataFrame",))
    service.policy("credit").allows("pandas.core.frame", "DataFrame")   # True
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from bastion.core.access.service import AccessService
from bastion.core.access.values import Actor
from bastion.core.audit.entries import Outcome
from bastion.model_security.errors import ScanPolicyInvalid
from bastion.model_security.ports import ModelRepository
from bastion.model_security.scanning.policy import (
    FLAG_OPAQUE_DATA,
    FLAG_TORCHSCRIPT,
    FLAGS,
    ScanPolicy,
    validate_global,
)

_GLOBAL = "global"
_FLAG = "flag"


def _resource(project: str) -> str:
    return f"project/{project}/scan-policy"


class ScanPolicyService:
    """Read and change a project's scan policy (admin-only changes, each audited)."""

    def __init__(self, access: AccessService, repo: ModelRepository) -> None:
        self._access = access
        self._repo = repo

    def policy(self, project: str) -> ScanPolicy:
        """The policy the registry scans and loads with (no check: internal use)."""
        entries = self._repo.scan_policy_entries(project)
        flags = {v for k, v in entries if k == _FLAG}
        return ScanPolicy(
            extra_globals=frozenset(v for k, v in entries if k == _GLOBAL),
            allow_torchscript=FLAG_TORCHSCRIPT in flags,
            allow_opaque_data=FLAG_OPAQUE_DATA in flags,
        )

    def show(self, actor: Actor, project: str) -> ScanPolicy:
        self._access.authorize(actor, "model.read", _resource(project))
        self._access.require_project(project)
        return self.policy(project)

    def for_scan(self, actor: Actor, project: str) -> ScanPolicy:
        """The policy to scan a local artifact with (``bastion model scan --project``)."""
        self._access.authorize(actor, "model.scan", _resource(project))
        self._access.require_project(project)
        return self.policy(project)

    def allow(self, actor: Actor, project: str, *, globals_: Sequence[str] = (),
              flags: Sequence[str] = ()) -> ScanPolicy:
        """Add globals and/or flags; validated before anything is stored."""
        return self._change(actor, project, globals_, flags, allow=True)

    def disallow(self, actor: Actor, project: str, *, globals_: Sequence[str] = (),
                 flags: Sequence[str] = ()) -> ScanPolicy:
        return self._change(actor, project, globals_, flags, allow=False)

    def _change(self, actor: Actor, project: str, globals_: Sequence[str],
                flags: Sequence[str], *, allow: bool) -> ScanPolicy:
        entries = _entries(globals_, flags, validate=allow)
        verb = "allow" if allow else "disallow"
        self._access.authorize(actor, "model.scan_policy", _resource(project),
                               details={"change": verb, "entries": [f"{k}:{v}"
                                                                    for k, v in entries]})
        self._access.require_project(project)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        for kind, value in entries:
            if allow:
                changed = self._repo.add_scan_policy_entry(project, kind, value, now,
                                                           actor.name)
            else:
                changed = self._repo.remove_scan_policy_entry(project, kind, value)
            self._access.record(actor, "model.scan_policy.changed", _resource(project),
                                Outcome.OK, {"change": verb, "kind": kind, "value": value,
                                             "changed": changed})
        return self.policy(project)


def _entries(globals_: Sequence[str], flags: Sequence[str], *,
             validate: bool) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for g in globals_:
        if validate:
            validate_global(g)
        out.append((_GLOBAL, g))
    for f in flags:
        if f not in FLAGS:
            raise ScanPolicyInvalid(f"unknown scan-policy flag {f!r}",
                                    hint=f"flags are: {', '.join(FLAGS)}")
        out.append((_FLAG, f))
    if not out:
        raise ScanPolicyInvalid("nothing to change",
                                hint="name a global (module.name) or a flag "
                                     "(--torchscript, --opaque-data)")
    return out


__all__ = ["ScanPolicyService"]
