"""The stored Merkle tree (audit.merkle_store) against the pure functions of audit.merkle: roots
and proofs for random sizes, O(log n) writes and reads, and the build over existing events."""

import random

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit import merkle, merkle_store
from audit.hashing import event_leaf
from audit.merkle_store import MerkleStoreError
from audit.models import AuditLeaf, MerkleNode
from audit.sealer import seal

pytestmark = pytest.mark.django_db

LEAVES = [merkle.leaf_hash(f"leaf {i}".encode()) for i in range(300)]


def append_in_random_batches(count: int, seed: int = 13) -> None:
    rng = random.Random(seed)
    size = merkle_store.merkle_size()
    while size < count:
        step = min(count - size, rng.choice([1, 1, 2, 3, 7, 16, 40]))
        size = merkle_store.merkle_append(leaf_hashes=LEAVES[size : size + step], start_index=size)


def test_roots_and_proofs_match_the_pure_functions():
    append_in_random_batches(len(LEAVES))
    rng = random.Random(7)
    sizes = [1, 2, 3, 4, 5, 8, 63, 64, 65, 127, 128, 129, 255, 256, 299, 300]
    sizes += rng.sample(range(1, 301), 20)
    for size in sizes:
        assert merkle_store.merkle_root(size=size) == merkle.root_from_leaf_hashes(LEAVES[:size])
        for index in {0, size - 1, size // 2, rng.randrange(size)}:
            assert merkle_store.inclusion_proof(index=index, size=size) == merkle.inclusion_proof(
                LEAVES[:size], index
            )
        for first in {0, 1, size, size // 2, rng.randrange(size + 1)}:
            assert merkle_store.consistency_proof(
                first=first, second=size
            ) == merkle.consistency_proof(LEAVES[:size], first)
    assert merkle_store.merkle_root(size=0) == merkle.EMPTY_ROOT
    assert merkle_store.leaf_hash_at(index=41) == LEAVES[41]


def test_every_perfect_subtree_is_stored_once():
    append_in_random_batches(100)
    expected = sum(100 >> level for level in range(8))  # complete subtrees of each level
    assert MerkleNode.objects.count() == expected
    assert merkle_store.merkle_size() == 100


def test_append_writes_log_n_rows_and_proofs_read_in_one_query():
    merkle_store.merkle_append(leaf_hashes=LEAVES[:255], start_index=0)
    before = MerkleNode.objects.count()
    with CaptureQueriesContext(connection) as queries:
        merkle_store.merkle_append(leaf_hashes=[LEAVES[255]], start_index=255)
    # Leaf 255 completes subtrees of every level up to 8: 9 rows, one insert.
    assert MerkleNode.objects.count() - before == 9
    inserts = [q for q in queries if q["sql"].lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 1
    selects = [q for q in queries if q["sql"].lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2  # the size, the compact range
    with CaptureQueriesContext(connection) as queries:
        merkle_store.inclusion_proof(index=100, size=200)
    assert len(queries) == 2  # the size check, the nodes
    with CaptureQueriesContext(connection) as queries:
        merkle_store.consistency_proof(first=77, second=250)
    assert len(queries) == 2


def test_append_refuses_a_wrong_position_and_bad_hashes():
    merkle_store.merkle_append(leaf_hashes=LEAVES[:5], start_index=0)
    with pytest.raises(MerkleStoreError, match="the next leaf is 5, not 4"):
        merkle_store.merkle_append(leaf_hashes=LEAVES[4:6], start_index=4)
    with pytest.raises(MerkleStoreError, match="32-byte"):
        merkle_store.merkle_append(leaf_hashes=[b"short"], start_index=5)
    assert merkle_store.merkle_append(leaf_hashes=[], start_index=5) == 5
    assert merkle_store.merkle_size() == 5


def test_a_racing_duplicate_append_collides_instead_of_forking():
    merkle_store.merkle_append(leaf_hashes=LEAVES[:3], start_index=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        MerkleNode.objects.create(level=0, index=2, hash=LEAVES[0])


def test_sizes_beyond_the_stored_tree_are_refused(dba_sql):
    merkle_store.merkle_append(leaf_hashes=LEAVES[:10], start_index=0)
    with pytest.raises(MerkleStoreError, match="has 10 leaves, not 11"):
        merkle_store.merkle_root(size=11)
    with pytest.raises(MerkleStoreError, match="not in a tree of 10"):
        merkle_store.inclusion_proof(index=10, size=10)
    with pytest.raises(MerkleStoreError, match="no consistency proof"):
        merkle_store.consistency_proof(first=9, second=8)
    dba_sql('DELETE FROM audit_merklenode WHERE level = 1 AND "index" = 4')  # root 10 = 3/0 + 1/4
    with pytest.raises(MerkleStoreError, match="no node 1/4"):
        merkle_store.merkle_root(size=10)


def test_the_sealer_folds_the_events_in_and_is_idempotent(chain):
    assert seal(batch_size=2).after == 5
    leaves = [merkle.leaf_hash(event_leaf(event)) for event in chain]
    assert merkle_store.merkle_size() == 5
    assert merkle_store.merkle_root(size=5) == merkle.root_from_leaf_hashes(leaves)
    rows = MerkleNode.objects.count()
    assert (seal().before, seal().after) == (5, 5)
    assert MerkleNode.objects.count() == rows
    for index, event in enumerate(chain):
        assert AuditLeaf.objects.get(index=index).event_id == event.seq
        merkle.verify_inclusion(
            leaves[index],
            index,
            5,
            merkle_store.inclusion_proof(index=index, size=5),
            merkle_store.merkle_root(size=5),
        )


def test_event_leaf_is_the_canonical_fields_without_prev_hash(chain):
    leaf = event_leaf(chain[2]).decode()
    assert leaf.startswith('{"action":"post.submitted","actor_id":')
    assert f'"seq":{chain[2].seq},' in leaf and '"data":{"text":"Hello"}' in leaf
    assert "prev_hash" not in leaf


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=12))
def test_any_split_into_batches_gives_the_same_tree(dba_sql, batches):
    dba_sql("DELETE FROM audit_merklenode")
    size = 0
    for step in batches:
        step = min(step, len(LEAVES) - size)
        size = merkle_store.merkle_append(leaf_hashes=LEAVES[size : size + step], start_index=size)
    assert merkle_store.merkle_root(size=size) == merkle.root_from_leaf_hashes(LEAVES[:size])
    assert MerkleNode.objects.count() == sum(size >> level for level in range(size.bit_length()))
    index = batches[0] % size
    assert merkle_store.inclusion_proof(index=index, size=size) == merkle.inclusion_proof(
        LEAVES[:size], index
    )
