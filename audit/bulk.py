"""Bulk writes of the audit tables without the ORM's cost per row: on PostgreSQL one statement
a table, the rows as arrays (unnest), through a server-side binding cursor; elsewhere the ORM's
bulk_create. The sealer writes three rows per event (a leaf, its nodes), so this is its speed.

Also the cursor the audit writer uses on PostgreSQL (audit.services): server-side binding lets
psycopg prepare a statement that runs again and again, and it is wrapped as Django wraps its own
cursors, so its queries are counted and logged the same.
"""

from collections.abc import Sequence

import psycopg
from django.db import connection as default_connection

from .models import AuditLeaf, MerkleNode


def server_binding_cursor(connection=default_connection):
    """A Django-wrapped cursor binding its parameters on the server (PostgreSQL only)."""
    connection.ensure_connection()
    return connection._prepare_cursor(psycopg.Cursor(connection.connection))


def insert_nodes(rows: Sequence[tuple[int, int, bytes]]) -> None:
    """Insert MerkleNode rows given as (level, index, hash)."""
    if not rows:
        return
    if default_connection.vendor != "postgresql":
        MerkleNode.objects.bulk_create(
            [MerkleNode(level=level, index=index, hash=value) for level, index, value in rows],
            batch_size=1000,
        )
        return
    levels, indexes, hashes = zip(*rows, strict=True)
    with server_binding_cursor() as cursor:
        cursor.execute(
            'INSERT INTO audit_merklenode (level, "index", hash) '
            "SELECT * FROM unnest(%s::smallint[], %s::bigint[], %s::bytea[])",
            [list(levels), list(indexes), list(hashes)],
        )


def insert_leaves(first_index: int, seqs: Sequence[int]) -> None:
    """Insert AuditLeaf rows: leaf first_index + i is the event of seqs[i]."""
    if not seqs:
        return
    if default_connection.vendor != "postgresql":
        AuditLeaf.objects.bulk_create(
            [AuditLeaf(index=first_index + i, event_id=seq) for i, seq in enumerate(seqs)]
        )
        return
    with server_binding_cursor() as cursor:
        cursor.execute(
            'INSERT INTO audit_auditleaf ("index", event_seq) '
            "SELECT * FROM unnest(%s::bigint[], %s::bigint[])",
            [list(range(first_index, first_index + len(seqs))), list(seqs)],
        )
