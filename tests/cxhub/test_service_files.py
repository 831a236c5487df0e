"""The Procfile, the systemd units and the environment file of deploy/ name real things: modules
that exist, queues that tasks are routed to (every queue read by some worker), settings that
cxhub reads; the units stop gracefully. And the Procfile's worker and beat, run as written, do
the periodic work together."""

import contextlib
import importlib.util
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from cxhub.models import Heartbeat

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

REPO = Path(__file__).resolve().parents[2]
SYSTEMD = REPO / "deploy" / "systemd"
QUEUES = set(settings.CXHUB_QUEUES)


def _procfile() -> dict[str, list[str]]:
    lines = (REPO / "Procfile").read_text().splitlines()
    entries = [line.split(":", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {name.strip(): shlex.split(command) for name, command in entries}


def _unit(name: str) -> dict[str, list[str]]:
    """Keys of the unit's sections, each with its values in order (keys may repeat)."""
    keys: dict[str, list[str]] = {}
    for line in (SYSTEMD / name).read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            keys.setdefault(key.strip(), []).append(value.strip())
    return keys


def _option(args: list[str], *names: str) -> str | None:
    for index, arg in enumerate(args):
        if arg in names:
            return args[index + 1]
        for name in names:
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def _celery(args: list[str]) -> tuple[str, str]:
    """(app, subcommand) of a `celery -A <app> <subcommand> …` line."""
    assert Path(args[0]).name == "celery", args
    return _option(args, "-A", "--app"), args[3]


def _gunicorn_modules(args: list[str]) -> list[str]:
    assert Path(args[0]).name == "gunicorn", args
    config = _option(args, "-c", "--config")
    assert config.startswith("python:")
    return [config.removeprefix("python:"), args[-1]]


def _assert_module(name: str) -> None:
    assert importlib.util.find_spec(name) is not None, f"no module {name}"


def test_the_procfile_names_real_modules_and_every_queue():
    procfile = _procfile()
    assert {"web", "worker", "beat"} <= set(procfile)
    for module in _gunicorn_modules(procfile["web"]):
        _assert_module(module)
    read = set()
    for name, args in procfile.items():
        if Path(args[0]).name != "celery":
            continue
        app, command = _celery(args)
        _assert_module(app)
        if command == "worker":
            queues = set(_option(args, "-Q", "--queues").split(","))
            assert queues <= QUEUES, f"{name}: no task is routed to {queues - QUEUES}"
            read |= queues
    assert read == QUEUES, "every queue needs a worker"
    assert [_celery(procfile["beat"])[1]] == ["beat"]


def test_the_units_read_the_environment_file_and_stop_gracefully():
    for name in ("cxhub-web.service", "cxhub-worker@.service", "cxhub-beat.service"):
        unit = _unit(name)
        assert "/etc/cxhub/cxhub.env" in unit["EnvironmentFile"], name
        assert unit["KillSignal"] == ["SIGTERM"], name
        assert int(unit["TimeoutStopSec"][0]) > 0, name
    worker = _unit("cxhub-worker@.service")
    # The warm shutdown waits for the running tasks: longer than the longest may run
    assert int(worker["TimeoutStopSec"][0]) > settings.CELERY_TASK_TIME_LIMIT
    assert worker["KillMode"] == ["mixed"]  # SIGTERM to the main process, which stops its pool


def test_the_units_commands_name_real_modules_and_queues():
    web = shlex.split(_unit("cxhub-web.service")["ExecStart"][0])
    for module in _gunicorn_modules(web):
        _assert_module(module)
    beat = shlex.split(_unit("cxhub-beat.service")["ExecStart"][0])
    assert _celery(beat)[1] == "beat"
    _assert_module(_celery(beat)[0])

    worker = _unit("cxhub-worker@.service")
    args = shlex.split(worker["ExecStart"][0])
    assert _celery(args)[1] == "worker"
    assert _option(args, "-Q", "--queues") == "${CXHUB_WORKER_QUEUES}"
    # The instance name is a queue, or names an env file listing several
    assert "CXHUB_WORKER_QUEUES=%i" in worker["Environment"]
    assert "-/etc/cxhub/worker-%i.env" in worker["EnvironmentFile"]
    examples = sorted(SYSTEMD.glob("worker-*.env.example"))
    assert examples
    read = {"publishing"}  # cxhub-worker@publishing, as the unit's comment says
    for example in examples:
        values = dict(
            line.split("=", 1) for line in example.read_text().splitlines() if "=" in line
        )
        queues = set(values["CXHUB_WORKER_QUEUES"].split(","))
        assert queues <= QUEUES, f"{example.name}: no task is routed to {queues - QUEUES}"
        read |= queues
    assert read == QUEUES


def test_the_environment_example_names_only_settings_cxhub_reads():
    source = "".join(
        path.read_text()
        for folder in ("cxhub", "audit", "accounts", "networks", "publishing", "sso")
        for path in (REPO / folder).rglob("*.py")
    )
    names = re.findall(
        r"^#? ?([A-Z][A-Z0-9_]+)=", (REPO / "deploy" / "cxhub.env.example").read_text(), re.M
    )
    assert {"DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "SECRET_KEY_FILE"} <= set(names)
    for name in names:
        read_as = name.removesuffix("_FILE")
        assert f'"{read_as}"' in source, f"cxhub reads no setting {read_as}"


@pytest.mark.integration
@pytest.mark.timeout(180)
@pytest.mark.django_db(transaction=True)
def test_the_procfiles_worker_and_beat_run_the_periodic_work(tmp_path):
    from tests.integration.dispatch_harness import (
        _tail,
        database_url,
        purge,
        wait_until,
        worker_env,
    )

    broker = os.environ.get("CELERY_BROKER_URL", "") or "filesystem://"
    env = worker_env(
        database=database_url(connection.settings_dict),
        broker=broker,
        var_dir=tmp_path / "var",
        CXHUB_HEARTBEAT_SECONDS="1",
        CXHUB_BEAT_LOCK_SECONDS="0.5",
    )
    purge(broker)
    procfile = _procfile()
    started = []
    try:
        for name in ("worker", "beat"):
            log = tmp_path / f"{name}.log"
            # As written, with this interpreter's celery
            args = [sys.executable, "-m", "celery", *procfile[name][1:]]
            with log.open("wb") as out:
                started.append(
                    (
                        log,
                        subprocess.Popen(
                            args,
                            cwd=tmp_path,
                            env={**env, "PYTHONPATH": str(REPO)},
                            stdout=out,
                            stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL,
                            start_new_session=True,
                        ),
                    )
                )
        # The beat's heartbeat goes to the maintenance queue; the worker runs it
        wait_until(
            lambda: Heartbeat.objects.filter(name="worker").exists(),
            timeout=90,
            what="a heartbeat sent by beat and run by the worker",
            logs=[log for log, _ in started],
        )
    finally:
        # As systemd stops them (KillSignal=SIGTERM, KillMode=mixed): the main process only
        for log, process in started:
            process.send_signal(signal.SIGTERM)
        stopped = {}
        for log, process in started:
            try:
                stopped[log.name] = process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stopped[log.name] = _tail(log)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        purge(broker)
    assert stopped == {"worker.log": 0, "beat.log": 0}
