"""Named locks held until the current transaction ends, for work that must run in turn per key
(e.g. the failed sign-ins from one client address, so a lockout is recorded exactly once).

PostgreSQL: a transaction-level advisory lock on a 64-bit hash of the name. SQLite: nothing to
do, as the project's SQLite transactions are IMMEDIATE (settings): a writing transaction holds
the database's write lock from its start, so such work runs in turn already.
(advisory_key also names the session locks the leading beat and the send slots hold, each on a
connection of its own: own_connection, below; cxhub/beat.py, publishing/dispatch/slots.py.)
"""

import copy
import hashlib

from django.db import connection, connections
from django.db.utils import load_backend

# A session holding locks, when its host vanishes without closing it: the server probes it after
# this many idle seconds, every interval, and drops it after count failed probes; so the locks
# come free within about idle + interval × count seconds (the client side likewise).
KEEPALIVE = {"idle": 10, "interval": 5, "count": 3}


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


def own_connection(alias: str, label: str):
    """A new connection to database `alias` that nothing else uses, for session locks: kept open
    (no CONN_MAX_AGE, no health checks closing it), with short TCP keepalives on both sides."""
    db = copy.deepcopy(connections.settings[alias])
    db["CONN_MAX_AGE"] = None
    db["CONN_HEALTH_CHECKS"] = False
    db["OPTIONS"] = {
        **db.get("OPTIONS", {}),
        "keepalives": 1,
        "keepalives_idle": KEEPALIVE["idle"],
        "keepalives_interval": KEEPALIVE["interval"],
        "keepalives_count": KEEPALIVE["count"],
        "connect_timeout": 10,
    }
    wrapper = load_backend(db["ENGINE"]).DatabaseWrapper(db, f"{alias}-{label}")
    wrapper.ensure_connection()
    with wrapper.cursor() as cursor:
        for name in ("idle", "interval", "count"):
            cursor.execute(f"SET tcp_keepalives_{name} = {int(KEEPALIVE[name])}")
    return wrapper
