"""/metrics: what operators watch, in Prometheus's text format, behind a bearer token.

Besides the web's request metrics (cxhub/metrics.py), the state of the work is read at scrape
time from PostgreSQL and the broker, so any web process answers the same: the depth of each
Celery queue, due targets no dispatcher has claimed, open targets and recent tries by network,
how late recent posts went out, accounts by status (needing reconnect), and the oldest audit
event not yet in a signed checkpoint. A fixed number of queries, whatever the rows.

Figures counted from the database are gauges, never counters (`*_total`): a count of rows can
fall (a target leaves `waiting`; a try leaves the window), and Prometheus takes any fall of a
counter for a restart."""

import hmac
import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import generate_latest
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily

from audit.sealer import checkpoint_lag
from networks.models import SocialAccount
from publishing.dispatch.claim import DISPATCHABLE_POST_STATUSES
from publishing.models import PostTarget, PublishAttempt, TargetStatus

from .celery import app
from .metrics import request_registry

log = logging.getLogger(__name__)

# The classic text format, which every Prometheus reads (our names need none of 1.0.0's UTF-8).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Targets still in someone's hands: the statuses a target leaves again.
OPEN_TARGET_STATUSES = (
    TargetStatus.PENDING,
    TargetStatus.WAITING,
    TargetStatus.QUEUED,
    TargetStatus.SENDING,
    TargetStatus.HELD,
)
# Tries that put a post on the network.
PUBLISHED_OUTCOMES = (PublishAttempt.Outcome.PUBLISHED, PublishAttempt.Outcome.RECONCILED)
# Upper bounds (seconds) of the lateness histogram: on time is within a dispatch interval.
LATENESS_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)


class StateCollector:
    """The state of the work, read when Prometheus asks (nine queries, and one broker
    connection)."""

    def collect(self):
        now = timezone.now()
        since = now - timedelta(seconds=settings.CXHUB_METRICS_WINDOW_SECONDS)
        yield from self._due(now)
        yield from self._targets()
        yield from self._outcomes(since)
        yield from self._lateness(since)
        yield from self._accounts()
        yield from self._audit()
        yield from self._queues()

    def _due(self, now):
        """One query: the dispatcher's own condition (claim.py), without its lookahead."""
        due = PostTarget.objects.filter(
            status=TargetStatus.WAITING,
            next_attempt_at__lte=now,
            post__status__in=DISPATCHABLE_POST_STATUSES,
        ).aggregate(count=Count("id"), oldest=Min("next_attempt_at"))
        yield GaugeMetricFamily(
            "cxhub_due_targets_unclaimed",
            "Targets due (their time or retry has come) that no dispatcher has claimed yet.",
            value=due["count"],
        )
        oldest = due["oldest"]
        yield GaugeMetricFamily(
            "cxhub_due_targets_oldest_age_seconds",
            "How long the longest-waiting due, unclaimed target has been due (0: none).",
            value=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        )

    def _targets(self):
        """One query, over the open statuses only (indexed): finished targets pile up forever,
        and what finished is counted by _outcomes, within the window."""
        family = GaugeMetricFamily(
            "cxhub_targets",
            "Targets not finished yet, by channel and status (from the database).",
            labels=["channel", "status"],
        )
        rows = (
            PostTarget.objects.filter(status__in=OPEN_TARGET_STATUSES)
            .values_list("social_account__channel", "status")
            .annotate(n=Count("id"))
            .order_by()
        )
        for channel, status, count in rows:
            family.add_metric([channel, status], count)
        yield family

    def _outcomes(self, since):
        """One query: the tries started within the window (the (outcome, started_at) index)."""
        family = GaugeMetricFamily(
            "cxhub_publish_outcomes",
            "Tries at the networks started within CXHUB_METRICS_WINDOW_SECONDS, by channel and "
            "outcome (from the database; 'running' for a try not finished).",
            labels=["channel", "outcome"],
        )
        rows = (
            PublishAttempt.objects.filter(
                outcome__in=[*PublishAttempt.Outcome.values, ""], started_at__gte=since
            )
            .values_list("target__social_account__channel", "outcome")
            .annotate(n=Count("id"))
            .order_by()
        )
        for channel, outcome, count in rows:
            family.add_metric([channel, outcome or "running"], count)
        yield family

    def _lateness(self, since):
        """One query: published within the window, from their post's time to the network's
        answer, counted into cumulative buckets by the database."""
        lateness = ExpressionWrapper(
            F("target__published_at") - F("target__post__scheduled_at"),
            output_field=DurationField(),
        )
        counts = {
            f"le_{index}": Count("id", filter=Q(lateness__lte=timedelta(seconds=bound)))
            for index, bound in enumerate(LATENESS_BUCKETS)
        }
        found = (
            PublishAttempt.objects.filter(
                outcome__in=PUBLISHED_OUTCOMES,
                started_at__gte=since,
                target__published_at__isnull=False,
                target__post__scheduled_at__isnull=False,
            )
            .annotate(lateness=lateness)
            .aggregate(count=Count("id"), total=Sum("lateness"), **counts)
        )
        buckets = [
            (str(float(bound)), found[f"le_{index}"])
            for index, bound in enumerate(LATENESS_BUCKETS)
        ]
        buckets.append(("+Inf", found["count"]))
        total = found["total"]
        yield GaugeHistogramMetricFamily(
            "cxhub_publish_lateness_seconds",
            "How late targets published within CXHUB_METRICS_WINDOW_SECONDS went out: from "
            "their post's scheduled time to the network's answer (retries included).",
            buckets=buckets,
            gsum_value=total.total_seconds() if total is not None else 0.0,
        )

    def _accounts(self):
        """One query: social accounts by channel and status (needs_reconnect: its token was
        refused, and its targets are held until someone reconnects it)."""
        family = GaugeMetricFamily(
            "cxhub_social_accounts",
            "Social accounts by channel and status (needs_reconnect: a person must reconnect).",
            labels=["channel", "status"],
        )
        rows = (
            SocialAccount.objects.values_list("channel", "status")
            .annotate(n=Count("id"))
            .order_by()
        )
        for channel, status, count in rows:
            family.add_metric([channel, status], count)
        yield family

    def _audit(self):
        """Four indexed queries: the sealer's own measure (audit.sealer.checkpoint_lag), which
        /healthz reports too."""
        lag = checkpoint_lag()
        yield GaugeMetricFamily(
            "cxhub_audit_oldest_unsealed_event_age_seconds",
            "How long the oldest audit event not yet in a signed checkpoint has waited (0: none).",
            value=lag.lag.total_seconds(),
        )
        yield GaugeMetricFamily(
            "cxhub_audit_checkpoint_window_seconds",
            "The longest an audit event may wait for its signed checkpoint "
            "(CXHUB_AUDIT_CHECKPOINT_WINDOW_SECONDS).",
            value=lag.window.total_seconds(),
        )

    def _queues(self):
        """Messages waiting in each Celery queue the app declares, read from the broker (a
        message a worker holds is not counted). The broker down: cxhub_broker_up 0, no depths."""
        names = sorted(app.amqp.queues.keys())
        depths = GaugeMetricFamily(
            "cxhub_queue_depth",
            "Messages waiting in each Celery queue on the broker.",
            labels=["queue"],
        )
        up = 1
        try:
            with app.connection_for_read() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
                for name in names:
                    depths.add_metric([name], _depth(conn, name))
        except Exception as exc:  # kombu raises each transport's own errors
            log.warning("metrics: the broker cannot be read: %s: %s", type(exc).__name__, exc)
            up = 0
        yield GaugeMetricFamily(
            "cxhub_broker_up", "Whether /metrics could read the broker (1) or not (0).", value=up
        )
        if up:
            yield depths


def _depth(conn, queue: str) -> int:
    """A passive declare: the queue's count without creating it. A queue never declared (no
    message yet) is refused, which an AMQP server answers by closing the channel: one channel
    per queue."""
    channel = conn.channel()
    try:
        return channel.queue_declare(queue=queue, passive=True).message_count
    except conn.channel_errors:
        return 0
    finally:
        try:
            channel.close()
        except conn.connection_errors + conn.channel_errors:
            pass


def _authorised(request) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    expected = settings.CXHUB_METRICS_TOKEN.encode()
    # compare_digest: the time taken says nothing about how much of the token was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected)


@never_cache
@require_GET
def metrics_view(request):
    """No token configured: there is no /metrics (404). A wrong or missing one: 401, so a
    misconfigured Prometheus says 'unauthorised' rather than 'not found'."""
    if not settings.CXHUB_METRICS_TOKEN:
        raise Http404
    if not _authorised(request):
        response = HttpResponse(
            "A bearer token is needed.\n", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = request_registry()
    registry.register(StateCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE)
