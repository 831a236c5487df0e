"""Serving a provider's Django project (or any WSGI app) on a free port of 127.0.0.1, printing
"READY <url>" once it accepts connections."""

import socketserver
from collections.abc import Callable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


def serve(setup: Callable[[], None] | None = None, app=None) -> None:
    if app is None:
        import django

        django.setup()
        if setup is not None:
            setup()
        from django.core.wsgi import get_wsgi_application

        app = get_wsgi_application()
    server = make_server(
        "127.0.0.1", 0, app, server_class=ThreadingServer, handler_class=QuietHandler
    )
    print(f"READY http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()
