"""`make run`: the whole system in one terminal — web server, Celery worker and Celery beat.

It migrates, loads the demo organisation (idempotently), starts the three processes with their
output prefixed, prints the URL and the demo logins, and on Ctrl-C (or SIGTERM) stops them all.
If one of them dies, it stops the others and exits non-zero, so a broken setup is never half-up.
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_SECONDS = 15


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # A demo on one machine: DEBUG on (development keys, plain HTTP) unless told otherwise.
    env.setdefault("DEBUG", "1")
    env.setdefault("DJANGO_SETTINGS_MODULE", "cxhub.settings")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def _pump(name: str, stream) -> None:
    for line in iter(stream.readline, ""):
        sys.stdout.write(f"{name:>6} | {line}")
        sys.stdout.flush()


def _start(name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
    # Each child leads its own process group, so stopping it reaches its pool processes too.
    process = subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,
    )
    threading.Thread(target=_pump, args=(name, process.stdout), daemon=True).start()
    return process


def _stop(processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes.values():
        remaining = max(0.1, deadline - time.monotonic())
        try:
            process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main() -> int:
    env = _env()
    port = env.get("PORT", "8000")
    host = env.get("HOST", "127.0.0.1")
    if not port.isdigit():
        sys.stderr.write(f"cxhub: PORT={port!r} is not a port number\n")
        return 2

    try:
        _manage("migrate", "--noinput", env=env)
        _manage("seed_demo", env=env)
    except subprocess.CalledProcessError as exc:
        sys.stderr.write(f"cxhub: set-up failed ({' '.join(exc.cmd[1:])}); nothing started\n")
        return exc.returncode or 1

    celery = [sys.executable, "-m", "celery", "-A", "cxhub"]
    processes = {
        "web": _start(
            "web",
            [sys.executable, "manage.py", "runserver", "--noreload", f"{host}:{port}"],
            env,
        ),
        "worker": _start(
            "worker",
            [
                *celery,
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
                "--without-gossip",
                "--without-mingle",
            ],
            env,
        ),
        "beat": _start("beat", [*celery, "beat", "--loglevel", "INFO"], env),
    }

    stopping = threading.Event()

    def _on_signal(signum, frame):
        stopping.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    print(
        f"\ncxhub is starting on http://{host}:{port}/ — sign in with a demo login above "
        "(e.g. drafter.north / cxhub-demo-2026). Ctrl-C stops web, worker and beat.\n",
        flush=True,
    )
    exit_code = 0
    while not stopping.is_set():
        for name, process in processes.items():
            code = process.poll()
            if code is not None:
                sys.stderr.write(f"cxhub: {name} exited with code {code}; stopping the rest\n")
                exit_code = code or 1
                stopping.set()
                break
        stopping.wait(0.5)

    print("cxhub: stopping web, worker and beat…", flush=True)
    _stop(processes)
    print("cxhub: stopped.", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
