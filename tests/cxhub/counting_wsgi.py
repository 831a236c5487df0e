"""Test-only WSGI wrapper: says in two response headers how many body bytes the application had
read when it answered, and the largest file in FILE_UPLOAD_TEMP_DIR at that moment.

`make_application()` wraps cxhub's own, for a server started in another process (gunicorn).
"""

import contextlib
import os

from django.conf import settings


class _CountingInput:
    def __init__(self, stream):
        self._stream = stream
        self.bytes = 0

    def read(self, *args):
        data = self._stream.read(*args)
        self.bytes += len(data)
        return data

    def readline(self, *args):
        data = self._stream.readline(*args)
        self.bytes += len(data)
        return data

    def __iter__(self):
        return iter(self.readline, b"")


def largest_temp_file() -> int:
    folder = settings.FILE_UPLOAD_TEMP_DIR
    sizes = [0]
    for entry in os.scandir(folder):
        with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
            sizes.append(entry.stat().st_size)
    return max(sizes)


def counting(app):
    def wrapper(environ, start_response):
        counter = _CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = counter

        def start(status, headers, exc_info=None):
            headers = [
                *headers,
                ("X-Test-Body-Read", str(counter.bytes)),
                ("X-Test-Temp-Largest", str(largest_temp_file())),
            ]
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wrapper


def make_application():
    from cxhub.wsgi import application

    return counting(application)
