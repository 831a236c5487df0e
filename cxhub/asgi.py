import os

import django
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxhub.settings")


class BoundedASGIHandler(ASGIHandler):
    """Django's ASGI handler reads a whole request body into a temporary file before any
    middleware runs; this one stops receiving once the body passes the upload limit, and the
    request is answered with 413 (cxhub.uploads)."""

    async def handle(self, scope, receive, send):
        from cxhub.uploads import bounded_receive  # needs the settings, loaded by then

        await super().handle(scope, bounded_receive(scope, receive), send)


def get_application() -> BoundedASGIHandler:
    django.setup(set_prefix=False)
    return BoundedASGIHandler()


application = get_application()
