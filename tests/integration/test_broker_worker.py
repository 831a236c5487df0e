"""The embedded broker (cxhub/broker.py) under a real Celery worker: a worker SIGKILLed while it
holds a message loses nothing; the next worker runs it."""

from pathlib import Path

import pytest
from kombu import Connection

from cxhub.celery import app

from .dispatch_harness import Worker, wait_until, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def _marks(folder: Path, kind: str) -> list[str]:
    return sorted(p.name.removeprefix(f"{kind}-") for p in folder.glob(f"{kind}-*"))


def _held(broker: Path) -> list[Path]:
    return list((broker / "inflight").glob("*/*.msg"))


def test_a_message_held_by_a_killed_worker_is_run_by_the_next_one(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    broker = tmp_path / "var" / "broker"
    env = worker_env(
        database="sqlite:///" + str(tmp_path / "unused.sqlite3"),
        broker="filesystem://",
        var_dir=tmp_path / "var",
        DJANGO_SETTINGS_MODULE="tests.integration.broker_worker_settings",
    )
    first = Worker(env, tmp_path, name="first", concurrency=1, beat=False)
    second = Worker(env, tmp_path, name="second", concurrency=1, beat=False)
    try:
        # Given a worker running the task, its message held (acks_late) and unacknowledged
        first.start()
        with Connection(
            "filesystem://",
            transport="cxhub.broker:Transport",
            transport_options={"data_folder": str(broker)},
        ) as conn:
            app.send_task("tests.broker.hold", args=[str(marks)], connection=conn)
        wait_until(
            lambda: _marks(marks, "started"), timeout=60, what="the task to start", logs=[first.log]
        )
        assert len(_held(broker)) == 1

        # When the worker is SIGKILLed with everything it started
        first.kill()
        assert len(_held(broker)) == 1  # nothing put it back: the killed worker could not

        # Then the next worker gets the message, runs the task to the end and acknowledges it
        (marks / "release").touch()
        second.start()
        wait_until(
            lambda: _marks(marks, "done"),
            timeout=60,
            what="the task to run again",
            logs=[second.log],
        )
        # (two processes started it; the one released after the kill finished it)
        started, done = _marks(marks, "started"), _marks(marks, "done")
        assert len(started) == 2 and len(done) == 1 and done[0] in started
        wait_until(
            lambda: not _held(broker) and not list((broker / "queue").iterdir()),
            timeout=30,
            what="the message to be acknowledged",
            logs=[second.log],
        )
    finally:
        first.stop()
        second.stop()
