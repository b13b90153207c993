"""The witness: the newest signed head, kept outside the metadata database.

Deleting entries *after* the last periodic checkpoint leaves a shorter log that
is internally consistent; the witness file (updated after every commit, only
ever growing) still names the larger size and its root, so verification
notices.  Its path is configurable (``BASTION_AUDIT_WITNESS``) so it can sit on
another volume than the database.

The witness is created exactly once, by the commit that writes the log's first
entry.  A missing witness is never re-created afterwards: doing so would anchor
a truncated log at its truncated size.  ``verify`` reports it; an operator
re-seeds it only after proving the log against an exported checkpoint
(``bastion audit witness-restore --against FILE``).  Exported checkpoints kept
off the machine (``bastion audit checkpoint --export``) also defend against an
attacker who rolls the whole workspace back (docs/operations.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from bastion.core.audit.entries import Checkpoint


class WitnessFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.path.with_suffix(".lock"), "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self) -> Checkpoint | None:
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except ValueError:
            # An unreadable witness is itself evidence of tampering.
            return Checkpoint(-1, "", "", "", "")
        return Checkpoint(
            int(doc["tree_size"]),
            str(doc["root_hash"]),
            str(doc["ts"]),
            str(doc["key_id"]),
            str(doc["signature"]),
        )

    def advance(self, cp: Checkpoint, *, create: bool = False) -> bool:
        """Store ``cp`` unless the witness already names a larger tree.

        A missing witness is written only with ``create=True`` (the first entry
        of an empty log, or an operator's re-seed after a proof); otherwise
        nothing is written and ``False`` is returned, so verification keeps
        failing instead of trusting whatever the log holds now."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            current = self.read()
            if current is None and not create:
                return False
            if current is not None and current.tree_size < 0:
                return False  # unreadable: evidence, never overwritten
            if current is not None and current.tree_size >= cp.tree_size:
                return True
            tmp = self.path.with_suffix(".tmp")
            # No fsync: the database commit is the durable record; after a power
            # loss the witness may lag a few commits, which only narrows what it
            # can prove, never makes verification fail.
            tmp.write_text(json.dumps(cp.to_dict(), sort_keys=True))
            os.replace(tmp, self.path)
        return True

    def replace(self, cp: Checkpoint) -> None:
        """Write ``cp`` whatever the witness holds (an operator's proven re-seed)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(cp.to_dict(), sort_keys=True))
            os.replace(tmp, self.path)


__all__ = ["WitnessFile"]
