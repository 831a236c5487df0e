"""Named locks held until the current transaction ends, for work that must run in turn per key
(e.g. the failed sign-ins from one client address, so a lockout is recorded exactly once).

PostgreSQL: a transaction-level advisory lock on a 64-bit hash of the name. SQLite: nothing to
do, as the project's SQLite transactions are IMMEDIATE (settings): a writing transaction holds
the database's write lock from its start, so such work runs in turn already.
(advisory_key also names the session lock the leading beat holds: cxhub/beat.py.)
"""

import hashlib

from django.db import connection


def lock_for_transaction(name: str) -> None:
    """Wait for, then hold until commit or rollback, the lock called `name`."""
    if not connection.in_atomic_block:
        raise RuntimeError("lock_for_transaction() needs a transaction to hold the lock in")
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [advisory_key(name)])


def advisory_key(name: str) -> int:
    """The 64-bit key of PostgreSQL's advisory lock called `name`."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)
