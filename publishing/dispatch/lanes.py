"""Lanes: the sends of one publish group made at the same time, each account's in its own lane
(issue 16). A worker process waits on the network far more than it computes: one send at a time
left its CPU idle while 400 ms answers came back one by one.

Only the network calls run in the lanes; the claim before them (start.py) and the one outcome
transaction after them (outcome.py) stay where they were, so exactly once does not change: a
send is made only for a target this task claimed `sending`, with its idempotency key, and what
every send answered is stored together.

Politeness: at most CXHUB_PUBLISH_THREADS sends at once per worker process; across every worker
on every host, at most CXHUB_PUBLISH_PER_HOST at once to one network host (an instance's
address, or the network's own API for those with one) and CXHUB_PUBLISH_PER_ACCOUNT for one
account (slots.py); and a group's sends for an account in their order (due time, then post).

When the task's soft time limit strikes (in the task's own thread, while it waits), or the
group has run as long as that limit, no lane starts another send; a send already under way is an
unknown outcome (looked for before any retry, as when one thread sent), and the ones not started
were not sent. The same when the group's time budget runs out, after at least one send.

Groups at once: a worker process of the prefork pool runs one task at a time, so a task that
waited for its slowest lane and then stored its outcomes left the process's other lanes idle
meanwhile. With CXHUB_PUBLISH_GROUPS_AT_ONCE above one, a publish task claims its group, hands
its sends and the storing of their outcomes to a thread of the process (in_background) and
returns, and the process takes its next task while the first group's sends are under way; at
most that many groups a process at once (the next task waits for one to end before it claims
anything). Exactly once is untouched: the claim is the task's, the outcome transaction the same;
a worker that dies with groups under way leaves their targets `sending`, found by the sweeper
like any other. A worker process that stops waits for its groups first (drain).
"""

import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from urllib.parse import urlsplit

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connections

from ..models import PublishAttempt
from . import slots
from .common import _kv
from .outcome import _Result
from .start import _Send

Outcome = PublishAttempt.Outcome
log = logging.getLogger("cxhub.publish")

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_hosts: dict[tuple[str, int], threading.BoundedSemaphore] = {}  # by host and its cap
_made = threading.Lock()  # guards the pool and the hosts' semaphores while they are made


def host_of(send: _Send) -> str:
    """The network host a send talks to: the account's instance, or its network's API."""
    netloc = urlsplit(send.account.base_url or "").netloc
    return netloc.lower() or send.channel


def lanes_of(sends: list[_Send], per_account: int) -> list[list[_Send]]:
    """The group's sends in lanes: each account's in order, dealt over up to `per_account`
    lanes; lanes in the order of their first send."""
    by_account: dict[int, list[list[_Send]]] = {}
    lanes: list[list[_Send]] = []
    dealt: dict[int, int] = {}
    for send in sends:
        own = by_account.setdefault(send.account.pk, [])
        turn = dealt.get(send.account.pk, 0)
        dealt[send.account.pk] = turn + 1
        if len(own) < per_account:
            own.append([])
            lanes.append(own[-1])
        own[turn % len(own)].append(send)
    return lanes


def send_all(
    sends: list[_Send],
    talk: Callable[[_Send], _Result],
    *,
    began: float,
    budget: float,
    not_sent: Callable[[], _Result],
    time_ran_out: str,
    stopped: Callable[[_Send], _Result | None] = lambda send: None,
) -> list[tuple[_Send, _Result, int]]:
    """Every send of the group made (or not) in lanes; (send, result, ms at the network), in
    the group's order. `stopped`, asked just before each send starts: a result instead of it
    (a freeze came while it waited)."""
    state = _GroupState(began=began, budget=budget)
    lanes = lanes_of(sends, max(1, settings.CXHUB_PUBLISH_PER_ACCOUNT))
    pool = _the_pool()
    futures = [
        pool.submit(contextvars.copy_context().run, _run_lane, lane, talk, stopped, state)
        for lane in lanes
    ]
    # No group runs longer than a task may: in the task's thread the soft time limit strikes
    # first; in a thread of its own (in_background), this is the group's limit.
    longest = began + settings.CELERY_TASK_SOFT_TIME_LIMIT - time.monotonic()
    with contextlib.suppress(SoftTimeLimitExceeded):  # it struck: nothing more starts
        wait(futures, timeout=max(0.0, longest))
    with state.lock:
        state.stop.set()  # what is still under way past here counts as not known
        results = []
        for send in sends:
            entry = state.entries.get(send.target_id)
            if entry is None:
                results.append((send, not_sent(), 0))
            elif entry == "started":
                results.append((send, _Result(Outcome.UNKNOWN, error=time_ran_out), 0))
            else:
                results.append(entry)
    return results


class _GroupState:
    def __init__(self, *, began: float, budget: float):
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.entries: dict[int, object] = {}  # target id → "started" or (send, result, ms)
        self.began = began
        self.budget = budget
        self.finished = 0

    def may_start(self, send: _Send) -> bool:
        with self.lock:
            if self.stop.is_set():
                return False
            if self.finished and time.monotonic() - self.began > self.budget:
                return False
            self.entries[send.target_id] = "started"
            return True

    def finish(self, send: _Send, result: _Result, ms: int) -> None:
        with self.lock:
            if self.stop.is_set():
                return  # the task already stored it as not known: the network is asked first
            self.entries[send.target_id] = (send, result, ms)
            self.finished += 1


def _run_lane(lane: list[_Send], talk, stopped, state: _GroupState) -> None:
    """A lane's sends in turn, until one cannot start; those not started were not sent (the
    task stores them so: due again at once)."""
    try:
        for send in lane:
            try:
                if not _send_in_slots(send, talk, stopped, state):
                    return
            except Exception:  # the slots unreadable, or a bug here: never the task's end
                log.exception(_kv(event="publish.lane_error", target=send.target_id))
                return
    finally:
        connections.close_all()  # this thread's own, if a channel read the database


def _send_in_slots(send: _Send, talk, stopped, state: _GroupState) -> bool:
    """One send within its account's and its host's caps, shared by every worker (slots.py),
    the host's taken in this process first so that its lanes do not all ask the database.
    False when the group stopped before it could start."""
    host = host_of(send)
    give_account = slots.take(
        f"account:{send.account.pk}", settings.CXHUB_PUBLISH_PER_ACCOUNT, stop=state.stop
    )
    if give_account is None:
        return False
    try:
        local = _host_slots(host)
        while not local.acquire(timeout=0.5):
            if state.stop.is_set():
                return False
        try:
            give_host = slots.take(f"host:{host}", settings.CXHUB_PUBLISH_PER_HOST, stop=state.stop)
            if give_host is None:
                return False
            try:
                instead = stopped(send)
                if instead is not None:
                    state.finish(send, instead, 0)
                    return True
                if not state.may_start(send):
                    return False
                sent_at = time.monotonic()
                result = talk(send)
                state.finish(send, result, round((time.monotonic() - sent_at) * 1000))
                return True
            finally:
                give_host()
        finally:
            local.release()
    finally:
        give_account()


def _the_pool() -> ThreadPoolExecutor:
    global _pool, _pool_size
    size = max(1, settings.CXHUB_PUBLISH_THREADS)
    with _made:
        if _pool is None or _pool_size != size:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="cxhub-send")
            _pool_size = size
        return _pool


def _host_slots(host: str) -> threading.BoundedSemaphore:
    key = (host, max(1, settings.CXHUB_PUBLISH_PER_HOST))
    semaphore = _hosts.get(key)
    if semaphore is None:
        with _made:
            semaphore = _hosts.setdefault(key, threading.BoundedSemaphore(key[1]))
    return semaphore


# Groups at once (a prefork worker process runs one task at a time) -------------------------------
class _Groups:
    """How many groups of this process are under way, each in a thread of its own."""

    def __init__(self):
        self.changed = threading.Condition()
        self.running = 0

    def enter(self, most: int) -> None:
        with self.changed:
            self.changed.wait_for(lambda: self.running < most)
            self.running += 1

    def leave(self) -> None:
        with self.changed:
            self.running -= 1
            self.changed.notify_all()

    def drain(self, timeout: float | None) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.running == 0, timeout)


_groups = _Groups()


def groups_at_once() -> int:
    """Groups a worker process runs at once (1: each in its task's thread, start to end)."""
    if settings.CXHUB_PUBLISH_THREADS <= 1:
        return 1
    return max(1, settings.CXHUB_PUBLISH_GROUPS_AT_ONCE)


def enter_group() -> None:
    """Wait until this process runs fewer groups than it may, and count one more: called before
    the group is claimed, so that a task waiting here holds nothing."""
    _groups.enter(groups_at_once())


def leave_group() -> None:
    _groups.leave()


def in_background(work: Callable[[], object]) -> None:
    """Run an entered group's `work` (its sends and the storing of their outcomes) in a thread
    of its own, which leaves the group when it is done."""

    def run() -> None:
        try:
            work()
        except Exception:  # the outcomes could not be stored: the sweeper finds them `sending`
            log.exception(_kv(event="publish.group_error"))
        finally:
            connections.close_all()  # the thread's own
            _groups.leave()

    runner = threading.Thread(
        target=contextvars.copy_context().run, args=(run,), name="cxhub-group", daemon=True
    )
    runner.start()


def running_groups() -> int:
    return _groups.running


def drain_at_exit(**kwargs) -> None:
    """Connected to Celery's worker_process_shutdown and worker_shutdown (PublishingConfig):
    a worker process that stops first lets its groups under way end and store their outcomes
    (none runs longer than the soft time limit)."""
    if running_groups():
        drain(timeout=settings.CELERY_TASK_SOFT_TIME_LIMIT + 5)


def drain(timeout: float | None = None) -> bool:
    """Wait for this process's groups to end (a worker process that stops, tests); whether they
    did within `timeout`."""
    return _groups.drain(timeout)
