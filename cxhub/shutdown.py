"""Whether this process has been told to stop: from then on /readyz answers 503, so a load
balancer takes it out of rotation while the requests it holds finish (cxhub/gunicorn_conf.py
marks a web worker on SIGTERM)."""

import threading

_draining = threading.Event()


def begin_draining() -> None:
    _draining.set()


def is_draining() -> bool:
    return _draining.is_set()


def reset() -> None:
    """Back to serving (tests)."""
    _draining.clear()
