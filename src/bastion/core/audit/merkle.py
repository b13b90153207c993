"""RFC 6962 Merkle trees: leaf/node hashing, roots, inclusion and consistency proofs.

Leaves hash as ``SHA-256(0x00 || data)`` and nodes as ``SHA-256(0x01 || l || r)``
(domain separation, so a leaf can never pass for a node).  A ``Frontier`` holds
the roots of the perfect subtrees covering a prefix of the log (O(log n)
state), which is enough to append and to compute the root incrementally.

Example::

    f = Frontier()
    for entry in entries:
        f.append(leaf_hash(entry))
    root = f.root()
    proof = inclusion_proof(leaves, index=3)
    assert verify_inclusion(leaves[3], 3, len(leaves), proof, root)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves (RFC 6962 §2.1)."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = _split(n)
    return node_hash(root_of(leaves[:k]), root_of(leaves[k:]))


@dataclass
class Frontier:
    """Roots of the perfect subtrees of a log prefix, largest first."""

    size: int = 0
    peaks: list[tuple[int, bytes]] = field(default_factory=list)  # (height, hash)

    def append(self, leaf: bytes) -> None:
        self.peaks.append((0, leaf))
        self.size += 1
        while len(self.peaks) >= 2 and self.peaks[-1][0] == self.peaks[-2][0]:
            (h, right), (_, left) = self.peaks.pop(), self.peaks.pop()
            self.peaks.append((h + 1, node_hash(left, right)))

    def root(self) -> bytes:
        if not self.peaks:
            return EMPTY_ROOT
        acc = self.peaks[-1][1]
        for _, peak in reversed(self.peaks[:-1]):
            acc = node_hash(peak, acc)
        return acc

    def to_text(self) -> str:
        return ",".join(f"{h}:{p.hex()}" for h, p in self.peaks)

    @classmethod
    def from_text(cls, size: int, text: str) -> Frontier:
        peaks = []
        for part in filter(None, text.split(",")):
            h, p = part.split(":")
            peaks.append((int(h), bytes.fromhex(p)))
        return cls(size, peaks)


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Audit path for leaf ``index`` in the tree over ``leaves`` (RFC 6962 §2.1.1)."""
    if not 0 <= index < len(leaves):
        raise ValueError("leaf index out of range")
    return _path(index, leaves)


def _path(m: int, d: Sequence[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(m, d[:k]), root_of(d[k:])]
    return [*_path(m - k, d[k:]), root_of(d[:k])]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2 verification of an inclusion proof."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """Proof that the first ``old_size`` leaves are a prefix (RFC 6962 §2.1.2)."""
    if not 0 < old_size <= len(leaves):
        raise ValueError("old size must be between 1 and the tree size")
    return _subproof(old_size, leaves, True)


def _subproof(m: int, d: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if complete else [root_of(d)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, d[:k], complete), root_of(d[k:])]
    return [*_subproof(m - k, d[k:], False), root_of(d[:k])]


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> bool:
    """RFC 9162 §2.1.4.2 verification of a consistency proof."""
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0 or old_size > new_size or not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


__all__ = [
    "EMPTY_ROOT",
    "Frontier",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]
