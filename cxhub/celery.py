"""The Celery application, and every periodic schedule of the project in one place."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxhub.settings")

app = Celery("cxhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def setup_periodic_tasks(sender, **kwargs):
    from django.conf import settings

    interval = float(settings.CXHUB_HEARTBEAT_SECONDS)
    # Heartbeats that no worker took in time are worthless: let them expire, not pile up.
    sender.add_periodic_task(
        interval,
        sender.signature("cxhub.tasks.heartbeat", options={"expires": interval}),
        name="heartbeat",
    )
