"""Named, encrypted objects in a project: the simplest authorized use of the store.

User-chosen names live only in the metadata index; on disk an object is its
content digest.  Every put and get goes through ``authorize``.

Example::

    info = objects.put(actor, "credit", "contracts/loan-terms.pdf", Path("terms.pdf"))
    objects.get(actor, "credit", "contracts/loan-terms.pdf", Path("out.pdf"))
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bastion.core.audit.entries import Outcome
from bastion.core.canonical import JSON
from bastion.core.errors import Conflict, NotFound
from bastion.core.names import check_object_name
from bastion.core.store.interface import Digest

if TYPE_CHECKING:
    from bastion.core.access.service import AccessService
    from bastion.core.access.values import Actor
    from bastion.core.store.blobs import EncryptedBlobStore, FsckReport


@dataclass(frozen=True)
class NamedObject:
    project: str
    name: str
    digest: Digest
    size: int
    created_at: str
    created_by: str

    def to_dict(self) -> dict[str, JSON]:
        return {
            "project": self.project,
            "name": self.name,
            "digest": self.digest,
            "size": self.size,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


class ObjectIndex(Protocol):
    def add(self, o: NamedObject) -> bool: ...
    def get(self, project: str, name: str) -> NamedObject | None: ...
    def list(self, project: str) -> list[NamedObject]: ...


class ObjectService:
    def __init__(
        self,
        access: AccessService,
        blobs: EncryptedBlobStore,
        index: ObjectIndex,
        *,
        references: Callable[[], set[str]] | None = None,
        busy_for: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self._access = access
        self._blobs = blobs
        self._index = index
        self._references = references
        self._busy_for = busy_for

    def put(self, actor: Actor, project: str, name: str, source: Path) -> NamedObject:
        name = check_object_name(name)
        resource = f"project/{project}/objects/{name}"
        # Authorize on the requested name before looking anything up, so a
        # caller without the right learns nothing about which projects exist.
        self._access.authorize(actor, "blob.write", resource)
        self._access.require_project(project)
        if self._index.get(project, name) is not None:
            raise Conflict(f"object {name!r} already exists in {project}; objects are immutable")
        info = self._blobs.put_file(source)
        obj = NamedObject(
            project,
            name,
            info.digest,
            info.size,
            dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            actor.name,
        )
        if not self._index.add(obj):
            raise Conflict(f"object {name!r} already exists in {project}")
        self._access.record(actor, "blob.stored", resource, Outcome.OK, {"digest": info.digest})
        return obj

    def get(self, actor: Actor, project: str, name: str, dest: Path) -> NamedObject:
        name = check_object_name(name)
        resource = f"project/{project}/objects/{name}"
        self._access.authorize(actor, "blob.read", resource)
        obj = self._index.get(project, name)
        if obj is None:
            raise NotFound(f"no object {name!r} in project {project}")
        self._blobs.copy_to(obj.digest, dest)
        return obj

    def fsck(
        self, actor: Actor, *, repair: bool = False, grace: dt.timedelta = dt.timedelta(hours=1)
    ) -> FsckReport:
        """Verify every stored blob.  Read-only unless ``repair``: deleting
        leftovers is a change to the store and needs ``store.repair`` (admin),
        not ``audit.verify``, which the read-only auditor holds."""
        action = "store.repair" if repair else "audit.verify"
        self._access.authorize(actor, action, "system/blobs")
        # Spare every blob younger than the oldest operation still running
        # (its row is not committed yet), and never less than the grace period.
        grace_s = max(grace.total_seconds(), self._busy_for() + 60.0)
        report = self._blobs.fsck(repair=repair, references=self._references, grace_s=grace_s)
        self._access.record(
            actor,
            "store.fsck",
            "system/blobs",
            Outcome.OK if report.ok else Outcome.FAILED,
            {
                "repair": repair,
                "checked": report.checked,
                "corrupted": len(report.corrupted),
                "orphans_removed": report.orphans_removed,
                "unreferenced_found": report.unreferenced_found,
                "unreferenced_removed": report.unreferenced_removed,
                "incomplete_removed": report.incomplete_removed,
            },
        )
        return report

    def list(self, actor: Actor, project: str) -> list[NamedObject]:
        self._access.authorize(actor, "blob.read", f"project/{project}/objects")
        return self._index.list(project)


__all__ = ["NamedObject", "ObjectIndex", "ObjectService"]
