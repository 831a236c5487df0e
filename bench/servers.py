"""What the web benchmarks share: the settings of the servers they start, the scratch database's
URL, and starting, waiting for and stopping a server on a free port of 127.0.0.1."""

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

try:
    from bench import scratch
except ImportError:  # run as a script: bench/ itself is first on sys.path
    import scratch

ROOT = Path(__file__).resolve().parents[1]
# Settings of the servers the benches start (never for anything real).
SERVER_ENV = {
    "SECRET_KEY": "bench-web-secret-key-" + "b" * 50,
    "CXHUB_TOKEN_KEYS": "YmVuY2gtd2ViLXRva2VuLWtleS0wMDAwMDAwMDAwMDA=",
    "CXHUB_HTTPS": "0",
    "CXHUB_MFA_REQUIRED_ROLES": "",
    "DJANGO_SETTINGS_MODULE": "cxhub.settings",
    "PYTHONUNBUFFERED": "1",
}
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "python:cxhub.gunicorn_conf"]


class Refused(Exception):
    """Why a bench will not run here: its main prints it and exits with status 2."""


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


@contextlib.contextmanager
def scratch_database(url: str, name: str, *, why: str):
    """The database `name`, made afresh on the PostgreSQL server of `url` for the block and
    dropped after it; yields its URL. Refused when `url` is not PostgreSQL (the bench needs it
    because `why`) or the server will not make it."""
    if not is_postgres(url):
        raise Refused(
            f"it needs PostgreSQL ({why}): set DATABASE_URL=postgres://user@host:5432/dbname. "
            f"It creates and drops its own database, {name}, on that server and touches no other."
        )
    admin = conninfo(url)
    try:
        scratch.recreate(admin, name)
    except scratch.ScratchError as error:
        raise Refused(str(error)) from None
    try:
        yield database_url(url, name)
    finally:
        scratch.drop(admin, name)


def conninfo(url: str) -> str:
    """A libpq conninfo for the database a postgres:// URL names."""
    from psycopg.conninfo import make_conninfo

    parts = urlsplit(url)
    values = {
        "dbname": parts.path.lstrip("/") or "postgres",
        "user": parts.username,
        "password": parts.password,
        "host": parts.hostname,
        "port": parts.port,
    }
    return make_conninfo(**{key: str(value) for key, value in values.items() if value})


def database_url(url: str, name: str) -> str:
    """`url` naming the database `name` instead (no query string)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}", query=""))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str, headers: dict | None = None, timeout: float = 30):
    """(status, body) of one GET on its own connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def start(stack, command: list[str], env: dict[str, str], log=None) -> tuple[int, float]:
    """Start `command` (a runserver command gets the address appended) on a free port with
    `env` over this process's environment, its output to `log` (a file; else a temporary one);
    stopped when `stack` closes. Returns the port and the seconds from the start to its first
    answer on /healthz."""
    port = free_port()
    env = {**os.environ, **env, "PORT": str(port), "HOST": "127.0.0.1"}
    if "runserver" in command:
        command = [*command, f"127.0.0.1:{port}"]
    if log is None:
        log = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 (closed with the stack)
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    stack.callback(stop, process)
    return port, wait_for_first_answer(process, port, log)


def stop(process) -> None:
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_first_answer(process, port: int, log) -> float:
    began = time.perf_counter()
    deadline = began + 120
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the server exited:\n{log.read().decode()[-3000:]}")
        try:
            status, _ = get(port, "/healthz", timeout=5)
            if status in (200, 503):
                return time.perf_counter() - began
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("the server did not answer within 120 s")
