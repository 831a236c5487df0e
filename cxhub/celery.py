"""The Celery application, and every periodic schedule of the project in one place."""

import os

from celery import Celery
from celery.signals import (
    before_task_publish,
    task_postrun,
    task_prerun,
    worker_init,
    worker_ready,
    worker_shutdown,
)
from django.conf import settings

from . import logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxhub.settings")


def _closed_redis_transport_is_a_connection_error() -> None:
    """Work around a race in kombu's Redis transport (5.x): when the broker goes away just as
    the worker acknowledges a message, the consumer's channel may be closed a second time after
    its transport was released, and restoring its unacknowledged messages then fails with
    AttributeError ('NoneType' object has no attribute 'hostname'), which Celery takes for an
    unrecoverable error: the whole worker exits. A released transport is a lost connection; said
    so, kombu ignores it while closing and the consumer reconnects as it does for any other
    (tests/integration/test_dispatch_worker.py restarts Redis under a busy worker)."""
    try:
        from kombu.transport import redis as kombu_redis
        from redis.exceptions import ConnectionError as RedisConnectionError
    except ImportError:  # Redis is not the broker here
        return
    original = kombu_redis.Channel._connparams
    if getattr(original, "_cxhub", False):
        return

    def _connparams(self, asynchronous=False):
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection was already released")
        return original(self, asynchronous)

    _connparams._cxhub = True
    kombu_redis.Channel._connparams = _connparams


_closed_redis_transport_is_a_connection_error()

app = Celery("cxhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _every(sender, seconds: float, task: str, name: str) -> None:
    """Run `task` every `seconds`; a run no worker took before the next is due expires (the next
    one does the same work), so runs never pile up behind a busy queue."""
    sender.add_periodic_task(
        seconds, sender.signature(task, options={"expires": seconds}), name=name
    )


@app.on_after_finalize.connect
def setup_periodic_tasks(sender, **kwargs):
    # Heartbeats that no worker took in time are worthless: let them expire, not pile up.
    _every(sender, float(settings.CXHUB_HEARTBEAT_SECONDS), "cxhub.tasks.heartbeat", "heartbeat")
    # Dispatch (publishing/dispatch/). A run that no worker took before the next one is due
    # is redundant: both read the same due rows.
    _every(
        sender,
        float(settings.CXHUB_DISPATCH_SECONDS),
        "publishing.tasks.dispatch_due",
        "dispatch due targets",
    )
    _every(
        sender,
        float(settings.CXHUB_SWEEP_SECONDS),
        "publishing.tasks.sweep_stuck",
        "sweep targets whose worker or message was lost",
    )
    sender.add_periodic_task(
        float(settings.CXHUB_ESCALATION_SECONDS),
        sender.signature("approvals.tasks.escalate_overdue", options={"expires": 300}),
        name="escalate overdue approval steps",
    )
    # Tokens renewed before they expire (networks/tasks.py); a run missed is made up by the next.
    _every(
        sender,
        float(settings.CXHUB_TOKEN_REFRESH_SECONDS),
        "networks.tasks.refresh_expiring_tokens",
        "renew tokens before they expire",
    )
    # The audit sealer: committed events into the Merkle tree, a signed checkpoint if it grew.
    _every(
        sender,
        float(settings.CXHUB_AUDIT_SEAL_SECONDS),
        "audit.tasks.seal",
        "seal audit events into the tree and sign a checkpoint",
    )
    # The inbox's reading of the networks (inbox/ingestion.py): each account in its turn.
    _every(
        sender,
        float(settings.CXHUB_INBOX_SECONDS),
        "inbox.tasks.ingest_due",
        "read replies, mentions and comments of the accounts whose turn has come",
    )
    # Our published posts' figures, read on a decaying schedule (publishing/engagement.py).
    _every(
        sender,
        float(settings.CXHUB_ENGAGEMENT_SECONDS),
        "publishing.tasks.engagement_due",
        "read the engagement of published posts whose reading is due",
    )
    # Kept items asked about again: deleted or hidden on their network since (inbox/recheck.py).
    _every(
        sender,
        float(settings.CXHUB_INBOX_RECHECK_SECONDS),
        "inbox.tasks.recheck_due",
        "ask the networks whether items kept were deleted since",
    )
    # The demo's sandbox accounts hear back (inbox/sandbox.py): off unless set (`make run`).
    trickle_every = float(settings.CXHUB_SANDBOX_INBOUND_SECONDS)
    if trickle_every:
        _every(
            sender,
            trickle_every,
            "inbox.tasks.sandbox_trickle",
            "a reply or mention arrives on a sandbox account",
        )
    # Listening: each watch's sources in their turn, then its detectors (listening/collection.py).
    _every(
        sender,
        float(settings.CXHUB_LISTENING_SECONDS),
        "listening.tasks.collect_due",
        "read the public posts of the watches' sources whose turn has come",
    )
    # Alerts' webhook deliveries whose next try is due (listening/webhooks.py).
    _every(
        sender,
        60.0,
        "listening.tasks.deliver_due",
        "send the alerts' webhook deliveries whose try is due",
    )
    # Posts, hits and minute figures past each watch's retention, purged (hours and days stay).
    _every(
        sender,
        float(settings.CXHUB_LISTENING_PURGE_SECONDS),
        "listening.tasks.purge_due",
        "purge what each watch keeps past its retention",
    )
    # The demo's sandbox watches hear a steady stream (listening/sandbox.py): off unless set.
    stream_every = float(settings.CXHUB_SANDBOX_LISTENING_SECONDS)
    if stream_every:
        _every(
            sender,
            stream_every,
            "listening.tasks.sandbox_stream",
            "public posts arrive on the sandbox watches",
        )
    # People who use only API tokens re-checked with the identity provider (sso/tasks.py).
    # (Every request re-checks a session when the interval is 0; the task then runs each minute.)
    _every(
        sender,
        float(max(60, settings.CXHUB_SSO_RECHECK_SECONDS)),
        "sso.tasks.recheck_token_holders",
        "re-check API token holders with the identity provider",
    )


# Each worker's own heartbeat (cxhub/liveness.py), read by the sweeper to notice a dead worker.
@worker_init.connect(dispatch_uid="cxhub.liveness.init")
def _liveness_init(sender=None, **kwargs):
    from . import liveness  # Django's apps are loaded only once the worker starts

    liveness.on_worker_init(getattr(sender, "hostname", None) or "celery")


@worker_ready.connect(dispatch_uid="cxhub.liveness.ready")
def _liveness_ready(sender=None, **kwargs):
    from . import liveness  # as above

    liveness.start()


@worker_shutdown.connect(dispatch_uid="cxhub.liveness.shutdown")
def _liveness_shutdown(sender=None, **kwargs):
    from . import liveness  # as above

    liveness.stop()


# The request id of the web request that queued a task travels with it, into its log lines and
# the tasks it queues in turn (cxhub/logs.py).
before_task_publish.connect(logs.on_before_task_publish, dispatch_uid="cxhub.logs.publish")
task_prerun.connect(logs.on_task_prerun, dispatch_uid="cxhub.logs.prerun")
task_postrun.connect(logs.on_task_postrun, dispatch_uid="cxhub.logs.postrun")
