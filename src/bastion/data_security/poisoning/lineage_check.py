"""Lineage verification of a batch: is its source registered, and are its bytes the declared ones?

A poisoned batch often arrives through a side door: a source nobody registered,
or a file swapped after its digest was declared.  ``verify_source`` turns that
into a blocking :class:`CheckResult`.  The workspace wires its real source
registry in; this function only needs the registered names and the digests.

Example::

    check = verify_source("bureau-feed", {"bureau-feed"}, declared_sha256=d, actual_sha256=d)
    assert check.passed
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Collection

from bastion.data_security.checks.report import CheckResult, MetricValue
from bastion.data_security.errors import PoisoningInputError
from bastion.data_security.poisoning._batch import CATEGORY

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def verify_source(
    declared_source: str,
    registered_sources: Collection[str],
    declared_sha256: str | None,
    actual_sha256: str,
    *,
    row_count: int = 0,
) -> CheckResult:
    """Fail (blocking) on an unregistered source or a digest mismatch; flags every row then."""
    actual = actual_sha256.lower()
    if not _SHA256.match(actual):
        raise PoisoningInputError(
            "actual_sha256 must be 64 hex characters",
            hint="pass hashlib.sha256(batch_bytes).hexdigest()",
        )
    declared = declared_sha256.lower() if declared_sha256 is not None else None
    registered = declared_source in registered_sources
    digest_ok = declared is not None and hmac.compare_digest(declared, actual)
    problems: list[str] = []
    if not registered:
        problems.append(f"source {declared_source!r} is not registered")
    if declared is None:
        problems.append("no SHA-256 was declared for the batch")
    elif not digest_ok:
        problems.append("the batch bytes do not match the declared SHA-256")
    metrics: dict[str, MetricValue] = {
        "source": declared_source,
        "source_registered": int(registered),
        "digest_matches": int(digest_ok),
        "actual_sha256": actual,
    }
    passed = not problems
    summary = (
        f"batch comes from registered source {declared_source!r} with the declared digest"
        if passed
        else "; ".join(problems)
    )
    return CheckResult(
        name="source_lineage",
        category=CATEGORY,
        passed=passed,
        blocking=True,
        summary=summary,
        metrics=metrics,
        flagged_rows=() if passed else tuple(range(row_count)),
        details=tuple(problems),
    )


__all__ = ["verify_source"]
