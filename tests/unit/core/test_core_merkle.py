"""RFC 6962 Merkle trees: roots, inclusion and consistency proofs (property tests)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bastion.core.audit import merkle


def leaves(n: int, salt: bytes = b"") -> list[bytes]:
    return [merkle.leaf_hash(salt + i.to_bytes(4, "big")) for i in range(n)]


def test_rfc6962_empty_and_domain_separation() -> None:
    assert merkle.root_of([]) == hashlib.sha256(b"").digest()
    one = merkle.leaf_hash(b"")
    assert one == hashlib.sha256(b"\x00").digest()
    # A leaf can never pass for an inner node over the same bytes.
    assert merkle.leaf_hash(one + one) != merkle.node_hash(one, one)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=70))
def test_property_frontier_matches_root_and_round_trips_text(n: int) -> None:
    ls = leaves(n)
    f = merkle.Frontier()
    for leaf in ls:
        f.append(leaf)
    assert f.root() == merkle.root_of(ls)
    again = merkle.Frontier.from_text(f.size, f.to_text())
    assert again.root() == f.root()
    again.append(merkle.leaf_hash(b"next"))
    assert again.root() == merkle.root_of([*ls, merkle.leaf_hash(b"next")])


@settings(max_examples=80, deadline=None)
@given(data=st.data(), n=st.integers(min_value=1, max_value=70))
def test_property_inclusion_proofs_verify_and_reject_forgeries(data: st.DataObject, n: int) -> None:
    ls = leaves(n)
    root = merkle.root_of(ls)
    i = data.draw(st.integers(min_value=0, max_value=n - 1))
    proof = merkle.inclusion_proof(ls, i)
    assert merkle.verify_inclusion(ls[i], i, n, proof, root)
    # wrong root, wrong leaf, wrong index, wrong size, tampered path
    assert not merkle.verify_inclusion(ls[i], i, n, proof, merkle.leaf_hash(b"forged root"))
    assert not merkle.verify_inclusion(merkle.leaf_hash(b"forged"), i, n, proof, root)
    if n > 1:
        j = data.draw(st.integers(min_value=0, max_value=n - 1))
        assume(j != i)
        assert not merkle.verify_inclusion(ls[i], j, n, proof, root)
        assert not merkle.verify_inclusion(ls[j], i, n, proof, root)
        bad = list(proof)
        bad[0] = merkle.leaf_hash(b"x")
        assert not merkle.verify_inclusion(ls[i], i, n, bad, root)
    # (The size is bound to the root by the signed checkpoint, so only an index
    # outside the tree is checked here.)
    assert not merkle.verify_inclusion(ls[i], n, n, proof, root)


@settings(max_examples=80, deadline=None)
@given(data=st.data(), n=st.integers(min_value=1, max_value=70))
def test_property_consistency_proofs_verify_and_reject_forgeries(
    data: st.DataObject, n: int
) -> None:
    ls = leaves(n)
    m = data.draw(st.integers(min_value=1, max_value=n))
    old_root, new_root = merkle.root_of(ls[:m]), merkle.root_of(ls)
    proof = merkle.consistency_proof(ls, m)
    assert merkle.verify_consistency(m, n, proof, old_root, new_root)
    forged = merkle.leaf_hash(b"forged")
    assert not merkle.verify_consistency(m, n, proof, forged, new_root)
    assert not merkle.verify_consistency(m, n, proof, old_root, forged)
    if m < n:
        # A history rewrite: same size, one old leaf changed -> old root no longer consistent.
        rewritten = [*ls[: m - 1], merkle.leaf_hash(b"rewritten"), *ls[m:]]
        rproof = merkle.consistency_proof(rewritten, m)
        assert not merkle.verify_consistency(m, n, rproof, old_root, merkle.root_of(rewritten))
        bad = list(proof)
        bad[-1] = forged
        assert not merkle.verify_consistency(m, n, bad, old_root, new_root)
        assert not merkle.verify_consistency(m, n, [], old_root, new_root)


def test_proof_arguments_out_of_range() -> None:
    with pytest.raises(ValueError):
        merkle.inclusion_proof(leaves(3), 3)
    with pytest.raises(ValueError):
        merkle.consistency_proof(leaves(3), 0)
    with pytest.raises(ValueError):
        merkle.consistency_proof(leaves(3), 4)
    assert not merkle.verify_consistency(0, 3, [b"x"], b"a", b"b")
    assert not merkle.verify_consistency(4, 3, [b"x"], b"a", b"b")
