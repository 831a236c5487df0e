"""`make run`: the whole system in one terminal — web server, Celery worker and Celery beat.

It migrates, loads the demo organisation (idempotently), starts the three processes with their
output prefixed, prints the URL and the demo logins, and on Ctrl-C (or SIGTERM) stops them all.
A process that dies is started again after a pause that doubles while it keeps dying soon after
starting (1 s, 2 s, 4 s … up to a cap; one that ran a while starts again after the first pause).
Only when one dies CXHUB_RUN_GIVE_UP_AFTER times in a row, each soon after starting, does the
launcher stop the others and exit non-zero. Meanwhile it keeps each process's state in
var/processes.json, which /healthz reports (cxhub.health.launcher_processes).

It runs before Django's settings load, so it reads the environment itself.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from audit.checkpoint import NoteSigner

from .env import env_float, env_int

ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_SECONDS = 15
# The launcher's view of its children, under the var dir; /healthz reads it.
STATE_FILE_NAME = "processes.json"
RUNNING, RESTARTING, GAVE_UP = "running", "restarting", "gave up"


@dataclass(frozen=True)
class RestartPolicy:
    """When a dead child starts again, and when the launcher stops trying."""

    first_delay: float = 1.0
    max_delay: float = 30.0
    # A child that ran at least this long was healthy: its next death starts the count afresh.
    healthy_after: float = 30.0
    # This many deaths in a row, each within healthy_after of starting, and the launcher gives up.
    give_up_after: int = 5

    @classmethod
    def from_env(cls) -> "RestartPolicy":
        return cls(
            first_delay=env_float("CXHUB_RUN_RESTART_DELAY_SECONDS", 1.0, minimum=0),
            max_delay=env_float("CXHUB_RUN_RESTART_MAX_DELAY_SECONDS", 30.0, minimum=0),
            healthy_after=env_float("CXHUB_RUN_HEALTHY_AFTER_SECONDS", 30.0, minimum=0),
            give_up_after=env_int("CXHUB_RUN_GIVE_UP_AFTER", 5, minimum=1),
        )

    def after_exit(self, *, ran_for: float, quick_deaths: int) -> tuple[int, float | None]:
        """Given how long the child ran and its quick deaths in a row before this one: the new
        count, and the pause before starting it again (None: give up)."""
        if ran_for >= self.healthy_after:
            return 0, self.first_delay
        quick_deaths += 1
        if quick_deaths >= self.give_up_after:
            return quick_deaths, None
        return quick_deaths, min(self.first_delay * 2 ** (quick_deaths - 1), self.max_delay)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # A demo on one machine: DEBUG on (development keys, plain HTTP) unless told otherwise.
    env.setdefault("DEBUG", "1")
    # The demo people sign in with their password alone; anyone may add a second factor at
    # /security/ and will then be asked for it. CXHUB_MFA_REQUIRED_ROLES=lead,admin demands it.
    env.setdefault("CXHUB_MFA_REQUIRED_ROLES", "")
    env.setdefault("DJANGO_SETTINGS_MODULE", "cxhub.settings")
    # The demo's sandbox accounts hear back, and its sandbox watches hear a steady stream: a
    # reply or mention arrives each minute, and a few public posts.
    env.setdefault("CXHUB_SANDBOX_INBOUND_SECONDS", "60")
    env.setdefault("CXHUB_SANDBOX_LISTENING_SECONDS", "60")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _var_dir(env: dict[str, str]) -> Path:
    # As settings.VAR_DIR, which the children will use (a relative one is taken from ROOT, their
    # working directory).
    return ROOT / env.get("CXHUB_VAR_DIR", str(ROOT / "var"))


AUDIT_KEY_FILE_NAME = "audit-signing.key"


def _audit_signing_key(env: dict[str, str]) -> str:
    """The demo's checkpoint signing key: the one the environment names, or else a key made once
    in the var dir (a file, as production keeps it away from the database). Its verifier key,
    for the banner."""
    if not (env.get("CXHUB_AUDIT_SIGNING_KEY") or env.get("CXHUB_AUDIT_SIGNING_KEY_FILE")):
        path = _var_dir(env) / AUDIT_KEY_FILE_NAME
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            signer = NoteSigner.generate(f"{socket.gethostname() or 'localhost'}/cxhub-audit")
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
                f.write(signer.skey + "\n")
        env["CXHUB_AUDIT_SIGNING_KEY_FILE"] = str(path)
        return NoteSigner.from_skey(path.read_text().strip()).vkey
    return ""


def _manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def _pump(name: str, stream) -> None:
    for line in iter(stream.readline, ""):
        sys.stdout.write(f"{name:>6} | {line}")
        sys.stdout.flush()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Child:
    """One supervised process: its command, the process running it now, and its history."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]):
        self.name, self.args, self.env = name, args, env
        self.process: subprocess.Popen | None = None
        self.state = RUNNING
        self.since = _now()
        self.started_at = 0.0
        self.restarts = 0
        self.quick_deaths = 0
        self.last_exit_code: int | None = None
        self.restart_at = 0.0

    def start(self) -> None:
        # Each child leads its own process group, so stopping it reaches its pool processes too.
        self.process = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        threading.Thread(target=_pump, args=(self.name, self.process.stdout), daemon=True).start()
        self.state, self.since, self.started_at = RUNNING, _now(), time.monotonic()

    def reap_group(self) -> None:
        """Kill what a dead child left in its group (a worker's pool processes), so the next one
        starts clean and nothing outlives the launcher."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def as_json(self) -> dict:
        alive = self.state == RUNNING and self.process is not None
        return {
            "state": self.state,
            "pid": self.process.pid if alive else None,
            "restarts": self.restarts,
            "last_exit_code": self.last_exit_code,
            "since": self.since,
        }


def _write_state(path: Path, children: list[Child]) -> None:
    body = {
        "launcher_pid": os.getpid(),
        "processes": {child.name: child.as_json() for child in children},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # Temp file + rename: /healthz reads either the old state or the new one, never half of one.
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(body, out, indent=2)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _stop(children: list[Child]) -> None:
    # Only those not seen dead: a dead one was reaped, its group killed, and its pid may be reused.
    running = [c.process for c in children if c.state == RUNNING and c.process is not None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in running:
        remaining = max(0.1, deadline - time.monotonic())
        try:
            process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def supervise(
    commands: dict[str, list[str]],
    *,
    env: dict[str, str],
    policy: RestartPolicy,
    state_file: Path,
    banner: str = "",
) -> int:
    """Start the commands, restart each one that dies as the policy says, and stop them all on
    SIGINT/SIGTERM (0) or when one keeps dying (1)."""
    stopping = threading.Event()

    def _on_signal(signum, frame):
        stopping.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    children = [Child(name, args, env) for name, args in commands.items()]
    everything = ", ".join(commands)
    exit_code = 0
    try:
        for child in children:
            child.start()
        _write_state(state_file, children)
        if banner:
            print(banner, flush=True)
        while not stopping.is_set():
            changed = False
            for child in children:
                if child.state == RUNNING:
                    code = child.process.poll()
                    if code is None:
                        continue
                    changed = True
                    child.reap_group()
                    child.last_exit_code = code
                    child.quick_deaths, delay = policy.after_exit(
                        ran_for=time.monotonic() - child.started_at,
                        quick_deaths=child.quick_deaths,
                    )
                    if delay is None:
                        child.state, child.since = GAVE_UP, _now()
                        sys.stderr.write(
                            f"cxhub: {child.name} exited with code {code}, dying "
                            f"{child.quick_deaths} times in a row within "
                            f"{policy.healthy_after:g} s of starting; giving up and stopping "
                            f"{everything}\n"
                        )
                        exit_code = 1
                        stopping.set()
                        break
                    child.restarts += 1
                    child.state, child.since = RESTARTING, _now()
                    child.restart_at = time.monotonic() + delay
                    sys.stderr.write(
                        f"cxhub: {child.name} exited with code {code}; restarting in {delay:g} s "
                        f"(restart {child.restarts})\n"
                    )
                elif child.state == RESTARTING and time.monotonic() >= child.restart_at:
                    if stopping.is_set():
                        break  # no restarts while stopping
                    child.start()
                    changed = True
                    print(
                        f"cxhub: {child.name} started again (pid {child.process.pid}, "
                        f"restart {child.restarts})",
                        flush=True,
                    )
            if changed:
                _write_state(state_file, children)
            stopping.wait(0.2)
    finally:
        print(f"cxhub: stopping {everything}…", flush=True)
        _stop(children)
        with contextlib.suppress(FileNotFoundError):
            state_file.unlink()
        print("cxhub: stopped.", flush=True)
    return exit_code


def main() -> int:
    env = _env()
    port = env.get("PORT", "8000")
    host = env.get("HOST", "127.0.0.1")
    if not port.isdigit():
        sys.stderr.write(f"cxhub: PORT={port!r} is not a port number\n")
        return 2
    policy = RestartPolicy.from_env()
    audit_vkey = _audit_signing_key(env)
    env["CXHUB_BIND"] = f"{host}:{port}"
    # Two web workers suit a demo on SQLite; a stop lets requests finish, within the launcher's
    # own grace before it kills what is left.
    env.setdefault("WEB_CONCURRENCY", "2")
    env.setdefault("CXHUB_WEB_GRACEFUL_TIMEOUT", str(STOP_GRACE_SECONDS - 5))

    try:
        _manage("migrate", "--noinput", env=env)
        _manage("seed_demo", env=env)
    except subprocess.CalledProcessError as exc:
        sys.stderr.write(f"cxhub: set-up failed ({' '.join(exc.cmd[1:])}); nothing started\n")
        return exc.returncode or 1

    celery = [sys.executable, "-m", "celery", "-A", "cxhub"]
    commands = {
        # The production server with its configuration (cxhub/gunicorn_conf.py), DEBUG on: it
        # starts as fast as runserver and answers several requests at once.
        "web": [sys.executable, "-m", "gunicorn", "-c", "python:cxhub.gunicorn_conf"],
        "worker": [
            *celery,
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            "2",
            "--without-gossip",
            "--without-mingle",
        ],
        "beat": [*celery, "beat", "--loglevel", "INFO"],
    }
    banner = (
        f"\ncxhub is starting on http://{host}:{port}/ — sign in with a demo login above "
        "(e.g. drafter.north / cxhub-demo-2026). Ctrl-C stops web, worker and beat.\n"
    )
    if audit_vkey:
        banner += (
            f"The audit trail's checkpoints are signed with a key made for this demo "
            f"({AUDIT_KEY_FILE_NAME} in the var dir); its verifier key is {audit_vkey}\n"
        )
    if not env.get("CXHUB_MFA_REQUIRED_ROLES"):
        # Passkeys need a domain for their relying party: localhost is one, 127.0.0.1 is not.
        banner += (
            "A second factor is optional in this demo: add one at /security/ (passkeys work at "
            f"http://localhost:{port}/).\n"
        )
    return supervise(
        commands,
        env=env,
        policy=policy,
        state_file=_var_dir(env) / STATE_FILE_NAME,
        banner=banner,
    )


if __name__ == "__main__":
    sys.exit(main())
