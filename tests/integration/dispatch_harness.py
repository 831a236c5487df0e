"""Real processes for the dispatch integration tests and the bench: Celery workers (with beat)
started as subprocesses on the test's own database and broker, a private redis-server that a
test may restart, and waiting with a deadline. Everything binds 127.0.0.1 and is cleaned up."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[2]
WORKER_APPLICATION_NAME = "cxhub-dispatch-worker"

# Short everything, so a test sees retries, sweeps and reconciles within seconds. The hard time
# limit stays below the sending-stuck limit (settings.py checks it).
FAST = {
    # Real workers send a group's targets at the same time (publishing/dispatch/lanes.py).
    "CXHUB_PUBLISH_THREADS": "8",
    "CXHUB_DISPATCH_SECONDS": "1",
    "CXHUB_SWEEP_SECONDS": "1",
    "CXHUB_PUBLISH_BACKOFF_BASE_SECONDS": "1",
    "CXHUB_PUBLISH_BACKOFF_CAP_SECONDS": "4",
    "CXHUB_WEBHOOK_TIMEOUT_SECONDS": "1",
    "CXHUB_TASK_SOFT_TIME_LIMIT": "4",
    "CXHUB_TASK_TIME_LIMIT": "5",
    "CXHUB_SENDING_STUCK_SECONDS": "6",
    "CXHUB_QUEUED_STUCK_SECONDS": "8",
    "CXHUB_HEARTBEAT_SECONDS": "60",
    "CXHUB_WORKER_BEAT_SECONDS": "1",
    "CXHUB_WORKER_LOST_SECONDS": "3",
    "CXHUB_ESCALATION_SECONDS": "3600",
    "CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "127.0.0.1/32",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(settings_dict: dict, *, application_name: str = "") -> str:
    """A DATABASE_URL for the database the test is using (the test database, not the one the
    environment names)."""
    if "sqlite" in settings_dict["ENGINE"]:
        return "sqlite:///" + str(Path(settings_dict["NAME"]).resolve())
    user = settings_dict.get("USER") or ""
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    query = f"?application_name={application_name}" if application_name else ""
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}{query}"


def wait_until(predicate, *, timeout: float, what, logs=(), interval: float = 0.2):
    """Poll `predicate` until it returns something true; fail naming `what` (or what it
    returns, when a function), with log tails."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {log}:\n{_tail(log)}" for log in logs)
            what = what() if callable(what) else what  # a description read at the time
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}\n{tails}")
        time.sleep(interval)


def _tail(path, size: int = 6000) -> str:
    try:
        return Path(path).read_text(errors="replace")[-size:]
    except OSError as exc:
        return f"(unreadable: {exc})"


def purge(broker_url: str) -> None:
    """Empty every queue, so one test's leftovers never reach another's worker."""
    if broker_url.startswith("filesystem"):
        return
    from django.conf import settings
    from kombu import Connection

    with contextlib.suppress(Exception), Connection(broker_url, connect_timeout=5) as conn:
        for queue in settings.CXHUB_QUEUES:
            conn.default_channel.queue_purge(queue)


class Worker:
    """`celery -A cxhub worker --pool=prefork` (with beat embedded), as a process group."""

    def __init__(
        self,
        env: dict[str, str],
        workdir: Path,
        *,
        name: str = "w",
        concurrency=2,
        beat: bool = True,
        loglevel: str = "INFO",
        prefix: list[str] | None = None,
    ):
        self.prefix = prefix or []  # runs it elsewhere: ["ip", "netns", "exec", name]
        self.env = env
        self.workdir = workdir
        self.name = f"{name}-{uuid.uuid4().hex[:6]}"
        self.log = workdir / f"{self.name}.log"
        self.concurrency = concurrency
        self.beat = beat
        self.loglevel = loglevel
        self.process: subprocess.Popen | None = None

    def start(self, *, wait_ready: float = 60) -> "Worker":
        args = [
            *self.prefix,
            sys.executable,
            "-m",
            "celery",
            "-A",
            "cxhub",
            "worker",
            "--pool=prefork",
            "-c",
            str(self.concurrency),
            "-n",
            f"{self.name}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            self.loglevel,
        ]
        if self.beat:
            args += ["-B", "-s", str(self.workdir / f"{self.name}-beat-schedule")]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                args,
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        wait_until(
            lambda: self._exited() or "ready." in _tail(self.log, 100_000),
            timeout=wait_ready,
            what=f"worker {self.name} to be ready",
            logs=[self.log],
        )
        if self._exited():
            raise AssertionError(f"worker {self.name} exited:\n{_tail(self.log)}")
        return self

    def _exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def kill(self) -> None:
        """SIGKILL the worker, its pool and its beat at once: a machine losing power."""
        if self.process and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 5) -> None:
        """Warm shutdown (SIGTERM to the main process, which stops its pool and beat); past
        `timeout`, SIGKILL to the whole group."""
        if self.process and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reap_group()

    def _reap_group(self) -> None:
        # Pool children outlive a killed parent for a moment: make sure none is left.
        if self.process:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def log_text(self) -> str:
        return _tail(self.log, 10_000_000)


class PrivateRedis:
    """A redis-server of this test alone on a free port, which the test may restart (empty,
    as a Redis without persistence comes back)."""

    def __init__(self, workdir: Path, *, host: str = "127.0.0.1", password: str = ""):
        """`password`: required of clients (Redis only lets clients of other hosts in then)."""
        self.binary = shutil.which("redis-server")
        self.host = host
        self.password = password
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}{host}:{self.port}/0"

    def start(self) -> "PrivateRedis":
        self.process = subprocess.Popen(
            [
                self.binary,
                "--bind",
                self.host,
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxmemory-policy",
                "noeviction",
                "--dir",
                str(self.workdir),
                *(["--requirepass", self.password] if self.password else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(self._up, timeout=15, what="the private redis-server")
        return self

    def _up(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection((self.host, self.port), timeout=0.5) as sock,
        ):
            if self.password:
                sock.sendall(f"AUTH {self.password}\r\n".encode())
                if not sock.recv(16).startswith(b"+OK"):
                    return False
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self, down_for: float = 1.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()


def worker_env(*, database: str, broker: str, var_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER"):
        env.pop(name, None)
    env.update(FAST)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": database,
            "CELERY_BROKER_URL": broker,
            "CXHUB_VAR_DIR": str(var_dir),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def with_database_name(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))
