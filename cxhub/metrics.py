"""The web's own Prometheus metrics (requests, latencies), right across processes.

Each gunicorn worker counts its own requests. With PROMETHEUS_MULTIPROC_DIR set (before the
process starts: prometheus_client reads it on import), every process writes its counts to files
there and /metrics adds them up, whichever worker answers; without it, one process counts in
memory. The process manager must give the directory empty at each start and say when a worker
died: gunicorn's config calls clear_multiprocess_dir() in `on_starting` and worker_exited(pid)
in `child_exit`. A dead worker's counts stay in the sum (counters only go up).

Nothing here imports an app or Django's models: gunicorn's master imports it before Django is
set up. The figures read from the database and the broker are cxhub/monitoring.py's."""

import os
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess

MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")

# Not in prometheus_client's default registry: each scrape builds its own (metrics_registry).
REQUESTS = Counter(
    "cxhub_http_requests",
    "HTTP requests answered, by method, route (the URL pattern) and status code.",
    ["method", "route", "status"],
    registry=None,
)
LATENCY = Histogram(
    "cxhub_http_request_duration_seconds",
    "Time from the request reaching Django to its response, by method and route.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=None,
)
# A path no URL pattern matched is one label, whatever it was: clients must not be able to make
# a series per address they try.
UNMATCHED = "unmatched"


def request_registry() -> CollectorRegistry:
    """A registry holding the request metrics: every process's (from the files) in multiprocess
    mode, this process's otherwise."""
    registry = CollectorRegistry()
    if MULTIPROCESS_DIR:
        multiprocess.MultiProcessCollector(registry, path=MULTIPROCESS_DIR)
    else:
        registry.register(REQUESTS)
        registry.register(LATENCY)
    return registry


def clear_multiprocess_dir() -> None:
    """Empty PROMETHEUS_MULTIPROC_DIR before the first worker starts (gunicorn's `on_starting`):
    files of an earlier run would be added to this one's."""
    if not MULTIPROCESS_DIR:
        return
    folder = Path(MULTIPROCESS_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.glob("*.db"):
        path.unlink(missing_ok=True)


def worker_exited(pid: int) -> None:
    """A web worker is gone (gunicorn's `child_exit`): its live gauges leave the sum."""
    if MULTIPROCESS_DIR:
        multiprocess.mark_process_dead(pid, MULTIPROCESS_DIR)


def _route(request) -> str:
    match = getattr(request, "resolver_match", None)
    return match.route if match is not None and match.route else UNMATCHED


class MetricsMiddleware:
    """Counts every response and how long it took, labelled by the URL pattern it matched."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        route = _route(request)
        method = request.method if request.method in _METHODS else "other"
        LATENCY.labels(method, route).observe(time.perf_counter() - started)
        REQUESTS.labels(method, route, str(response.status_code)).inc()
        return response


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
