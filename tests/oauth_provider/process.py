"""Starting and stopping the provider process for a test, bounded in time."""

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from .serve import PASSWORD, USERNAME

REPO = Path(__file__).resolve().parents[2]
START_SECONDS = 60


@dataclass
class Provider:
    url: str
    username: str = USERNAME
    password: str = PASSWORD

    def signed_in(self) -> requests.Session:
        """A browser session of the provider's person, signed in through its form."""
        browser = requests.Session()
        page = browser.get(f"{self.url}/login/", timeout=10)
        token = page.text.split('name=csrfmiddlewaretoken value="', 1)[1].split('"', 1)[0]
        answer = browser.post(
            f"{self.url}/login/",
            data={
                "csrfmiddlewaretoken": token,
                "username": self.username,
                "password": self.password,
                "next": "/login/",
            },
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 302, answer.text
        return browser


@contextmanager
def running_provider(directory: Path) -> Iterator[Provider]:
    """The provider as its own process on a free port; stopped (killed if need be) after."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.oauth_provider.settings",
        "OAUTH_PROVIDER_DIR": str(directory),
        "PYTHONUNBUFFERED": "1",
    }
    log = (directory / "provider.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.oauth_provider.serve"],
        cwd=REPO,
        env=env,
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
            raise RuntimeError(
                f"the OAuth provider did not start: {first!r}\n"
                + (directory / "provider.log").read_text()[-3000:]
            )
        yield Provider(url=first.split()[1])
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
