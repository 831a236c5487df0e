"""gunicorn's settings for cxhub's web processes, from the environment (README, "Running in
production"):

    gunicorn -c python:cxhub.gunicorn_conf cxhub.wsgi

On SIGTERM gunicorn closes its listening sockets (new connections are refused), each worker
finishes the requests it holds within CXHUB_WEB_GRACEFUL_TIMEOUT and exits, and /readyz answers
503 meanwhile (post_worker_init below). Loaded by gunicorn's master before any worker forks, so
it reads the environment itself and imports nothing of Django.
"""

import json
import os
import signal
from datetime import UTC, datetime

from gunicorn.glogging import Logger
from gunicorn.workers.sync import SyncWorker

from cxhub import metrics, shutdown
from cxhub.env import env_int, env_list, env_networks, env_str


def _cpus() -> int:
    """The CPUs this process may run on (a container's share, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


wsgi_app = "cxhub.wsgi:application"
# Addresses to listen on, comma-separated (host:port, [::]:port, unix:/path); else HOST:PORT.
# Every interface by default: a balancer on another host reaches it.
_host = env_str("HOST", "0.0.0.0")  # noqa: S104
bind = env_list("CXHUB_BIND", [f"{_host}:{env_int('PORT', 8000, minimum=1)}"])
# Worker processes (the convention of Heroku and others); each holds its own database
# connection per thread, so workers × threads must stay within what PostgreSQL allows.
workers = env_int("WEB_CONCURRENCY", 2 * _cpus() + 1, minimum=1)
# Above 1, gunicorn runs threaded workers (gthread): requests that wait on the database or the
# broker overlap within one process, and idle keep-alive connections hold no thread.
threads = env_int("CXHUB_WEB_THREADS", 1, minimum=1)
# A worker silent this long is killed and replaced (a request stuck past it is cut off).
timeout = env_int("CXHUB_WEB_TIMEOUT", 60, minimum=1)
# After SIGTERM, the time requests in flight get to finish before their worker is killed.
graceful_timeout = env_int("CXHUB_WEB_GRACEFUL_TIMEOUT", 30, minimum=1)
# Seconds an idle keep-alive connection stays open (threaded workers): above the balancer's own
# idle timeout, else it reuses connections gunicorn is closing.
keepalive = env_int("CXHUB_WEB_KEEPALIVE", 5, minimum=0)
# A worker is replaced after this many requests (jittered, so they do not all restart at once):
# whatever memory it grew or leaked goes with it. 0: never.
max_requests = env_int("CXHUB_WEB_MAX_REQUESTS", 1000, minimum=0)
max_requests_jitter = max_requests // 10
# The workers' heartbeat files in memory: a disk that stalls (a full or slow /tmp) would
# otherwise make gunicorn take healthy workers for hung ones.
worker_tmp_dir = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # noqa: S108
# X-Forwarded-Proto and -For are believed from these only (CXHUB_TRUSTED_PROXIES, as Django's
# sign-in doors do); 127.0.0.1 for a proxy on the same host.
forwarded_allow_ips = ",".join(env_networks("CXHUB_TRUSTED_PROXIES", ["127.0.0.1/32", "::1/128"]))
proc_name = "cxhub-web"
# gunicorn ≥ 24 opens a control socket in the home directory by default: one per host would
# collide between instances, and nothing of cxhub uses it.
control_socket_disable = True

# The access log to stdout, one JSON object a line; gunicorn's own messages to stderr.
accesslog = "-"
errorlog = "-"
loglevel = env_str("LOG_LEVEL", "info").lower()


class JsonAccessLogger(Logger):
    """Each request as one line of JSON. The path without its query string: OAuth callbacks and
    signed links carry codes and signatures there."""

    def access(self, resp, req, environ, request_time):
        if not self.cfg.accesslog:
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "remote": environ.get("REMOTE_ADDR", ""),
            "method": environ.get("REQUEST_METHOD", ""),
            "path": environ.get("PATH_INFO", ""),
            "status": int(status) if str(status).isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "user_agent": environ.get("HTTP_USER_AGENT", ""),
            "pid": os.getpid(),
        }
        try:
            self.access_log.info(json.dumps(line))
        except Exception:  # a log line must never fail a request
            self.exception("could not write the access log line")


logger_class = JsonAccessLogger


def pre_request(worker, req):
    worker.cxhub_in_flight = getattr(worker, "cxhub_in_flight", 0) + 1


def post_request(worker, req, environ, resp):
    worker.cxhub_in_flight -= 1


def post_worker_init(worker):
    """Before gunicorn's own SIGTERM handler (stop accepting, finish what is in flight): mark
    this worker as draining, so /readyz answers 503 to the balancer meanwhile."""
    stop = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):
        shutdown.begin_draining()
        stop(signum, frame)
        if isinstance(worker, SyncWorker) and getattr(worker, "cxhub_in_flight", 0):
            # The master has closed its listening sockets, but a busy worker still holds them
            # while it finishes: the kernel would go on accepting connections nobody serves,
            # to reset them when the worker exits. Closed now, a new connection is refused and
            # the balancer tries another host. (An idle worker exits at once, closing them;
            # a threaded worker stops accepting at once and holds them until it exits.)
            for listener in worker.sockets:
                listener.close()

    signal.signal(signal.SIGTERM, on_sigterm)
    # signal.signal() makes the signal interrupt system calls again; gunicorn had turned that off
    # so that a SIGTERM does not disturb a request in flight.
    signal.siginterrupt(signal.SIGTERM, False)


def on_starting(server):
    """/metrics in multiprocess mode (PROMETHEUS_MULTIPROC_DIR): an empty folder at each start,
    else an earlier run's counts would be added to this one's (cxhub/metrics.py)."""
    metrics.clear_multiprocess_dir()


def child_exit(server, worker):
    """A worker gone: its live figures leave /metrics' sum (its counters stay, as they must)."""
    metrics.worker_exited(worker.pid)
