"""The beat scheduler of `celery -A cxhub beat` (settings: CELERY_BEAT_SCHEDULER): any number of
beats may run, on any hosts; only the one holding the leader lock sends the schedule.

The lock is a session-level advisory lock on PostgreSQL, held by the leader on a connection of
its own: it lasts exactly as long as the leader's session, so a leader killed outright (kill -9,
its socket closed by the kernel) frees it at once, and one whose host vanished frees it when the
server's keepalives give up on the session (set short on that session, below). On SQLite, which
is one machine anyway, it is an flock on a file in the var dir, freed by the kernel when the
process dies. No lease to renew, no clock to trust.

Each tick a standby tries to take the lock and a leader checks that its session is still there;
so a standby takes over within CXHUB_BEAT_LOCK_SECONDS of the lock coming free. Only the leader
opens the schedule file (celery's shelve), so two beats on one machine never write it at once;
a beat that takes over on the same machine goes on from the last leader's due times, one on
another machine from its own file (each entry overdue there is sent once, at the takeover).
A due time falling within a takeover may be sent twice (the dead leader's send and the new
one's): the periodic tasks are all safe to run twice.
"""

import contextlib
import fcntl
import logging
import os
from pathlib import Path

from celery.beat import PersistentScheduler
from django.conf import settings
from django.db import DatabaseError, connections

from .locks import advisory_key, own_connection

log = logging.getLogger("cxhub.beat")

LOCK_NAME = "cxhub.beat.leader"
LOCK_FILE_NAME = "beat.lock"


class PostgresLeaderLock:
    """A session-level advisory lock, on a connection that nothing else uses."""

    def __init__(self, alias: str = "default"):
        self.alias = alias
        self.key = advisory_key(LOCK_NAME)
        self._connection = None

    def _connect(self):
        return own_connection(self.alias, "beat-lock")

    def acquire(self) -> bool:
        """Take the lock if it is free (never waits)."""
        try:
            if self._connection is None:
                self._connection = self._connect()
            with self._connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [self.key])
                return bool(cursor.fetchone()[0])
        except DatabaseError:
            log.warning("beat: the leader lock could not be tried", exc_info=True)
            self._drop()
            return False

    def holds(self) -> bool:
        """Whether the session holding the lock is still there (then so is the lock: only this
        session could release it)."""
        if self._connection is None:
            return False
        try:
            with self._connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                return cursor.fetchone() is not None
        except DatabaseError:
            log.warning("beat: the leader lock's session is gone", exc_info=True)
            self._drop()
            return False

    def release(self) -> None:
        self._drop()  # ending the session releases the lock

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(DatabaseError):
                self._connection.close()
            self._connection = None


class FileLeaderLock:
    """An flock on a file of the var dir: for the embedded default, where everything runs on
    one machine."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holds(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None


def leader_lock():
    """The lock for the configured database."""
    if connections.settings["default"]["ENGINE"].endswith("postgresql"):
        return PostgresLeaderLock()
    return FileLeaderLock(Path(settings.VAR_DIR) / LOCK_FILE_NAME)


class LeaderScheduler(PersistentScheduler):
    """celery's PersistentScheduler, sending only while it holds the leader lock."""

    def __init__(self, *args, **kwargs):
        self.lock = leader_lock()
        self.leading = False
        self.check_every = float(settings.CXHUB_BEAT_LOCK_SECONDS)
        super().__init__(*args, **kwargs)

    def setup_schedule(self):
        # Called by celery at start: a standby leaves the schedule file alone until it leads.
        if self.leading:
            super().setup_schedule()

    def tick(self, *args, **kwargs):
        if self.leading and not self.lock.holds():
            log.warning("beat: lost the leader lock; standing by")
            self._stand_down()
        if not self.leading:
            if not self.lock.acquire():
                return self.check_every
            log.info("beat: took the leader lock (pid %s); sending the schedule", os.getpid())
            self.leading = True
            self._heap = None  # built afresh from the schedule file now opened
            self.setup_schedule()
        # Never sleep past the next check of the lock, so a leader that lost it stops soon.
        return min(super().tick(*args, **kwargs), self.check_every)

    def _stand_down(self) -> None:
        self.leading = False
        # A schedule file that cannot be saved now is left as it was: whoever leads next goes
        # on from its own, at worst sending each entry once at once.
        with contextlib.suppress(Exception):
            if self._store is not None:
                self._store.close()
        self._store = None
        self._heap = None
        self.lock.release()

    def close(self):
        try:
            super().close()
        finally:
            self._store = None
            self.leading = False
            self.lock.release()

    @property
    def info(self):
        if isinstance(self.lock, FileLeaderLock):
            kind = f"file lock {self.lock.path}"
        else:
            kind = "PostgreSQL advisory lock"
        return f"{super().info}\n    . leader lock -> {kind}"
