"""cxhub's WSGI application with one more path, for tests/cxhub/test_web_server.py: /test/slow
holds its request until this worker has been told to stop (SIGTERM), then answers 200 with what
/readyz said meanwhile: a request in flight during a graceful shutdown."""

import json
import os
import time
from pathlib import Path

from cxhub import shutdown
from cxhub.wsgi import application as cxhub_application


def application(environ, start_response):
    if environ.get("PATH_INFO") != "/test/slow":
        return cxhub_application(environ, start_response)
    # The test sends SIGTERM once it sees this file: the request is in flight by then.
    Path(os.environ["CXHUB_TEST_SLOW_MARKER"]).write_text(str(os.getpid()))
    deadline = time.monotonic() + 60
    while not shutdown.is_draining() and time.monotonic() < deadline:
        time.sleep(0.02)
    readyz = {}

    def keep_status(status, headers, exc_info=None):
        readyz["status"] = int(status.split()[0])
        return lambda data: None

    body = b"".join(
        cxhub_application(
            {**environ, "PATH_INFO": "/readyz", "REQUEST_METHOD": "GET", "QUERY_STRING": ""},
            keep_status,
        )
    )
    readyz["body"] = json.loads(body)
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"draining": shutdown.is_draining(), "readyz": readyz}).encode()]
