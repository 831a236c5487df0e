"""audit.merkle against a naive reference written straight from RFC 9162 §2.1's definitions
(recursive MTH, PATH, PROOF/SUBPROOF over list slices), for every size up to 70 and every pair
of sizes, and verification refusing altered proofs, roots, indexes and sizes."""

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import merkle
from audit.merkle import MerkleProofError

MAX = 70


def ref_mth(entries: list[bytes]) -> bytes:
    n = len(entries)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(entries[:k]) + ref_mth(entries[k:])).digest()


def ref_path(m: int, entries: list[bytes]) -> list[bytes]:
    n = len(entries)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return ref_path(m, entries[:k]) + [ref_mth(entries[k:])]
    return ref_path(m - k, entries[k:]) + [ref_mth(entries[:k])]


def ref_subproof(m: int, entries: list[bytes], whole: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if whole else [ref_mth(entries)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return ref_subproof(m, entries[:k], whole) + [ref_mth(entries[k:])]
    return ref_subproof(m - k, entries[k:], False) + [ref_mth(entries[:k])]


ENTRIES = [f"entry {i}".encode() for i in range(MAX)]
LEAVES = [merkle.leaf_hash(entry) for entry in ENTRIES]
ROOTS = [ref_mth(ENTRIES[:n]) for n in range(MAX + 1)]


def test_hash_prefixes():
    assert merkle.leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert (
        merkle.node_hash(b"a" * 32, b"b" * 32)
        == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    )
    assert merkle.EMPTY_ROOT.hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_known_roots_of_rfc_6962_test_data():
    # The eight-leaf test tree used by CT implementations (leaves "", 0x00, 0x10, 0x2021,
    # 0x3031, 0x40414243, 0x5051525354555657, 0x606162636465666768696a6b6c6d6e6f): published
    # root of the full tree.
    entries = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        bytes(range(0x50, 0x58)),
        bytes(range(0x60, 0x70)),
    ]
    assert merkle.mth(entries).hex() == (
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )
    assert merkle.mth(entries[:1]).hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )


@pytest.mark.parametrize("n", range(MAX + 1))
def test_root_matches_reference(n):
    assert merkle.root_from_leaf_hashes(LEAVES[:n]) == ROOTS[n]
    assert merkle.mth(ENTRIES[:n]) == ROOTS[n]


def test_perfect_subtrees_cover_the_range():
    for n in range(1, MAX + 1):
        nodes = merkle.perfect_subtrees(0, n)
        assert sum(1 << level for level, _ in nodes) == n
        assert (
            merkle.fold([ref_mth(ENTRIES[i << lv : (i + 1) << lv]) for lv, i in nodes]) == ROOTS[n]
        )
    with pytest.raises(ValueError):
        merkle.perfect_subtrees(3, 6)  # not a subtree of any log


@pytest.mark.parametrize("n", range(1, MAX + 1))
def test_inclusion_proofs_for_every_leaf(n):
    for m in range(n):
        proof = merkle.inclusion_proof(LEAVES[:n], m)
        assert proof == ref_path(m, ENTRIES[:n])
        merkle.verify_inclusion(LEAVES[m], m, n, proof, ROOTS[n])


@pytest.mark.parametrize("n", range(1, MAX + 1))
def test_consistency_proofs_for_every_pair(n):
    for m in range(0, n + 1):
        proof = merkle.consistency_proof(LEAVES[:n], m)
        expected = [] if m in (0, n) else ref_subproof(m, ENTRIES[:n], True)
        assert proof == expected, (m, n)
        merkle.verify_consistency(m, n, ROOTS[m], ROOTS[n], proof)


def _flip(value: bytes) -> bytes:
    return bytes([value[0] ^ 1]) + value[1:]


def test_inclusion_refuses_every_alteration():
    for n in (1, 2, 3, 5, 8, 13, 32, 33, 70):
        for m in range(n):
            proof = merkle.inclusion_proof(LEAVES[:n], m)
            for i in range(len(proof)):
                altered = proof[:i] + [_flip(proof[i])] + proof[i + 1 :]
                with pytest.raises(MerkleProofError):
                    merkle.verify_inclusion(LEAVES[m], m, n, altered, ROOTS[n])
            with pytest.raises(MerkleProofError):
                merkle.verify_inclusion(_flip(LEAVES[m]), m, n, proof, ROOTS[n])
            with pytest.raises(MerkleProofError):
                merkle.verify_inclusion(LEAVES[m], m, n, proof, _flip(ROOTS[n]))
            with pytest.raises(MerkleProofError):
                merkle.verify_inclusion(LEAVES[m], m, n, proof + [LEAVES[0]], ROOTS[n])
            if proof:
                with pytest.raises(MerkleProofError):
                    merkle.verify_inclusion(LEAVES[m], m, n, proof[:-1], ROOTS[n])
            for other in (m - 1, m + 1, n):
                if other != m and other >= 0:
                    with pytest.raises(MerkleProofError):
                        merkle.verify_inclusion(LEAVES[m], other, n, proof, ROOTS[n])
            # The size is bound through the root: the proof fails against another size's root.
            for size in (n - 1, n + 1):
                if m < size <= MAX:
                    with pytest.raises(MerkleProofError):
                        merkle.verify_inclusion(LEAVES[m], m, size, proof, ROOTS[size])


def test_consistency_refuses_every_alteration():
    for n in range(2, 40):
        for m in range(1, n):
            proof = merkle.consistency_proof(LEAVES[:n], m)
            for i in range(len(proof)):
                altered = proof[:i] + [_flip(proof[i])] + proof[i + 1 :]
                with pytest.raises(MerkleProofError):
                    merkle.verify_consistency(m, n, ROOTS[m], ROOTS[n], altered)
            with pytest.raises(MerkleProofError):
                merkle.verify_consistency(m, n, _flip(ROOTS[m]), ROOTS[n], proof)
            with pytest.raises(MerkleProofError):
                merkle.verify_consistency(m, n, ROOTS[m], _flip(ROOTS[n]), proof)
            with pytest.raises(MerkleProofError):
                merkle.verify_consistency(m, n, ROOTS[m], ROOTS[n], proof + [LEAVES[0]])
            with pytest.raises(MerkleProofError):
                merkle.verify_consistency(m, n, ROOTS[m], ROOTS[n], proof[:-1])
            with pytest.raises(MerkleProofError):
                merkle.verify_consistency(m, n + 1, ROOTS[m], ROOTS[n + 1], proof)
            if m + 1 < n:
                with pytest.raises(MerkleProofError):
                    merkle.verify_consistency(m + 1, n, ROOTS[m + 1], ROOTS[n], proof)
            # A rewritten history: same sizes, one early leaf changed.
            forged = list(ENTRIES[:n])
            forged[0] = b"rewritten"
            with pytest.raises(MerkleProofError):
                merkle.verify_consistency(
                    m,
                    n,
                    ROOTS[m],
                    ref_mth(forged),
                    merkle.consistency_proof([merkle.leaf_hash(e) for e in forged], m),
                )


def test_consistency_edge_cases():
    merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, ROOTS[5], [])
    merkle.verify_consistency(5, 5, ROOTS[5], ROOTS[5], [])
    with pytest.raises(MerkleProofError, match="empty tree"):
        merkle.verify_consistency(0, 5, ROOTS[1], ROOTS[5], [])
    with pytest.raises(MerkleProofError, match="same size"):
        merkle.verify_consistency(5, 5, ROOTS[5], ROOTS[6], [])
    with pytest.raises(MerkleProofError, match="must be empty"):
        merkle.verify_consistency(5, 5, ROOTS[5], ROOTS[5], [LEAVES[0]])
    with pytest.raises(MerkleProofError, match="cannot extend"):
        merkle.verify_consistency(6, 5, ROOTS[6], ROOTS[5], [LEAVES[0]])
    with pytest.raises(MerkleProofError, match="is empty"):
        merkle.verify_consistency(3, 5, ROOTS[3], ROOTS[5], [])
    with pytest.raises(MerkleProofError, match="32-byte"):
        merkle.verify_consistency(3, 5, ROOTS[3], ROOTS[5], [b"short"])
    with pytest.raises(MerkleProofError, match="outside"):
        merkle.verify_inclusion(LEAVES[0], 0, 0, [], merkle.EMPTY_ROOT)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=3000), st.data())
def test_large_trees_against_the_iterative_root(n, data):
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    root = merkle.root_from_leaf_hashes(leaves)
    m = data.draw(st.integers(min_value=0, max_value=n))
    merkle.verify_consistency(
        m, n, merkle.root_from_leaf_hashes(leaves[:m]), root, merkle.consistency_proof(leaves, m)
    )
    index = data.draw(st.integers(min_value=0, max_value=n - 1))
    proof = merkle.inclusion_proof(leaves, index)
    assert len(proof) <= n.bit_length()
    merkle.verify_inclusion(leaves[index], index, n, proof, root)
