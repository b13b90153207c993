"""The tamper-evident audit log.

Append-only; each entry is hash-chained to the previous one and is a leaf of
an RFC 6962 Merkle tree.  Ed25519-signed checkpoints (tree size + root) are
stored every ``checkpoint_every`` entries, and a signed head goes to the
witness file after every commit.  ``verify`` recomputes everything and names
the first bad entry; inclusion and consistency proofs are available.

Appends use group commit: concurrent callers in one process share a single
durable transaction, so throughput scales without weakening durability
(every ``append`` returns only after its entry is committed).  The first
caller to find no commit in flight leads: it commits everything queued, wakes
exactly the callers it committed for, and hands leadership to the oldest
caller still queued (no thundering herd: a waiter is woken once, when it is
done or must lead).  The witness still advances after *every* commit: writing
it less often would leave a window in which entries appended after the last
periodic checkpoint could be deleted without ``verify`` noticing, and it costs
one small file write per commit, shared by the whole batch.

``verify`` reads a consistent snapshot - witness, checkpoints, then the head -
and checks exactly the entries the head names, so appends running meanwhile
are never mistaken for tampering; entries beyond that head are accepted only
if a head re-read afterwards names them.  It makes one pass over raw rows
(the prefix root the witness names is captured on the way) instead of building
an ``AuditEntry`` per row.

Example::

    log.append(AuditRecord("alice", "dataset.read", "project/credit/dataset/loans",
                           Outcome.ALLOWED, request_id="r1"))
    report = log.verify()
    assert report.ok, report.first_bad_seq
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json.encoder
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from bastion.core.audit import merkle
from bastion.core.audit.entries import (
    GENESIS,
    AuditEntry,
    AuditQuery,
    AuditRecord,
    Checkpoint,
    Head,
    checkpoint_bytes,
    encode_leaf,
    seal,
)
from bastion.core.audit.ports import AuditRepository, CheckpointSigner, CheckpointVerifier
from bastion.core.audit.witness import WitnessFile
from bastion.core.canonical import JSON
from bastion.core.errors import AuditLogTampered, Conflict, InputError, StorageError

Progress = Callable[[int], None]

#: suffix of the problems ``reseed_witness`` may repair (and nothing else)
_WITNESS_GONE = " [witness lost]"


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


@dataclass(frozen=True)
class ConsistencyReport:
    """Whether today's log extends an exported checkpoint, with the RFC 9162 proof."""

    ok: bool
    old_size: int
    old_root: str
    new_size: int
    new_root: str
    proof: tuple[str, ...]
    problems: tuple[str, ...]

    def to_dict(self) -> dict[str, JSON]:
        return {
            "ok": self.ok,
            "old_size": self.old_size,
            "old_root": self.old_root,
            "new_size": self.new_size,
            "new_root": self.new_root,
            "proof": list(self.proof),
            "problems": list(self.problems),
        }


@dataclass
class _Pending:
    records: Sequence[AuditRecord]
    future: Future[list[AuditEntry]] = field(default_factory=Future)
    #: set once: when ``future`` is done, or when this caller must lead a commit
    wake: threading.Event = field(default_factory=threading.Event)


#: one stored entry as a tuple, in ``AuditEntry`` field order
Row = tuple[int, str, str, str, str, str, str, str, str, str]


@runtime_checkable
class _RowSource(Protocol):
    """Optional fast path of a repository: entries as plain tuples."""

    def iter_rows(self, batch: int = 20_000) -> Iterator[Row]: ...


_esc = json.encoder.encode_basestring_ascii


def _fast_leaf(
    seq: int, ts: str, actor: str, action: str, resource: str, outcome: str,
    request_id: str, details: str, prev_hash: str,
) -> bytes:
    """``encode_leaf`` without building a JSON encoder per call (same bytes).

    ``encode_basestring_ascii`` is exactly what ``json.dumps(ensure_ascii=True)``
    applies to each string; it raises ``TypeError`` on a non-string, and callers
    then fall back to ``encode_leaf``.  ``verify`` also compares this with
    ``encode_leaf`` on the first entry and uses the slow one if they ever differ."""
    if type(seq) is not int:
        raise TypeError("seq must be an int")
    return (
        f"[1,{seq},{_esc(ts)},{_esc(actor)},{_esc(action)},{_esc(resource)},"
        f"{_esc(outcome)},{_esc(request_id)},{_esc(details)},{_esc(prev_hash)}]"
    ).encode("ascii")


def _leaf_of(e: AuditEntry) -> bytes:
    args = (e.seq, e.ts, e.actor, e.action, e.resource, e.outcome, e.request_id, e.details,
            e.prev_hash)
    try:
        return _fast_leaf(*args)
    except TypeError:
        return encode_leaf(*args)


def _frontier(size: int, peaks: list[bytes]) -> merkle.Frontier:
    """A ``merkle.Frontier`` from bare peak hashes (heights follow from ``size``)."""
    heights = [h for h in range(size.bit_length() - 1, -1, -1) if size >> h & 1]
    return merkle.Frontier(size, list(zip(heights, peaks, strict=True)))


@dataclass(frozen=True)
class _Scan:
    size: int
    prev: str
    frontier: merkle.Frontier
    verified: int
    witness_root: str | None  # the root at the witness's size, if reached
    beyond: int | None  # seq of the first row past the snapshot head


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
            lead = not self._committing
            self._committing = True
        if not lead:
            mine.wake.wait()  # set when committed, or when handed leadership
            if mine.future.done():
                return mine.future.result()
        with self._cv:
            batch, self._pending = self._pending, []
        try:
            self._commit(batch)
        finally:
            with self._cv:
                if self._pending:
                    self._pending[0].wake.set()  # the oldest waiter leads next
                else:
                    self._committing = False
            for p in batch:
                if not p.future.done():  # only if _commit itself blew up
                    p.future.set_exception(StorageError("the audit commit was interrupted"))
                p.wake.set()
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
            # Only the commit that wrote the log's first entry may create the
            # witness; a witness gone later stays gone until an operator proves
            # the log against an exported checkpoint (``reseed_witness``).
            self._advance_witness(entries[-1].seq, create=entries[0].seq == 1)

    def _seal(
        self, head: Head, records: Sequence[AuditRecord]
    ) -> tuple[list[AuditEntry], Head, list[Checkpoint]]:
        start = merkle.Frontier.from_text(head.size, head.frontier)
        peaks = [p for _, p in start.peaks]  # bare peak hashes, as in verify's scan
        size, prev = start.size, head.last_hash
        entries: list[AuditEntry] = []
        checkpoints: list[Checkpoint] = []
        sha256 = hashlib.sha256
        for record in records:
            entry = seal(record, size + 1, prev)
            node = sha256(b"\x00" + _leaf_of(entry)).digest()  # merkle.leaf_hash
            n = size
            while n & 1:
                node = sha256(b"\x01" + peaks.pop() + node).digest()  # merkle.node_hash
                n >>= 1
            peaks.append(node)
            size += 1
            entries.append(entry)
            prev = entry.entry_hash
            if size % self._every == 0:
                checkpoints.append(self._sign(size, _frontier(size, peaks).root().hex()))
        frontier = _frontier(size, peaks)
        self._last_frontier = frontier
        return entries, Head(size, prev, frontier.to_text()), checkpoints

    def _advance_witness(self, size: int, *, create: bool) -> None:
        frontier = self._last_frontier
        if frontier.size == size:
            self._witness.advance(self._sign(size, frontier.root().hex()), create=create)

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
        self._witness.advance(cp, create=head.size == 0)
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
        """Re-check chain, Merkle roots, checkpoint signatures and the witness.

        Reads a snapshot in commit order (witness, checkpoints, head: each only
        grows and is written no earlier than the entries it covers) and then
        checks the entries that head names, so concurrent appends are not
        reported as tampering."""
        witness = self._witness.read()
        checkpoints = {cp.tree_size: cp for cp in self._repo.checkpoints()}
        head = self._repo.head()
        problems: list[str] = []
        first_bad: int | None = None

        def bad(seq: int, why: str) -> None:
            nonlocal first_bad
            if first_bad is None:
                first_bad = seq
            if len(problems) < 20:
                problems.append(f"entry {seq}: {why}")

        want = witness.tree_size if witness is not None else -1
        scan = self._scan(head.size, checkpoints, want, bad, progress)
        size, prev, frontier = scan.size, scan.prev, scan.frontier
        for cp in checkpoints.values():
            if cp.tree_size > size:
                bad(size + 1, f"signed checkpoint names {cp.tree_size} entries; log has {size}")
        if head.size != size or (size and head.last_hash != prev):
            bad(min(head.size, size) + 1, f"head names {head.size} entries; log has {size}")
        elif scan.beyond is not None:
            # Rows past the snapshot head: fine if a commit since then named them.
            now = self._repo.head().size
            if scan.beyond > now:
                bad(size + 1, f"head names {now} entries; log has {scan.beyond}")
        if witness is not None:
            self._check_witness(witness, size, frontier, scan.witness_root, bad)
        elif size > 0:
            # Every workspace writes a witness at init and after each commit, so a
            # missing one is itself evidence: it is what hides a truncated tail.
            bad(size, "the witness file is missing (restore it from backup; a log cut back "
                "to its last checkpoint cannot be told apart without it)" + _WITNESS_GONE)
        return VerifyReport(
            ok=first_bad is None,
            entries=size,
            checkpoints_verified=scan.verified,
            first_bad_seq=first_bad,
            problems=tuple(problems),
            root_hash=frontier.root().hex(),
            witness_size=witness.tree_size if witness else None,
        )

    def _rows(self) -> Iterable[Row]:
        if isinstance(self._repo, _RowSource):
            return self._repo.iter_rows()
        return (
            (e.seq, e.ts, e.actor, e.action, e.resource, e.outcome, e.request_id, e.details,
             e.prev_hash, e.entry_hash)
            for e in self._repo.iter_entries()
        )

    def _scan(
        self,
        upto: int,
        checkpoints: dict[int, Checkpoint],
        witness_size: int,
        bad: Callable[[int, str], None],
        progress: Progress | None,
    ) -> _Scan:
        """One pass over the stored rows, up to ``upto`` entries (the snapshot head).

        The hot loop of ``bastion audit verify``: per entry one leaf encoding,
        two SHA-256 and an amortised one node hash, with the Merkle frontier
        kept as a bare list of peak hashes."""
        sha256 = hashlib.sha256
        leaf_fn = _fast_leaf
        peaks: list[bytes] = []
        size, prev, expected, verified = 0, GENESIS, 1, 0
        witness_root = merkle.EMPTY_ROOT.hex() if witness_size == 0 else None
        beyond: int | None = None
        for row in self._rows():
            seq, ts, actor, action, resource, outcome, rid, details, prev_hash, entry_hash = row
            if size >= upto:
                beyond = int(seq)  # appended after the snapshot (checked by the caller)
                break
            if type(seq) is not int:
                seq = int(seq)
            if seq != expected:
                bad(expected, f"missing or reordered (found seq {seq} next)")
                expected = seq
            try:
                data = leaf_fn(seq, ts, actor, action, resource, outcome, rid, details, prev_hash)
                if size == 0 and data != encode_leaf(
                    seq, ts, actor, action, resource, outcome, rid, details, prev_hash
                ):
                    leaf_fn = encode_leaf
                    data = leaf_fn(seq, ts, actor, action, resource, outcome, rid, details,
                                   prev_hash)
            except TypeError:
                data = encode_leaf(seq, ts, actor, action, resource, outcome, rid, details,
                                   prev_hash)
            if sha256(data).hexdigest() != entry_hash:
                bad(seq, "contents do not match its hash (edited)")
            if prev_hash != prev:
                bad(seq, "does not chain to the previous entry")
            prev = entry_hash
            node = sha256(b"\x00" + data).digest()
            n = size
            while n & 1:
                node = sha256(b"\x01" + peaks.pop() + node).digest()
                n >>= 1
            peaks.append(node)
            size += 1
            cp = checkpoints.get(size)
            if cp is not None:
                if self._check_cp(cp, _frontier(size, peaks).root().hex()):
                    verified += 1
                else:
                    bad(seq, f"checkpoint at size {cp.tree_size} does not match")
            if size == witness_size:
                witness_root = _frontier(size, peaks).root().hex()
            expected += 1
            if progress is not None and size % 10_000 == 0:
                progress(10_000)
        return _Scan(size, prev, _frontier(size, peaks), verified, witness_root, beyond)

    def _check_witness(
        self,
        w: Checkpoint,
        size: int,
        frontier: merkle.Frontier,
        prefix_root: str | None,
        bad: Callable[[int, str], None],
    ) -> None:
        if w.tree_size < 0:
            bad(1, "the witness file is unreadable" + _WITNESS_GONE)
        elif w.tree_size > size:
            bad(size + 1, f"witness names {w.tree_size} entries; log has {size} (truncated)")
        elif w.tree_size == size and not self._check_cp(w, frontier.root().hex()):
            bad(size, "witness root or signature does not match the log")
        elif w.tree_size < size:
            # Entries written after the witness: check its signature and its root
            # against the prefix root captured during the scan.
            if not self._verifier.verify(w.key_id, bytes.fromhex(w.signature), w.signed_bytes()):
                bad(w.tree_size, "witness signature is invalid")
            elif prefix_root != w.root_hash:
                bad(w.tree_size, "witness root does not match the log prefix")

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

    def prove_extends(self, cp: Checkpoint) -> ConsistencyReport:
        """Prove (RFC 9162 consistency proof) that today's log extends ``cp``.

        ``cp`` is a checkpoint exported earlier and kept off the host.  Its
        signature is checked with the keyring's audit key (never a key carried
        by the file), then a consistency proof from its tree to the current
        head is built from the stored entries and verified against both roots.
        A log restored from an older backup is shorter than the checkpoint, or
        has a different history at its size: either way the proof fails."""
        head = self._repo.head()
        new_root = merkle.Frontier.from_text(head.size, head.frontier).root()
        problems: list[str] = []
        proof: list[bytes] = []
        if not self._check_sig(cp):
            problems.append(f"the checkpoint's signature does not verify with audit key "
                            f"{cp.key_id!r} (forged, or signed by another workspace)")
        elif cp.tree_size > head.size:
            problems.append(f"the checkpoint names {cp.tree_size} entries but the log has "
                            f"{head.size}: the log was rolled back or truncated")
        else:
            leaves = self._leaves(head.size)
            if len(leaves) != head.size or merkle.root_of(leaves) != new_root:
                problems.append("the stored entries do not match the log head (run `audit verify`)")
            elif cp.tree_size == 0:
                pass  # the empty tree is a prefix of every log
            else:
                proof = merkle.consistency_proof(leaves, cp.tree_size)
                try:
                    old_root = bytes.fromhex(cp.root_hash)
                except ValueError:
                    old_root = b""
                if not merkle.verify_consistency(cp.tree_size, head.size, proof, old_root,
                                                 new_root):
                    problems.append(f"today's log does not extend the checkpoint: its first "
                                    f"{cp.tree_size} entries differ from the ones that were "
                                    "signed (history rewritten or restored from an older backup)")
        return ConsistencyReport(
            ok=not problems,
            old_size=cp.tree_size,
            old_root=cp.root_hash,
            new_size=head.size,
            new_root=new_root.hex(),
            proof=tuple(h.hex() for h in proof),
            problems=tuple(problems),
        )

    def reseed_witness(self, against: Checkpoint) -> Checkpoint:
        """Re-create a lost witness at the current head, only after proving the log.

        The whole log must verify (apart from the missing witness) and extend
        ``against``, an exported checkpoint; otherwise AuditLogTampered."""
        current = self._witness.read()
        if current is not None and current.tree_size >= 0:
            raise Conflict(
                f"the audit witness {self._witness.path} exists; it is never replaced",
                hint="a witness that disagrees with the log is evidence: investigate it",
            )
        proof = self.prove_extends(against)
        report = self.verify()
        others = [p for p in report.problems if not p.endswith(_WITNESS_GONE)]
        if not proof.ok or others:
            raise AuditLogTampered(
                "refusing to re-seed the audit witness: "
                + "; ".join([*proof.problems, *others][:3]),
                hint="investigate before trusting this log; restore the witness from backup",
            )
        head = self._repo.head()
        cp = self._sign(head.size, merkle.Frontier.from_text(head.size, head.frontier).root().hex())
        self._repo.add_checkpoint(cp)
        self._witness.replace(cp)
        return cp

    def _check_sig(self, cp: Checkpoint) -> bool:
        try:
            sig = bytes.fromhex(cp.signature)
        except ValueError:
            return False
        return self._verifier.verify(cp.key_id, sig, cp.signed_bytes())

    def consistency_proof(self, old_size: int, new_size: int) -> list[str]:
        if not 1 <= old_size <= new_size <= self._repo.head().size:
            raise InputError("need 1 <= old size <= new size <= log size")
        return [h.hex() for h in merkle.consistency_proof(self._leaves(new_size), old_size)]


__all__ = ["AuditLog", "ConsistencyReport", "VerifyReport"]
