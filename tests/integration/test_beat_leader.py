"""Two real `celery -A cxhub beat` processes at once (cxhub/beat.py): only the holder of the
leader lock sends the schedule; when it is killed with SIGKILL, the standby takes over and the
schedule goes on. On the pass's database and broker: PostgreSQL's advisory lock and Redis in
the PostgreSQL pass, the var dir's file lock and the filesystem broker in the embedded one.

The test is the only consumer of the queue: each message says which process sent it (celery's
`origin` header, gen<pid>@host).
"""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from queue import Empty

import pytest
from django.conf import settings
from django.db import connection
from kombu import Connection

from .dispatch_harness import REPO, _tail, database_url, purge, wait_until, worker_env

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]

QUEUE = settings.CELERY_TASK_ROUTES["cxhub.tasks.heartbeat"]["queue"]
# Only the heartbeat, every second; the other schedules far off.
QUIET = {
    "CXHUB_HEARTBEAT_SECONDS": "1",
    "CXHUB_DISPATCH_SECONDS": "3600",
    "CXHUB_SWEEP_SECONDS": "3600",
    "CXHUB_AUDIT_SEAL_SECONDS": "3600",
    "CXHUB_AUDIT_CHECKPOINT_WINDOW_SECONDS": "7200",
    "CXHUB_TOKEN_REFRESH_SECONDS": "3600",
    "CXHUB_SSO_RECHECK_SECONDS": "3600",
    "CXHUB_BEAT_LOCK_SECONDS": "0.2",
}


class Beat:
    def __init__(self, env: dict[str, str], workdir: Path, name: str):
        self.log = workdir / f"{name}.log"
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "cxhub", "beat", "--loglevel", "INFO"]
                + ["-s", str(workdir / f"{name}-schedule")],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def origin(self) -> str:
        return f"gen{self.process.pid}@"

    def logged(self, text: str) -> bool:
        return text in _tail(self.log, 200_000)

    def kill(self, sig=signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        self.process.wait(timeout=30)


class Inbox:
    """What the beats sent to the heartbeat's queue, in order, by sender."""

    def __init__(self, broker: str, var_dir: Path):
        if broker.startswith("filesystem"):
            self.connection = Connection(
                "filesystem://",
                transport="cxhub.broker:Transport",
                transport_options={"data_folder": str(var_dir / "broker")},
            )
        else:
            self.connection = Connection(broker)
        self.queue = self.connection.SimpleQueue(QUEUE)
        self.origins: list[str] = []

    def read(self) -> list[str]:
        while True:
            try:
                message = self.queue.get(block=False)
            except Empty:
                return self.origins
            self.origins.append(message.headers["origin"])
            message.ack()

    def count_from(self, beat: Beat) -> int:
        return sum(origin.startswith(beat.origin) for origin in self.read())

    def close(self) -> None:
        self.queue.close()
        self.connection.release()


@pytest.fixture
def beats(tmp_path):
    broker = os.environ.get("CELERY_BROKER_URL", "") or "filesystem://"
    var_dir = tmp_path / "var"
    env = worker_env(
        database=database_url(connection.settings_dict),
        broker=broker,
        var_dir=var_dir,
        **QUIET,
    )
    purge(broker)
    started: list[Beat] = []
    inbox = Inbox(broker, var_dir)

    def start(name: str) -> Beat:
        beat = Beat(env, tmp_path, name)
        started.append(beat)
        return beat

    yield start, inbox
    for beat in started:
        beat.kill()
    inbox.close()
    purge(broker)


def test_two_beats_send_each_due_time_once_and_the_standby_takes_over(beats):
    start, inbox = beats
    logs = []

    def wait(predicate, what, timeout=60):
        return wait_until(predicate, timeout=timeout, what=what, logs=logs)

    # Given a beat that took the leader lock and sends the heartbeat
    first = start("first")
    logs.append(first.log)
    wait(lambda: first.logged("took the leader lock"), "the first beat to lead")
    postgres = connection.vendor == "postgresql"
    assert first.logged("leader lock -> PostgreSQL" if postgres else "leader lock -> file lock")
    wait(lambda: inbox.count_from(first) >= 1, "the first heartbeat")

    # When a second beat runs beside it (trying the lock five times a second)
    second = start("second")
    logs.append(second.log)
    wait(lambda: second.logged("beat: Starting"), "the second beat to start")
    sent_before = inbox.count_from(first)
    wait(lambda: inbox.count_from(first) >= sent_before + 3, "three more heartbeats")

    # Then only the leader sent: every due time once
    assert set(inbox.read()) == {o for o in inbox.read() if o.startswith(first.origin)}
    assert not second.logged("took the leader lock")
    assert not second.logged("Sending due task")

    # When the leader is killed outright
    first.kill()
    sent_by_first = inbox.count_from(first)

    # Then the standby takes the lock and the schedule goes on from it
    wait(lambda: second.logged("took the leader lock"), "the standby to take over")
    wait(lambda: inbox.count_from(second) >= 3, "three heartbeats from the new leader")
    assert inbox.count_from(first) == sent_by_first
    origins = inbox.read()
    # One sender at a time: the first's messages, then the second's, never interleaved
    switch = next(i for i, o in enumerate(origins) if o.startswith(second.origin))
    assert all(o.startswith(first.origin) for o in origins[:switch])
    assert all(o.startswith(second.origin) for o in origins[switch:])


def test_a_beat_stopped_cleanly_hands_over_at_once(beats):
    start, inbox = beats
    # Given a leader and a standby
    first = start("first")
    wait_until(
        lambda: first.logged("took the leader lock"), timeout=60, what="a leader", logs=[first.log]
    )
    second = start("second")
    wait_until(
        lambda: second.logged("beat: Starting"), timeout=60, what="a standby", logs=[second.log]
    )

    # When the leader is stopped with SIGTERM (a service stop)
    first.kill(signal.SIGTERM)

    # Then it exits cleanly and the standby leads and sends
    assert first.process.returncode == 0, _tail(first.log)
    wait_until(
        lambda: inbox.count_from(second) >= 1,
        timeout=60,
        what="the standby to send",
        logs=[first.log, second.log],
    )
