"""The Merkle tree over the audit events, stored as the hashes of its perfect subtrees
(audit.models.MerkleNode), with O(log n) writes per appended leaf and O(log n) rows read for a
root or a proof, each in one query.

Design note
-----------
A tree of n leaves is, on its right edge, the perfect subtrees given by the binary digits of n
(its *compact range*); every other perfect subtree lies wholly to their left and was complete
earlier. Appending reads the compact range of the current size (one query, at most log2(n) + 1
rows), hashes the new leaves into it in memory, and inserts each leaf and each subtree that
becomes complete (one bulk insert). Every range whose hash appears in RFC 9162's recursion is a
run of perfect subtrees (audit.merkle.perfect_subtrees), so the root of any size not above the
stored one, and any inclusion or consistency proof, is folded from stored rows: O(log n) of them
fetched in a single query. Nothing here takes locks: the one appender (audit.sealer, under the
tree head's lock) is serialised by its caller; two appenders racing for the same position would
collide on the unique (level, index) constraint instead of forking the tree.
"""

from collections.abc import Iterable, Sequence
from functools import reduce
from operator import or_

from django.db import transaction
from django.db.models import Max, Q

from . import merkle
from .bulk import insert_nodes
from .hashing import event_leaf
from .models import AuditEvent, MerkleNode


class MerkleStoreError(ValueError):
    """The stored tree cannot answer: a size beyond it, an append out of place, a missing node."""


def merkle_size() -> int:
    """The number of leaves in the stored tree."""
    last = MerkleNode.objects.filter(level=0).aggregate(last=Max("index"))["last"]
    return 0 if last is None else last + 1


# Positions asked for in one query at most; a proof of a batch of an export asks for a few
# thousand (siblings shared between neighbouring leaves are asked for once).
FETCH_CHUNK = 10_000


def _fetch(positions: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The stored hashes at ``positions``, one query per FETCH_CHUNK of them: one condition per
    level (``level = L AND index IN (...)``), so the SQL stays small however many are asked."""
    wanted = sorted(set(positions))
    found: dict[tuple[int, int], bytes] = {}
    for start in range(0, len(wanted), FETCH_CHUNK):
        by_level: dict[int, list[int]] = {}
        for level, index in wanted[start : start + FETCH_CHUNK]:
            by_level.setdefault(level, []).append(index)
        condition = reduce(
            or_, (Q(level=level, index__in=indexes) for level, indexes in by_level.items())
        )
        found.update(
            ((level, index), bytes(value))
            for level, index, value in MerkleNode.objects.filter(condition).values_list(
                "level", "index", "hash"
            )
        )
    missing = set(wanted) - found.keys()
    if missing:
        level, index = min(missing)
        raise MerkleStoreError(
            f"the stored tree has no node {level}/{index}: it is smaller than asked, or damaged"
        )
    return found


def merkle_append(*, leaf_hashes: Sequence[bytes], start_index: int) -> int:
    """Append leaves whose hashes (audit.merkle.leaf_hash of each leaf's data) are given, the
    first at position ``start_index``, which must be the stored tree's size. Returns the new
    size. Writes one row per leaf plus one per subtree completed; the caller serialises appends.
    """
    for position, value in enumerate(leaf_hashes):
        if not isinstance(value, bytes) or len(value) != merkle.HASH_SIZE:
            raise MerkleStoreError(f"leaf hash {position} is not a {merkle.HASH_SIZE}-byte hash")
    with transaction.atomic():
        size = merkle_size()
        if start_index != size:
            raise MerkleStoreError(
                f"the stored tree has {size} leaves: the next leaf is {size}, not {start_index}"
            )
        if not leaf_hashes:
            return size
        edge_positions = merkle.perfect_subtrees(0, size) if size else []
        stored = _fetch(edge_positions)
        # The right edge as (level, index, hash), smallest subtree last.
        edge = [(level, index, stored[level, index]) for level, index in edge_positions]
        rows = []
        for offset, value in enumerate(leaf_hashes):
            level, index, current = 0, size + offset, value
            rows.append((0, index, current))
            while edge and edge[-1][0] == level:
                current = merkle.node_hash(edge.pop()[2], current)
                level, index = level + 1, index >> 1
                rows.append((level, index, current))
            edge.append((level, index, current))
        insert_nodes(rows)
        return size + len(leaf_hashes)


def _ranges_hashes(ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """The MTH of each range, folded from stored perfect subtrees fetched in one query."""
    return _many_ranges_hashes({0: list(ranges)})[0]


def _many_ranges_hashes(
    ranges_of: dict[int, list[tuple[int, int]]],
) -> dict[int, list[bytes]]:
    """``_ranges_hashes`` of several lists of ranges at once, their nodes in one query. The
    proofs of neighbouring leaves share most of their ranges: each distinct range is split and
    folded once."""
    distinct = {span for ranges in ranges_of.values() for span in ranges}
    split = {span: merkle.perfect_subtrees(*span) for span in distinct}
    stored = _fetch(position for positions in split.values() for position in positions)
    folded = {
        span: stored[positions[0]]
        if len(positions) == 1
        else merkle.fold([stored[position] for position in positions])
        for span, positions in split.items()
    }
    return {key: [folded[span] for span in ranges] for key, ranges in ranges_of.items()}


def _check_size(size: int) -> None:
    stored = merkle_size()
    if not 0 <= size <= stored:
        raise MerkleStoreError(f"the stored tree has {stored} leaves, not {size}")


def merkle_root(*, size: int) -> bytes:
    """The root hash of the tree of the first ``size`` leaves."""
    _check_size(size)
    if size == 0:
        return merkle.EMPTY_ROOT
    [root] = _ranges_hashes([(0, size)])
    return root


def leaf_hash_at(*, index: int) -> bytes:
    """The stored hash of leaf ``index``."""
    return _fetch([(0, index)])[0, index]


def inclusion_proof(*, index: int, size: int) -> list[bytes]:
    """The RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
    _check_size(size)
    if not 0 <= index < size:
        raise MerkleStoreError(f"leaf {index} is not in a tree of {size} leaves")
    return _ranges_hashes(merkle.inclusion_ranges(index, size))


def inclusion_proofs(*, indexes: Iterable[int], size: int) -> dict[int, list[bytes]]:
    """The inclusion proofs of the leaves ``indexes`` in the tree of ``size`` leaves, keyed by
    leaf index: every node they need fetched in one query (per FETCH_CHUNK nodes), so an export
    pays one query per batch of events however many proofs the batch holds. No size check: the
    caller gives a size it read from a checkpoint (a missing node still raises)."""
    ranges_of = {}
    for index in indexes:
        if not 0 <= index < size:
            raise MerkleStoreError(f"leaf {index} is not in a tree of {size} leaves")
        ranges_of[index] = merkle.inclusion_ranges(index, size)
    return _many_ranges_hashes(ranges_of) if ranges_of else {}


def consistency_proof(*, first: int, second: int) -> list[bytes]:
    """The RFC 9162 consistency proof from the tree of ``first`` leaves to that of ``second``."""
    _check_size(second)
    if not 0 <= first <= second:
        raise MerkleStoreError(f"no consistency proof from {first} leaves to {second}")
    return _ranges_hashes(merkle.consistency_ranges(first, second))


def event_leaf_hash(event: AuditEvent) -> bytes:
    """The tree's leaf hash for an event: SHA-256(0x00 || event_leaf(event))."""
    return merkle.leaf_hash(event_leaf(event))
