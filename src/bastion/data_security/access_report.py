"""Who read, wrote or was refused on a dataset — answered from the audit log.

Flags unusual access: a first-time reader (a principal whose first read falls
in the report window), bulk exports (more rows than a threshold, or many
exports in a short time), and repeated denials.

Example::

    report = reports.access_report(actor, "credit", "loans")
    for flag in report.flags:
        print(flag.kind, flag.principal, flag.detail)
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass

from bastion.core.access.service import AccessService
from bastion.core.access.values import Actor
from bastion.core.audit.entries import AuditEntry, AuditQuery
from bastion.core.audit.log import AuditLog
from bastion.core.canonical import JSON

READ_ACTIONS = {"dataset.read", "dataset.exported"}
WRITE_ACTIONS = {
    "dataset.ingest",
    "dataset.ingested",
    "dataset.create",
    "dataset.released",
    "dataset.rejected",
    "contract.updated",
    "policy.updated",
}


@dataclass(frozen=True)
class AccessThresholds:
    bulk_rows: int = 100_000
    exports_per_hour: int = 5
    repeated_denials: int = 3
    first_time_window: dt.timedelta = dt.timedelta(days=7)


@dataclass(frozen=True)
class PrincipalAccess:
    principal: str
    reads: int
    rows_read: int
    writes: int
    denials: int
    first_seen: str
    last_seen: str


@dataclass(frozen=True)
class AccessFlag:
    kind: str  # first_time_reader | bulk_export | repeated_denials
    principal: str
    detail: str


@dataclass(frozen=True)
class AccessReport:
    dataset: str
    entries: int
    principals: tuple[PrincipalAccess, ...]
    flags: tuple[AccessFlag, ...]

    def to_dict(self) -> dict[str, JSON]:
        return {
            "dataset": self.dataset,
            "entries": self.entries,
            "principals": [p.__dict__ for p in self.principals],
            "flags": [f.__dict__ for f in self.flags],
        }


class AccessReports:
    def __init__(self, access: AccessService, audit: AuditLog) -> None:
        self._access = access
        self._audit = audit

    def access_report(
        self,
        actor: Actor,
        project: str,
        dataset: str,
        thresholds: AccessThresholds | None = None,
        now: dt.datetime | None = None,
    ) -> AccessReport:
        resource = f"project/{project}/dataset/{dataset}"
        self._access.authorize(actor, "access.report", resource)
        entries = self._entries(resource)
        # The report's own authorization is itself an audit entry: leave it out.
        entries = [e for e in entries if e.action != "access.report"]
        t = thresholds or AccessThresholds()
        return AccessReport(
            f"{project}/{dataset}",
            len(entries),
            _summaries(entries),
            tuple(_flags(entries, t, now or dt.datetime.now(dt.UTC))),
        )

    def _entries(self, resource: str) -> list[AuditEntry]:
        out: list[AuditEntry] = []
        after = 0
        while True:
            batch = self._audit.query(AuditQuery(resource=resource, limit=10_000, after_seq=after))
            # A prefix match would also pick up "loans2"; keep the exact resource.
            out.extend(e for e in batch if e.resource == resource)
            if len(batch) < 10_000:
                return out
            after = batch[-1].seq


def _rows(e: AuditEntry) -> int:
    try:
        value = json.loads(e.details).get("rows", 0)
        return int(value) if isinstance(value, int) else 0
    except ValueError:
        return 0


def _summaries(entries: list[AuditEntry]) -> tuple[PrincipalAccess, ...]:
    by: dict[str, list[AuditEntry]] = defaultdict(list)
    for e in entries:
        by[e.actor].append(e)
    out = []
    for who, es in sorted(by.items()):
        reads = [e for e in es if e.action in READ_ACTIONS and e.outcome == "ok"]
        out.append(
            PrincipalAccess(
                who,
                len(reads),
                sum(_rows(e) for e in reads),
                sum(1 for e in es if e.action in WRITE_ACTIONS and e.outcome != "denied"),
                sum(1 for e in es if e.outcome == "denied"),
                es[0].ts,
                es[-1].ts,
            )
        )
    return tuple(out)


def _flags(entries: list[AuditEntry], t: AccessThresholds, now: dt.datetime) -> list[AccessFlag]:
    flags: list[AccessFlag] = []
    first_read: dict[str, AuditEntry] = {}
    exports: dict[str, list[dt.datetime]] = defaultdict(list)
    denials: dict[str, int] = defaultdict(int)
    for e in entries:
        if e.action in READ_ACTIONS and e.outcome == "ok":
            first_read.setdefault(e.actor, e)
            rows = _rows(e)
            if rows >= t.bulk_rows:
                flags.append(
                    AccessFlag("bulk_export", e.actor, f"{rows} rows at {e.ts} (#{e.seq})")
                )
            if e.action == "dataset.exported":
                exports[e.actor].append(dt.datetime.fromisoformat(e.ts))
        if e.outcome == "denied":
            denials[e.actor] += 1
    for who, first in first_read.items():
        if now - dt.datetime.fromisoformat(first.ts) <= t.first_time_window:
            flags.append(
                AccessFlag("first_time_reader", who, f"first read at {first.ts} (#{first.seq})")
            )
    for who, times in exports.items():
        times.sort()
        for i in range(len(times)):
            j = i
            while j < len(times) and times[j] - times[i] <= dt.timedelta(hours=1):
                j += 1
            if j - i > t.exports_per_hour:
                flags.append(AccessFlag("bulk_export", who, f"{j - i} exports within one hour"))
                break
    for who, count in denials.items():
        if count >= t.repeated_denials:
            flags.append(AccessFlag("repeated_denials", who, f"{count} refused attempts"))
    return flags


__all__ = ["AccessFlag", "AccessReport", "AccessReports", "AccessThresholds", "PrincipalAccess"]
