"""The `make run` launcher (cxhub/run.py): when a dead process starts again, when the launcher
gives up, and how it stops. The rule is tested alone; the launcher itself as a real process,
supervising small commands (tests/integration/test_make_run.py runs it on web, worker and beat)."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from audit.checkpoint import NoteSigner
from cxhub import run
from cxhub.env import ImproperlyConfiguredEnv
from cxhub.run import RestartPolicy

from ..integration.dispatch_harness import wait_until

REPO = Path(__file__).resolve().parents[2]

# The rule ------------------------------------------------------------------------------------


def test_a_child_dying_soon_after_starting_waits_twice_as_long_each_time_up_to_the_cap():
    policy = RestartPolicy(first_delay=1, max_delay=8, healthy_after=30, give_up_after=10)
    delays, quick_deaths = [], 0

    for _ in range(6):
        quick_deaths, delay = policy.after_exit(ran_for=2, quick_deaths=quick_deaths)
        delays.append(delay)

    assert delays == [1, 2, 4, 8, 8, 8]
    assert quick_deaths == 6


def test_a_child_that_ran_a_while_starts_again_after_the_first_pause_and_its_count_resets():
    policy = RestartPolicy(first_delay=1, max_delay=30, healthy_after=30, give_up_after=5)

    assert policy.after_exit(ran_for=30, quick_deaths=4) == (0, 1)
    assert policy.after_exit(ran_for=2, quick_deaths=0) == (1, 1)


def test_it_gives_up_at_the_nth_quick_death_in_a_row():
    policy = RestartPolicy(first_delay=1, max_delay=30, healthy_after=30, give_up_after=3)

    assert policy.after_exit(ran_for=1, quick_deaths=0) == (1, 1)
    assert policy.after_exit(ran_for=1, quick_deaths=1) == (2, 2)
    assert policy.after_exit(ran_for=1, quick_deaths=2) == (3, None)


def test_a_healthy_run_between_deaths_keeps_it_from_giving_up():
    policy = RestartPolicy(first_delay=1, max_delay=30, healthy_after=30, give_up_after=3)
    quick_deaths = 0

    for ran_for in (1, 1, 45, 1, 1):
        quick_deaths, delay = policy.after_exit(ran_for=ran_for, quick_deaths=quick_deaths)
        assert delay is not None

    assert quick_deaths == 2


def test_the_rule_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("CXHUB_RUN_RESTART_DELAY_SECONDS", "0.5")
    monkeypatch.setenv("CXHUB_RUN_RESTART_MAX_DELAY_SECONDS", "10")
    monkeypatch.setenv("CXHUB_RUN_HEALTHY_AFTER_SECONDS", "60")
    monkeypatch.setenv("CXHUB_RUN_GIVE_UP_AFTER", "7")

    assert RestartPolicy.from_env() == RestartPolicy(
        first_delay=0.5, max_delay=10, healthy_after=60, give_up_after=7
    )


def test_a_malformed_variable_is_named(monkeypatch):
    monkeypatch.setenv("CXHUB_RUN_GIVE_UP_AFTER", "often")

    with pytest.raises(ImproperlyConfiguredEnv, match="CXHUB_RUN_GIVE_UP_AFTER"):
        RestartPolicy.from_env()


# The launcher, a real process ------------------------------------------------------------------

_LAUNCH = """
import json, os, sys
from pathlib import Path
from cxhub.run import RestartPolicy, supervise
config = json.loads(Path(sys.argv[1]).read_text())
sys.exit(supervise(
    config["commands"],
    env=dict(os.environ),
    policy=RestartPolicy(**config["policy"]),
    state_file=Path(config["state_file"]),
))
"""


class Launcher:
    """`supervise` in a process of its own, on commands tagged so that leftovers can be found."""

    def __init__(self, tmp_path: Path, *, worker_code: int, policy: dict):
        self.tag = f"cxhub-run-test-{uuid.uuid4().hex}"
        self.state_file = tmp_path / "var" / "processes.json"
        self.log = tmp_path / "launcher.log"
        sleeper = [sys.executable, "-c", "import time; time.sleep(600)", self.tag]
        dies = [sys.executable, "-c", f"import sys; sys.exit({worker_code})", self.tag]
        config = {
            "commands": {"web": sleeper, "worker": dies, "beat": sleeper},
            "policy": policy,
            "state_file": str(self.state_file),
        }
        # In a file: on the launcher's command line, the tag would make it a leftover of its own.
        config_file = tmp_path / "launcher.json"
        config_file.write_text(json.dumps(config))
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _LAUNCH, str(config_file)],
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def state(self):
        try:
            return json.loads(self.state_file.read_text())["processes"]
        except FileNotFoundError:
            return None

    def output(self) -> str:
        return self.log.read_text()

    def leftovers(self) -> list[str]:
        found = subprocess.run(["pgrep", "-f", self.tag], capture_output=True, text=True)
        return found.stdout.split()

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"the launcher did not exit within {timeout} s:\n{self.output()}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pid in self.leftovers():
            os.kill(int(pid), 9)


@pytest.mark.integration
def test_a_child_that_keeps_dying_makes_the_launcher_give_up_and_exit_non_zero(tmp_path):
    launcher = Launcher(
        tmp_path,
        worker_code=3,
        policy={"first_delay": 0.05, "max_delay": 0.2, "healthy_after": 30, "give_up_after": 3},
    )
    try:
        code = launcher.wait(timeout=60)
    finally:
        launcher.kill()

    output = launcher.output()
    assert code == 1, output
    assert "cxhub: worker exited with code 3; restarting in 0.05 s (restart 1)" in output
    assert "cxhub: worker exited with code 3; restarting in 0.1 s (restart 2)" in output
    assert (
        "cxhub: worker exited with code 3, dying 3 times in a row within 30 s of starting; "
        "giving up and stopping web, worker, beat"
    ) in output
    assert output.rstrip().endswith("cxhub: stopped."), output
    assert "restart 3" not in output
    assert not launcher.state_file.exists()
    assert launcher.leftovers() == []


@pytest.mark.integration
def test_sigterm_stops_everything_at_once_with_no_restart_while_stopping(tmp_path):
    launcher = Launcher(
        tmp_path,
        worker_code=0,
        policy={"first_delay": 300, "max_delay": 300, "healthy_after": 30, "give_up_after": 5},
    )
    try:
        # Given a worker waiting to start again, and web and beat running,
        state = wait_until(
            lambda: (s := launcher.state()) and s["worker"]["state"] == "restarting" and s,
            timeout=60,
            what="the worker to be waiting to restart",
            logs=[launcher.log],
        )
        assert state["worker"] == {
            "state": "restarting",
            "pid": None,
            "restarts": 1,
            "last_exit_code": 0,
            "since": state["worker"]["since"],
        }
        assert state["web"]["state"] == "running" and state["web"]["pid"]
        assert len(launcher.leftovers()) == 2

        # when the launcher is told to stop,
        launcher.process.terminate()

        # then it stops at once, long before the worker's restart was due, and starts nothing.
        code = launcher.wait(timeout=30)
    finally:
        launcher.kill()

    output = launcher.output()
    assert code == 0, output
    assert "started again" not in output
    assert output.rstrip().endswith("cxhub: stopped."), output
    assert not launcher.state_file.exists()
    assert launcher.leftovers() == []


def test_the_demo_makes_its_audit_signing_key_once_in_a_file(tmp_path):
    env = {"CXHUB_VAR_DIR": str(tmp_path)}

    vkey = run._audit_signing_key(env)

    path = tmp_path / run.AUDIT_KEY_FILE_NAME
    assert env["CXHUB_AUDIT_SIGNING_KEY_FILE"] == str(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text().startswith("PRIVATE+KEY+")
    assert vkey == NoteSigner.from_skey(path.read_text().strip()).vkey
    assert run._audit_signing_key({"CXHUB_VAR_DIR": str(tmp_path)}) == vkey  # kept, not remade


def test_a_signing_key_from_the_environment_is_left_alone(tmp_path):
    env = {"CXHUB_VAR_DIR": str(tmp_path), "CXHUB_AUDIT_SIGNING_KEY_FILE": "/etc/cxhub/key"}

    assert run._audit_signing_key(env) == ""
    assert env["CXHUB_AUDIT_SIGNING_KEY_FILE"] == "/etc/cxhub/key"
    assert not (tmp_path / run.AUDIT_KEY_FILE_NAME).exists()
