"""A task for tests/integration/test_broker_worker.py: it marks that it started and holds its
message (acks_late: unacknowledged) until the test lets it finish."""

import os
import time
from pathlib import Path

from celery import shared_task


@shared_task(name="tests.broker.hold", acks_late=True)
def hold(folder: str) -> None:
    marks = Path(folder)
    (marks / f"started-{os.getpid()}").touch()
    deadline = time.monotonic() + 120
    while not (marks / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    (marks / f"done-{os.getpid()}").touch()
