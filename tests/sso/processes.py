"""Starting a provider as its own process for the tests, and stopping it, bounded in time."""

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
START_SECONDS = 90


@contextmanager
def running(module: str, directory: Path, env: dict[str, str]) -> Iterator[str]:
    """`python -m module` on a free port; yields its URL once it printed "READY <url>"."""
    log_path = directory / f"{module.rsplit('.', 2)[-2]}.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=REPO,
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout], daemon=True
    ).start()
    try:
        try:
            first = lines.get(timeout=START_SECONDS)
        except queue.Empty:
            first = ""
        if not first.startswith("READY "):
            log.flush()
            raise RuntimeError(f"{module} did not start: {first!r}\n{log_path.read_text()[-3000:]}")
        yield first.split()[1]
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
