"""/healthz under `make run`: it reports the launcher's state of web, worker and beat, and names a
process that is not running; without the launcher's file it is as before."""

import json
import os
import subprocess
import sys

import pytest

from cxhub.run import STATE_FILE_NAME


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return tmp_path


def _process(state="running", pid=4321, restarts=0, last_exit_code=None):
    return {
        "state": state,
        "pid": pid,
        "restarts": restarts,
        "last_exit_code": last_exit_code,
        "since": "2026-03-02T10:00:00+00:00",
    }


def _write(var_dir, processes, launcher_pid=None):
    body = {"launcher_pid": launcher_pid or os.getpid(), "processes": processes}
    (var_dir / STATE_FILE_NAME).write_text(json.dumps(body))


def test_without_the_launchers_file_healthz_is_unchanged(client, db, var_dir):
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert "processes" not in body
    assert set(body) == {"status", "checks", "worker"}


def test_healthz_reports_every_process_running(client, db, var_dir):
    processes = {"web": _process(pid=11), "worker": _process(pid=12), "beat": _process(pid=13)}
    _write(var_dir, processes)

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["processes"] == processes


def test_healthz_names_a_process_that_is_restarting(client, db, var_dir):
    _write(
        var_dir,
        {
            "web": _process(pid=11),
            "worker": _process("restarting", pid=None, restarts=3, last_exit_code=-9),
            "beat": _process(pid=13),
        },
    )

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down: worker"
    assert body["checks"]["database"]["ok"] is True
    assert body["processes"]["worker"] == _process(
        "restarting", pid=None, restarts=3, last_exit_code=-9
    )


def test_healthz_names_a_process_the_launcher_gave_up_on(client, db, var_dir):
    _write(
        var_dir,
        {
            "web": _process(pid=11),
            "worker": _process(pid=12),
            "beat": _process("gave up", pid=None, restarts=4, last_exit_code=1),
        },
    )

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["status"] == "down: beat"


def test_a_file_left_by_a_launcher_that_is_gone_is_ignored(client, db, var_dir):
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    _write(var_dir, {"worker": _process("restarting", pid=None)}, launcher_pid=gone.pid)

    response = client.get("/healthz")

    assert response.status_code == 200
    assert "processes" not in response.json()
