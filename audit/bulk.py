"""Bulk writes of the audit tables without the ORM's cost per row: on PostgreSQL one statement
a table, the rows as arrays (unnest), through a server-side binding cursor; elsewhere the ORM's
bulk_create. The sealer writes three rows per event (a leaf, its nodes), so this is its speed.

Also the cursor the audit writer uses on PostgreSQL (audit.services, ``writer_execute``): it
binds on the server, it is kept on the connection (making a cursor costs the client as much as
the insert), and it is wrapped as Django wraps its own cursors, so its queries are counted and
logged the same.
"""

from collections.abc import Sequence

import psycopg
from django.db import connection as default_connection

from .models import AuditLeaf, MerkleNode


def server_binding_cursor(connection=default_connection):
    """A Django-wrapped cursor binding its parameters on the server (PostgreSQL only)."""
    connection.ensure_connection()
    return connection._prepare_cursor(psycopg.Cursor(connection.connection))


def writer_execute(connection, sql: str, params: Sequence) -> list[tuple]:
    """Run the audit writer's statement and return its rows (PostgreSQL only), on a psycopg
    cursor kept on the connection (made again for a new connection).

    Not prepared: Django leaves psycopg's preparation off (its connections may go through a
    pooler that cannot keep prepared statements), and a prepared statement's text is lost to
    Django's query log (tried: the bench gained nothing measurable)."""
    connection.ensure_connection()
    raw = connection.connection
    cursor = getattr(connection, "_audit_writer_cursor", None)
    if cursor is None or cursor.closed or cursor.connection is not raw:
        cursor = connection._audit_writer_cursor = psycopg.Cursor(raw)
    wrapped = connection._prepare_cursor(cursor)  # counted and logged as Django's own
    wrapped.execute(sql, params)
    return cursor.fetchall()


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
