"""The gunicorn hooks /metrics needs in multiprocess mode (cxhub/metrics.py), as the project's
gunicorn config calls them: an empty PROMETHEUS_MULTIPROC_DIR at start, dead workers marked."""

from cxhub import metrics


def on_starting(server):
    metrics.clear_multiprocess_dir()


def child_exit(server, worker):
    metrics.worker_exited(worker.pid)
