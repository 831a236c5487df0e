"""The README's first command, from a clean copy of the repository: `make run` creates its own
virtual environment, migrates, loads the demo, starts web + worker + beat, answers /healthz, lets a
printed demo login sign in, starts a killed worker again while the web keeps answering, and Ctrl-C
stops every process.

In CI's PostgreSQL pass it runs on PostgreSQL + Redis (a database of its own); in the embedded
pass on SQLite and the filesystem broker.
"""

import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
# Variables the test suite itself sets; `make run` must not see them.
_SUITE_ONLY = (
    "DJANGO_SETTINGS_MODULE",
    "DEBUG",
    "SECRET_KEY",
    "CXHUB_TOKEN_KEYS",
    "CXHUB_HTTPS",
    "CXHUB_VAR_DIR",
    "VIRTUAL_ENV",
    "PYTEST_CURRENT_TEST",
    # The suite's restricted role (tests/dbroles.py): `make run` is the one-URL demo, as owner.
    "PGOPTIONS",
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clean_copy(target: Path) -> None:
    """The files a clone would have: tracked ones plus new ones git does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = REPO / name.decode()
        if not source.is_file():
            continue  # deleted in the work tree
        destination = target / name.decode()
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(source.read_bytes())
        destination.chmod(source.stat().st_mode)


@pytest.fixture
def server_env():
    env = {k: v for k, v in os.environ.items() if k not in _SUITE_ONLY}
    env["PATH"] = os.pathsep.join(
        part for part in env.get("PATH", "").split(os.pathsep) if ".venv" not in part
    )
    env["CXHUB_HEARTBEAT_SECONDS"] = "2"
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgres"):
        env.pop("DATABASE_URL", None)
        env.pop("CELERY_BROKER_URL", None)
        env.pop("CACHE_URL", None)
        yield env
        return
    import psycopg

    name = f"cxhub_makerun_{uuid.uuid4().hex[:8]}"
    admin_url = database_url.rsplit("/", 1)[0] + "/postgres"
    # As the connecting user, not the suite's app role (PGOPTIONS) which may not create databases.
    with psycopg.connect(admin_url, autocommit=True, options="") as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env["DATABASE_URL"] = database_url.rsplit("/", 1)[0] + "/" + name
    try:
        yield env
    finally:
        with psycopg.connect(admin_url, autocommit=True, options="") as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _wait_until(
    predicate, timeout: float, process: subprocess.Popen, log: Path, *, interval: float = 1
):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"make run exited early ({process.returncode}):\n{log.read_text()[-4000:]}")
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s; make run printed:\n{log.read_text()[-4000:]}")


def _healthz(base: str):
    try:
        response = requests.get(f"{base}/healthz", timeout=5)
    except requests.RequestException:
        return None
    return response if response.status_code == 200 else None


def test_make_run_serves_the_demo_restarts_a_killed_worker_and_ctrl_c_stops_everything(
    tmp_path, server_env
):
    checkout = tmp_path / "cxhub"
    _clean_copy(checkout)
    port = _free_port()
    server_env["PORT"] = str(port)
    # A pause long enough that /healthz is surely asked while the killed worker is down.
    server_env["CXHUB_RUN_RESTART_DELAY_SECONDS"] = "5"
    # The demo makes its own audit signing key (the suite's own would be inherited otherwise).
    server_env.pop("CXHUB_AUDIT_SIGNING_KEY", None)
    server_env["CXHUB_AUDIT_SEAL_SECONDS"] = "2"
    state_file = checkout / "var" / "processes.json"
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "make-run.log"

    with log.open("w") as out:
        process = subprocess.Popen(
            ["make", "run"],
            cwd=checkout,
            env=server_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        # 1. It comes up (creating its own venv first) and says it is healthy.
        _wait_until(lambda: _healthz(base), 600, process, log)
        printed = log.read_text()
        assert f"http://127.0.0.1:{port}/" in printed
        password = re.search(r"password: (\S+)", printed).group(1)
        assert re.search(r"^\s*drafter\.north\s+drafter\s", printed, re.MULTILINE), printed

        # 2. A printed demo login signs in.
        session = requests.Session()
        session.get(f"{base}/login/", timeout=10)
        response = session.post(
            f"{base}/login/",
            data={
                "username": "drafter.north",
                "password": password,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            headers={"Referer": f"{base}/login/"},
            timeout=10,
        )
        assert response.status_code == 200
        assert response.url == f"{base}/"
        assert "Signed in as <strong>drafter.north</strong>" in response.text
        # A new user finds a living inbox: the demo's sandbox accounts have heard back.
        inbox = session.get(f"{base}/api/v1/inbox/", timeout=10)
        assert inbox.status_code == 200
        assert inbox.json()["results"], "the demo's inbox is empty"
        assert session.get(f"{base}/inbox/", timeout=10).status_code == 200

        # 2b. The demo's lead sees the demo watch; a surge sent to it by the README's command
        # fires its alerts, which the lead then sees.
        lead = requests.Session()
        lead.get(f"{base}/login/", timeout=10)
        lead.post(
            f"{base}/login/",
            data={
                "username": "lead",
                "password": password,
                "csrfmiddlewaretoken": lead.cookies["csrftoken"],
            },
            headers={"Referer": f"{base}/login/"},
            timeout=10,
        )
        [watch] = [
            row
            for row in lead.get(f"{base}/api/v1/watches/", timeout=10).json()["results"]
            if row["name"] == "Launch day"
        ]
        surge = subprocess.run(
            [".venv/bin/python", "manage.py", "sandbox_surge", "--watch", str(watch["id"])],
            cwd=checkout,
            env={**server_env, "DEBUG": "1"},  # as the README gives it, beside `make run`
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert surge.returncode == 0, surge.stdout + surge.stderr
        assert "raised" in surge.stdout, surge.stdout
        alerts = lead.get(f"{base}/api/v1/alerts/?watch={watch['id']}", timeout=10).json()
        assert {alert["kind"] for alert in alerts["results"]} >= {"spike", "false_claim"}
        assert lead.get(f"{base}/listening/alerts/{alerts['results'][0]['id']}/").status_code == 200

        # 3. Beat schedules and the worker runs: the heartbeat reaches the database.
        def worker_seen():
            health = _healthz(base)
            return health is not None and health.json()["worker"]["status"] == "ok"

        _wait_until(worker_seen, 120, process, log)

        # 3b. The sealer runs too: the demo's events (and the sign-in above) get into a checkpoint
        # signed with the key the demo made in its var dir.
        assert "its verifier key is " in printed
        assert (checkout / "var" / "audit-signing.key").exists()

        def all_checkpointed():
            health = _healthz(base)
            audit = health is not None and health.json()["checks"]["audit"]
            return audit and audit["ok"] and audit["detail"].endswith("(none)")

        _wait_until(all_checkpointed, 120, process, log)

        # 4. The worker is killed: the launcher starts another, and meanwhile the web keeps
        # answering, naming the worker while it is down.
        killed = json.loads(state_file.read_text())["processes"]["worker"]
        assert killed["state"] == "running", killed
        os.kill(killed["pid"], signal.SIGKILL)

        def health_now():
            try:
                response = requests.get(f"{base}/healthz", timeout=10)
            except requests.RequestException as exc:
                pytest.fail(f"/healthz did not answer: {exc}\n{log.read_text()[-4000:]}")
            return response, response.json()

        def worker_down():
            response, body = health_now()
            return (
                response.status_code == 503
                and body["status"] == "down: worker"
                and body["processes"]["worker"]["state"] == "restarting"
                and body
            )

        down = _wait_until(worker_down, 60, process, log, interval=0.2)
        assert down["processes"]["worker"]["pid"] is None
        assert down["processes"]["worker"]["last_exit_code"] == -signal.SIGKILL
        assert down["processes"]["worker"]["restarts"] == 1
        assert down["processes"]["web"]["state"] == "running"

        def worker_back():
            response, body = health_now()
            return response.status_code == 200 and body

        back = _wait_until(worker_back, 60, process, log, interval=0.2)
        restarted = back["processes"]["worker"]
        assert restarted["state"] == "running"
        assert restarted["pid"] not in (None, killed["pid"])
        assert json.loads(state_file.read_text())["processes"]["worker"]["pid"] == restarted["pid"]
        printed = log.read_text()
        assert "cxhub: worker exited with code -9; restarting in 5 s (restart 1)" in printed
        assert f"cxhub: worker started again (pid {restarted['pid']}, restart 1)" in printed

        # The new worker works: a heartbeat newer than its start reaches the database.
        restarted_at = time.monotonic()

        def new_worker_seen():
            _, body = health_now()
            age = body["worker"].get("last_seen_seconds_ago")
            return age is not None and age < time.monotonic() - restarted_at

        _wait_until(new_worker_seen, 120, process, log)
    finally:
        # 4. Ctrl-C: SIGINT to the whole foreground group, as a terminal does.
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"make run did not stop on Ctrl-C:\n{log.read_text()[-4000:]}")

    assert "cxhub: stopped." in log.read_text()
    assert not state_file.exists()
    # Nothing is left behind: no process in the group, nothing on the port.
    time.sleep(1)
    leftovers = subprocess.run(
        ["pgrep", "-f", str(checkout)], capture_output=True, text=True
    ).stdout.split()
    assert leftovers == [], f"processes left running: {leftovers}"
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the web server still listens"
