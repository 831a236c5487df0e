"""Slots: at most `cap` holders of a name at once across every worker process, on every host that
shares the database (issue 16: "more workers never means more 429s"). A lane takes its account's
slot and then its host's before each send, and gives both back after.

On PostgreSQL a slot is a session advisory lock (its key: cxhub.locks.advisory_key of the name
and the slot's number), taken on one connection of the worker process's own (the keeper; one
more connection a process, not one a send thread, with short keepalives): a worker that dies
drops it and with it every slot it held, so nothing is left taken; if the server drops it, the
slots go with it and are taken anew. On SQLite (the
embedded default: one host) a slot is an exclusive flock on a file in VAR_DIR/send-slots, which
the kernel likewise drops with the process. Both are tried without waiting, slot by slot from a
random one; when all are taken, the lane waits a little (up to 100 ms, doubling from 5) and
tries again, until its task stops, or at once when a lane of its own process gives one back.
"""

import contextlib
import fcntl
import os
import random
import threading
import zlib
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection

from cxhub.locks import advisory_key, own_connection

_FIRST_PAUSE = 0.005


class SlotsUnavailable(Exception):
    """The slots cannot be read (the database is unreachable): the send waits for a later try."""


_LONGEST_PAUSE = 0.1


def take(name: str, cap: int, *, stop: threading.Event) -> Callable[[], None] | None:
    """One of the `cap` slots of `name`, as the function that gives it back; None if `stop`
    was set while every slot was taken. SlotsUnavailable when they cannot be read.

    While every slot is taken the lane waits a little and tries again; a slot given back by a
    lane of this process wakes its waiters at once (one of another process is seen at the next
    try)."""
    pause = _FIRST_PAUSE
    tries = _postgres_try if connection.vendor == "postgresql" else _file_try
    given = _given(name)
    while not stop.is_set():
        with given:
            seen = _gives[name]
        first = random.randrange(cap)
        for offset in range(cap):
            release = tries(name, (first + offset) % cap)
            if release is not None:
                return _telling(name, release)
        with given:
            if _gives[name] == seen:  # none given back here since the tries began
                given.wait(pause)
        pause = min(pause * 2, _LONGEST_PAUSE)
    return None


# A slot given back in this process, by name: its waiters here try again at once.
_conditions: dict[str, threading.Condition] = {}
_gives: dict[str, int] = {}
_conditions_made = threading.Lock()


def _given(name: str) -> threading.Condition:
    condition = _conditions.get(name)
    if condition is None:
        with _conditions_made:
            condition = _conditions.setdefault(name, threading.Condition())
            _gives.setdefault(name, 0)
    return condition


def _telling(name: str, release: Callable[[], None]) -> Callable[[], None]:
    def give_back() -> None:
        release()
        condition = _given(name)
        with condition:
            _gives[name] += 1
            condition.notify()

    return give_back


class _Keeper:
    """The process's one connection for slots (cxhub.locks.own_connection), shared by its lanes
    one at a time: a slot is a session advisory lock, and a session may take the same lock
    twice, so the keeper also remembers which slots its process holds and never asks for
    those."""

    def __init__(self):
        self.lock = threading.Lock()
        self.pid = 0
        self.conn = None
        self.held: set[int] = set()

    def take(self, key: int) -> bool:
        with self.lock:
            if key in self.held:
                return False
            try:
                taken = self._ask("SELECT pg_try_advisory_lock(%s)", key)
            except DatabaseError as error:
                self._lost()
                raise SlotsUnavailable(str(error)) from error
            if taken:
                self.held.add(key)
            return taken

    def give(self, key: int) -> None:
        with self.lock:
            if key not in self.held:
                return  # the connection was lost meanwhile, and the slot with it
            self.held.discard(key)
            try:
                self._ask("SELECT pg_advisory_unlock(%s)", key)
            except DatabaseError:
                self._lost()

    def _ask(self, sql: str, key: int) -> bool:
        if self.pid != os.getpid() or self.conn is None:
            # A forked child makes its own: the parent's session and locks are not its.
            self.conn = own_connection("default", "send-slots")
            self.conn.inc_thread_sharing()  # the lanes' threads use it, one at a time
            self.pid = os.getpid()
            self.held.clear()
        with self.conn.cursor() as cursor:
            cursor.execute(sql, [key])
            return bool(cursor.fetchone()[0])

    def _lost(self) -> None:
        """The server dropped the session, and every slot it held with it."""
        with contextlib.suppress(Exception):
            self.conn.close()
        self.conn = None
        self.held.clear()


_keeper = _Keeper()


def close() -> None:
    """Give back every slot of this process and close its connection (tests, shutdown)."""
    with _keeper.lock:
        if _keeper.conn is not None:
            _keeper._lost()


def _postgres_try(name: str, slot: int) -> Callable[[], None] | None:
    key = advisory_key(f"cxhub.send-slot:{name}#{slot}")
    if not _keeper.take(key):
        return None
    return lambda: _keeper.give(key)


def _file_try(name: str, slot: int) -> Callable[[], None] | None:
    folder = Path(settings.VAR_DIR) / "send-slots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{zlib.crc32(name.encode()):08x}-{slot}.lock"
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None

    def release() -> None:
        os.close(descriptor)  # closing the only descriptor of that open gives the lock back

    return release
