"""The tamper-evident audit log.

Append-only; each entry is hash-chained to the previous one and is a leaf of
an RFC 6962 Merkle tree.  Ed25519-signed checkpoints (tree size + root) are
stored every ``checkpoint_every`` entries, and a signed head goes to the
witness file after every commit.  ``verify`` recomputes everything and names
the first bad entry; inclusion and consistency proofs are available.

Appends use group commit: concurrent callers in one process share a single
durable transaction, so throughput scales without weakening durability
(every ``append`` returns only after its entry is committed).

Example::

    log.append(AuditRecord("alice", "dataset.read", "project/credit/dataset/loans",
                           Outcome.ALLOWED, request_id="r1"))
    report = log.verify()
    assert report.ok, report.first_bad_seq
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from bastion.core.audit import merkle
from bastion.core.audit.entries import (
    GENESIS,
    AuditEntry,
    AuditQuery,
    AuditRecord,
    Checkpoint,
    Head,
    checkpoint_bytes,
    seal,
)
from bastion.core.audit.ports import AuditRepository, CheckpointSigner, CheckpointVerifier
from bastion.core.audit.witness import WitnessFile
from bastion.core.canonical import JSON
from bastion.core.errors import AuditLogTampered, InputError

Progress = Callable[[int], None]


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    entries: int
    checkpoints_verified: int
    first_bad_seq: int | None
    problems: tuple[str, ...]
    root_hash: str
    witness_size: int | None = None

    def to_dict(self) -> dict[str, JSON]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints_verified": self.checkpoints_verified,
            "first_bad_seq": self.first_bad_seq,
            "problems": list(self.problems),
            "root_hash": self.root_hash,
            "witness_size": self.witness_size,
        }


@dataclass
class _Pending:
    records: Sequence[AuditRecord]
    future: Future[list[AuditEntry]] = field(default_factory=Future)


class AuditLog:
    def __init__(
        self,
        repo: AuditRepository,
        signer: CheckpointSigner,
        verifier: CheckpointVerifier,
        witness: WitnessFile,
        *,
        checkpoint_every: int = 1024,
    ) -> None:
        self._repo = repo
        self._signer = signer
        self._verifier = verifier
        self._witness = witness
        self._every = checkpoint_every
        self._cv = threading.Condition()
        self._committing = False
        self._pending: list[_Pending] = []
        self._last_frontier = merkle.Frontier()

    # -- appending ------------------------------------------------------------
    def append(self, record: AuditRecord) -> AuditEntry:
        return self.append_many([record])[0]

    def append_many(self, records: Sequence[AuditRecord]) -> list[AuditEntry]:
        """Durably append ``records``; concurrent callers share one commit.

        Group commit: whoever finds no commit in flight becomes the leader and
        commits everything pending; the others sleep on a condition until their
        entries are committed (by a leader) or they can lead the next batch."""
        mine = _Pending(records)
        with self._cv:
            self._pending.append(mine)
            while not mine.future.done() and self._committing:
                self._cv.wait()
            if mine.future.done():
                return mine.future.result()
            self._committing = True
            batch, self._pending = self._pending, []
        try:
            self._commit(batch)
        finally:
            with self._cv:
                self._committing = False
                self._cv.notify_all()
        return mine.future.result()

    def _commit(self, batch: list[_Pending]) -> None:
        records = [r for p in batch for r in p.records]
        try:
            entries = self._repo.append(records, self._seal)
        except BaseException as e:
            for p in batch:
                p.future.set_exception(e)
            return
        at = 0
        for p in batch:
            p.future.set_result(entries[at : at + len(p.records)])
            at += len(p.records)
        if entries:
            self._advance_witness(entries[-1].seq)

    def _seal(
        self, head: Head, records: Sequence[AuditRecord]
    ) -> tuple[list[AuditEntry], Head, list[Checkpoint]]:
        frontier = merkle.Frontier.from_text(head.size, head.frontier)
        prev, entries, checkpoints = head.last_hash, [], []
        for record in records:
            entry = seal(record, frontier.size + 1, prev)
            frontier.append(merkle.leaf_hash(entry.leaf_data()))
            entries.append(entry)
            prev = entry.entry_hash
            if frontier.size % self._every == 0:
                checkpoints.append(self._sign(frontier.size, frontier.root().hex()))
        self._last_frontier = frontier
        return entries, Head(frontier.size, prev, frontier.to_text()), checkpoints

    def _advance_witness(self, size: int) -> None:
        frontier = self._last_frontier
        if frontier.size == size:
            self._witness.advance(self._sign(size, frontier.root().hex()))

    def _sign(self, size: int, root_hex: str) -> Checkpoint:
        ts = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
        sig = self._signer.sign(checkpoint_bytes(size, root_hex, ts))
        return Checkpoint(size, root_hex, ts, self._signer.key_id, sig.hex())

    def checkpoint(self) -> Checkpoint:
        """Sign and store a checkpoint of the current tree now."""
        head = self._repo.head()
        frontier = merkle.Frontier.from_text(head.size, head.frontier)
        cp = self._sign(head.size, frontier.root().hex())
        self._repo.add_checkpoint(cp)
        self._witness.advance(cp)
        return cp

    # -- reading --------------------------------------------------------------
    def query(self, q: AuditQuery) -> list[AuditEntry]:
        if q.limit <= 0 or q.limit > 100_000:
            raise InputError("limit must be between 1 and 100000")
        return self._repo.query(q)

    def head(self) -> Head:
        return self._repo.head()

    def checkpoints(self) -> list[Checkpoint]:
        return self._repo.checkpoints()

    # -- verification -----------------------------------------------------------
    def verify(self, progress: Progress | None = None) -> VerifyReport:
        """Re-check chain, Merkle roots, checkpoint signatures and the witness."""
        checkpoints = {cp.tree_size: cp for cp in self._repo.checkpoints()}
        problems: list[str] = []
        first_bad: int | None = None
        frontier = merkle.Frontier()
        prev, expected_seq, verified = GENESIS, 1, 0

        def bad(seq: int, why: str) -> None:
            nonlocal first_bad
            if first_bad is None:
                first_bad = seq
            if len(problems) < 20:
                problems.append(f"entry {seq}: {why}")

        for entry in self._repo.iter_entries():
            if entry.seq != expected_seq:
                bad(expected_seq, f"missing or reordered (found seq {entry.seq} next)")
                expected_seq = entry.seq
            data = entry.leaf_data()
            if hashlib.sha256(data).hexdigest() != entry.entry_hash:
                bad(entry.seq, "contents do not match its hash (edited)")
            if entry.prev_hash != prev:
                bad(entry.seq, "does not chain to the previous entry")
            prev = entry.entry_hash
            frontier.append(merkle.leaf_hash(data))
            cp = checkpoints.get(frontier.size)
            if cp is not None:
                if self._check_cp(cp, frontier.root().hex()):
                    verified += 1
                else:
                    bad(entry.seq, f"checkpoint at size {cp.tree_size} does not match")
            expected_seq += 1
            if progress is not None and frontier.size % 10_000 == 0:
                progress(10_000)
        size = frontier.size
        for cp in checkpoints.values():
            if cp.tree_size > size:
                bad(size + 1, f"signed checkpoint names {cp.tree_size} entries; log has {size}")
        head = self._repo.head()
        if head.size != size or (size and head.last_hash != prev):
            bad(min(head.size, size) + 1, f"head names {head.size} entries; log has {size}")
        witness = self._witness.read()
        if witness is not None:
            self._check_witness(witness, size, frontier, bad)
        return VerifyReport(
            ok=first_bad is None,
            entries=size,
            checkpoints_verified=verified,
            first_bad_seq=first_bad,
            problems=tuple(problems),
            root_hash=frontier.root().hex(),
            witness_size=witness.tree_size if witness else None,
        )

    def _check_witness(
        self, w: Checkpoint, size: int, frontier: merkle.Frontier, bad: Callable[[int, str], None]
    ) -> None:
        if w.tree_size < 0:
            bad(1, "the witness file is unreadable")
        elif w.tree_size > size:
            bad(size + 1, f"witness names {w.tree_size} entries; log has {size} (truncated)")
        elif w.tree_size == size and not self._check_cp(w, frontier.root().hex()):
            bad(size, "witness root or signature does not match the log")
        elif w.tree_size < size:
            # Entries written after the witness: check its signature; its root is
            # checked below against a recomputed prefix root.
            if not self._verifier.verify(w.key_id, bytes.fromhex(w.signature), w.signed_bytes()):
                bad(w.tree_size, "witness signature is invalid")
            elif not self._prefix_root_matches(w):
                bad(w.tree_size, "witness root does not match the log prefix")

    def _prefix_root_matches(self, w: Checkpoint) -> bool:
        f = merkle.Frontier()
        for entry in self._repo.iter_entries():
            if f.size == w.tree_size:
                break
            f.append(merkle.leaf_hash(entry.leaf_data()))
        return f.size == w.tree_size and f.root().hex() == w.root_hash

    def _check_cp(self, cp: Checkpoint, root_hex: str) -> bool:
        try:
            sig = bytes.fromhex(cp.signature)
        except ValueError:
            return False
        return cp.root_hash == root_hex and self._verifier.verify(
            cp.key_id, sig, cp.signed_bytes()
        )

    def require_intact(self) -> VerifyReport:
        report = self.verify()
        if not report.ok:
            raise AuditLogTampered(
                f"audit log verification failed at entry {report.first_bad_seq}: "
                + "; ".join(report.problems[:3]),
                hint="investigate: compare with an exported checkpoint; do not trust entries "
                "from the first bad one on",
            )
        return report

    # -- proofs -----------------------------------------------------------------
    def _leaves(self, upto: int) -> list[bytes]:
        leaves: list[bytes] = []
        for entry in self._repo.iter_entries():
            if len(leaves) == upto:
                break
            leaves.append(merkle.leaf_hash(entry.leaf_data()))
        return leaves

    def inclusion_proof(self, seq: int, tree_size: int) -> list[str]:
        if not 1 <= seq <= tree_size <= self._repo.head().size:
            raise InputError(f"need 1 <= seq ({seq}) <= tree size ({tree_size}) <= log size")
        return [h.hex() for h in merkle.inclusion_proof(self._leaves(tree_size), seq - 1)]

    def consistency_proof(self, old_size: int, new_size: int) -> list[str]:
        if not 1 <= old_size <= new_size <= self._repo.head().size:
            raise InputError("need 1 <= old size <= new size <= log size")
        return [h.hex() for h in merkle.consistency_proof(self._leaves(new_size), old_size)]


__all__ = ["AuditLog", "VerifyReport"]
