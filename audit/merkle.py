"""Merkle tree hashing and proofs as RFC 9162 (Certificate Transparency 2.0) §2.1 defines them,
with the standard library alone. The hashing and the verification of proofs are those of the
standalone verifier (audit/verifier.py), imported from it, so the server and an auditor share
the very same rules; this module adds what only the server needs: making roots and proofs.

Design note
-----------
* Hashes are 32-byte SHA-256 digests. A leaf is ``SHA-256(0x00 || data)``, an interior node
  ``SHA-256(0x01 || left || right)``; the empty tree's root is ``SHA-256("")``. The two prefixes
  keep a leaf from ever passing for a node (second-preimage protection).
* MTH(D[0:n]) splits at k, the largest power of two below n: ``MTH = node(MTH(D[0:k]),
  MTH(D[k:n]))``. Every subtree that occurs in that recursion is a *range* ``[start, end)`` whose
  start is a multiple of a power of two at least as large as the range, so it is the left-to-right
  sequence of perfect (complete, aligned) subtrees given by the binary digits of its length,
  folded from the right (``perfect_subtrees`` and ``fold``). A perfect subtree is named
  ``(level, index)``: it covers leaves ``[index * 2**level, (index + 1) * 2**level)``.
* Proofs are computed in two steps: ``inclusion_ranges`` / ``consistency_ranges`` say which
  ranges' hashes form the proof (RFC 9162 §2.1.3.1 PATH and §2.1.4.1 PROOF/SUBPROOF, unrolled),
  and the caller hashes them, from leaf hashes in memory here or from stored perfect subtrees in
  ``audit.merkle_store``. Each proof needs O(log n) perfect subtrees.
* Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 step by step and raises
  ``MerkleProofError`` saying what failed; it never trusts a proof's length.
  Edge cases the RFC leaves to the caller: a consistency proof from size 0 or between equal
  sizes is empty (and the roots must be the empty root / equal).
"""

from collections.abc import Iterable, Sequence

# The hashing and the verification of proofs live in the standalone verifier, which auditors
# run as it is; they are re-exported here under their usual names.
from .verifier import (  # noqa: F401
    EMPTY_ROOT,
    HASH_SIZE,
    LEAF_PREFIX,
    NODE_PREFIX,
    MerkleProofError,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)


def largest_power_of_two_below(n: int) -> int:
    """k, the largest power of two with k < n (n >= 2): where MTH splits n leaves."""
    if n < 2:
        raise ValueError(f"no split for a tree of {n} leaves")
    return 1 << ((n - 1).bit_length() - 1)


def perfect_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees ``(level, index)``, left to right, whose fold is MTH(D[start:end]).

    ``start`` must be 0 or a multiple of a power of two at least ``end - start`` (true of every
    range in RFC 9162's recursion); then the sizes are the binary digits of the length, largest
    first, each aligned."""
    length = end - start
    if length < 1 or start < 0:
        raise ValueError(f"empty or negative range [{start}, {end})")
    span = 1 << (length - 1).bit_length()  # smallest power of two >= length
    if start % span:
        raise ValueError(f"range [{start}, {end}) is not a subtree of the log")
    if span == length:
        # A perfect subtree itself: every range of an inclusion proof but the rightmost (the
        # common case, kept fast for exports that prove every row).
        level = length.bit_length() - 1
        return [(level, start >> level)]
    nodes = []
    position = start
    for level in range(length.bit_length() - 1, -1, -1):
        if length & (1 << level):
            nodes.append((level, position >> level))
            position += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """Combine the hashes of consecutive perfect subtrees (largest first) into their range's
    MTH: node(h1, node(h2, ... node(h_k-1, h_k)))."""
    if not hashes:
        raise ValueError("nothing to fold")
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of the leaves whose hashes are given, in O(n) time and O(log n) memory."""
    if not leaf_hashes:
        return EMPTY_ROOT
    # The right edge as (level, hash) pairs: the compact range of the leaves seen so far.
    edge: list[tuple[int, bytes]] = []
    for value in leaf_hashes:
        level, current = 0, value
        while edge and edge[-1][0] == level:
            current = node_hash(edge.pop()[1], current)
            level += 1
        edge.append((level, current))
    return fold([value for _, value in edge])


def mth(entries: Iterable[bytes]) -> bytes:
    """The Merkle Tree Hash of a list of entries (the raw data, hashed as leaves here)."""
    return root_from_leaf_hashes([leaf_hash(entry) for entry in entries])


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The ranges whose MTHs form the inclusion proof of leaf ``index`` in a tree of ``size``
    leaves, in proof order (the leaf's sibling first): RFC 9162 §2.1.3.1 PATH(m, D[n])."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    path = []
    low, high = 0, size
    while high - low > 1:
        k = largest_power_of_two_below(high - low)
        if index < low + k:
            path.append((low + k, high))
            high = low + k
        else:
            path.append((low, low + k))
            low = low + k
    path.reverse()
    return path


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The ranges whose MTHs form the consistency proof between the trees of ``first`` and
    ``second`` leaves, in proof order: RFC 9162 §2.1.4.1 PROOF(m, D[n]) = SUBPROOF(m, D[n], true).
    Empty when first is 0 or equals second."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from {first} leaves to {second}")
    if first == 0 or first == second:
        return []
    path = []
    low, high = 0, second
    whole = True  # SUBPROOF's b: is [low, high) still the whole old tree's path?
    while True:
        if first == high:
            if not whole:
                path.append((low, high))
            break
        k = largest_power_of_two_below(high - low)
        if first <= low + k:
            path.append((low + k, high))
            high = low + k
        else:
            path.append((low, low + k))
            low = low + k
            whole = False
    path.reverse()
    return path


def _range_hash(leaf_hashes: Sequence[bytes], start: int, end: int) -> bytes:
    return fold(
        [
            root_from_leaf_hashes(leaf_hashes[index << level : (index + 1) << level])
            for level, index in perfect_subtrees(start, end)
        ]
    )


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """The inclusion proof of leaf ``index`` in the tree of all ``leaf_hashes``."""
    return [
        _range_hash(leaf_hashes, start, end)
        for start, end in inclusion_ranges(index, len(leaf_hashes))
    ]


def consistency_proof(leaf_hashes: Sequence[bytes], first: int) -> list[bytes]:
    """The consistency proof that the tree of the first ``first`` leaves is a prefix of the tree
    of all ``leaf_hashes``."""
    return [
        _range_hash(leaf_hashes, start, end)
        for start, end in consistency_ranges(first, len(leaf_hashes))
    ]
