"""Listening's API: the watches I may see (a lead makes and changes them, and points their alerts
at a chat webhook), their false claims, their measures over time (JSON, or CSV to download), and
their alerts, which a lead acknowledges and closes, and from which a drafter of the team drafts a
post or a reply in the words of an approved response.

Watches and alerts outside the caller's teams answer 404; the services' refusals come back as
`{"message", "extra"}` with 400 (bad input, naming the field), 403 (not a lead), 409 (an alert
not in a state that allows the action)."""

from datetime import UTC, datetime, timedelta

from django.db.models import Prefetch, QuerySet
from django.http import Http404, HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions
from rest_framework.generics import ListAPIView
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.settings import APISettings
from rest_framework.views import APIView

from accounts.models import User
from cxhub.api import MAX_ID, id_parameter, query_choice, query_id
from cxhub.errors import ApplicationError
from publishing import selectors as publishing_selectors
from publishing.api.serializers import PostOutput
from publishing.freeze_api import FreezeOutput

from .. import alerts, exports, measures, selectors, services, webhooks
from ..forms import renamed
from ..models import Alert, AlertKind, AlertStatus, FalseClaim, Resolution, Source, Watch
from .serializers import (
    AlertCloseInput,
    AlertDraftInput,
    AlertFreezeInput,
    AlertOutput,
    AlertReplyInput,
    ClaimInput,
    ClaimOutput,
    ClaimUpdateInput,
    MeasuresOutput,
    WatchInput,
    WatchOutput,
    WatchUpdateInput,
    WebhookInput,
    WebhookOutput,
)

# The range a measures request covers when it does not say, per resolution.
DEFAULT_SPAN = {
    Resolution.MINUTE: timedelta(hours=2),
    Resolution.HOUR: timedelta(hours=24),
    Resolution.DAY: timedelta(days=30),
}
# More buckets than this in one answer is a 400: a chart cannot show them, and each costs.
MAX_BUCKETS = 2000
# `since` and `until` stay this far inside the calendar, so that no step past them overflows.
_EDGE = timedelta(days=2)


# Reading ----------------------------------------------------------------------------------------
def _watches(user: User) -> QuerySet[Watch]:
    """The watches `user` may see, each with its open alerts counted (a subquery per row of the
    page, on the (watch, status) index) and its sources fetched: a page in two queries, however
    many watches and sources it holds."""
    return (
        selectors.watches_for(user=user)
        .annotate(open_alerts=selectors.alerts_in(AlertStatus.OPEN))
        .prefetch_related(
            Prefetch(
                "sources",
                queryset=Source.objects.order_by("network", "kind", "query"),
                to_attr="sources_list",
            )
        )
    )


def _get_watch(request, watch_id: int) -> Watch:
    watch = (
        selectors.watch_get(user=request.user, watch_id=watch_id) if watch_id <= MAX_ID else None
    )
    if watch is None:
        raise Http404
    return watch


def _read_watch(request, watch_id: int, status: int = 200) -> Response:
    watch = _watches(request.user).filter(pk=watch_id).first() if watch_id <= MAX_ID else None
    if watch is None:
        raise Http404
    return Response(WatchOutput(watch).data, status=status)


def _get_alert(request, alert_id: int) -> Alert:
    alert = (
        selectors.alert_get(user=request.user, alert_id=alert_id) if alert_id <= MAX_ID else None
    )
    if alert is None:
        raise Http404
    return alert


def _read_alert(request, alert_id: int) -> Response:
    return Response(AlertOutput(_get_alert(request, alert_id)).data)


def _choices(params, name: str, choices: list[str]) -> list[str]:
    """A comma-separated list of `choices` in the query string; an unknown one is a 400."""
    values = [value for value in params.get(name, "").split(",") if value]
    for value in values:
        if value not in choices:
            raise ApplicationError(
                f"Unknown {name} {value!r}.",
                {"fields": {name: [f"One of {', '.join(choices)}."]}},
            )
    return values


def _list(name: str, values: list[str], description: str) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        {"type": "array", "items": {"type": "string", "enum": values}},
        style="form",
        explode=False,
        description=description + " Comma-separated; an unknown one is a 400.",
    )


# Watches --------------------------------------------------------------------------------------
class WatchListApi(ListAPIView):
    """`GET`: the watches of the teams I hold a role on (and the teams below), newest first.
    `POST`: a lead makes one for a team they lead; its sources are due at once."""

    serializer_class = WatchOutput

    def get_queryset(self):
        return _watches(self.request.user)

    @extend_schema(request=WatchInput, responses={201: WatchOutput})
    def post(self, request):
        data = WatchInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        team_id = values.pop("team")
        watch = services.watch_create(by=request.user, team_id=team_id, values=values)
        return _read_watch(request, watch.pk, status=201)


class WatchDetailApi(APIView):
    """`GET`: one watch. `PATCH`: a lead of its team changes it (what is given changes); the
    sources follow, the change is audited."""

    @extend_schema(responses=WatchOutput)
    def get(self, request, watch_id: int):
        return _read_watch(request, watch_id)

    @extend_schema(request=WatchUpdateInput, responses=WatchOutput)
    def patch(self, request, watch_id: int):
        watch = _get_watch(request, watch_id)
        data = WatchUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.watch_update(by=request.user, watch=watch, values=dict(data.validated_data))
        return _read_watch(request, watch_id)


class WatchWebhookApi(APIView):
    """`POST`: a lead of the watch's team points its alerts at a webhook (the agency's chat tool)
    with a new signing secret, given in this answer only; an empty `url` removes it. Audited
    (the address, never the secret)."""

    @extend_schema(request=WebhookInput, responses=WebhookOutput)
    def post(self, request, watch_id: int):
        watch = _get_watch(request, watch_id)
        data = WebhookInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            secret = webhooks.watch_set_webhook(
                by=request.user, watch=watch, url=data.validated_data["url"]
            )
        except ApplicationError as error:
            raise renamed(error, {"webhook_url": "url"}) from None
        response = Response(
            WebhookOutput({"webhook_url": watch.webhook_url, "secret": secret}).data
        )
        response["Cache-Control"] = "no-store"
        return response


# Measures -------------------------------------------------------------------------------------
def _moment(params, name: str) -> datetime | None:
    """An ISO 8601 time with its offset in the query string, in UTC; None when absent."""
    value = params.get(name)
    if value in (None, ""):
        return None
    try:
        # "+01:00" in a query string that was not percent-encoded arrives as " 01:00".
        moment = datetime.fromisoformat(value.strip().replace(" ", "+"))
        if moment.tzinfo is None:
            raise ValueError(value)
        moment = moment.astimezone(UTC)
        if (
            not datetime.min.replace(tzinfo=UTC) + _EDGE
            <= moment
            <= (datetime.max.replace(tzinfo=UTC) - _EDGE)
        ):
            raise ValueError(value)
    except (ValueError, OverflowError):
        raise ApplicationError(
            f"{name} must be an ISO 8601 time with its offset.",
            {"fields": {name: ["e.g. 2026-03-01T09:00:00Z or 2026-03-01T10:00:00+01:00."]}},
        ) from None
    return moment


def _bucket_count(since: datetime, until: datetime, resolution: str) -> int:
    """How many buckets measures.series gives for this range."""
    step = measures.STEP[resolution]
    first = measures.bucket_start(since, resolution)
    if first < since:
        first += step
    return max(0, -((first - until) // step))


def _wants_csv(request) -> bool:
    fmt = query_choice(request.query_params, "format", ["json", "csv"])
    if fmt is not None:
        return fmt == "csv"
    return "text/csv" in request.headers.get("Accept", "")


class _CsvMayBeAsked(DefaultContentNegotiation):
    """Here `?format=` chooses the answer (json, csv), not one of DRF's renderers (whose
    negotiation answers 404 for a format it has no renderer for); and `Accept: text/csv` is
    fair, the export being written by the view (JSON renders only the errors then)."""

    settings = APISettings({"URL_FORMAT_OVERRIDE": None})

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except exceptions.NotAcceptable:
            if "text/csv" in request.headers.get("Accept", ""):
                return renderers[0], renderers[0].media_type
            raise


_MEASURES_PARAMETERS = [
    OpenApiParameter(
        "resolution",
        {"type": "string", "enum": Resolution.values},
        description="Bucket size (default hour). Buckets are UTC minutes, hours and days.",
    ),
    OpenApiParameter(
        "since",
        OpenApiTypes.DATETIME,
        description="From (ISO 8601 with its UTC offset): the buckets that start then or later. "
        "Default: `until` less 2 hours (minute), 24 hours (hour) or 30 days (day). More than "
        f"{MAX_BUCKETS:,} buckets is a 400 naming `since`.",
    ),
    OpenApiParameter(
        "until",
        OpenApiTypes.DATETIME,
        description="To (ISO 8601 with its UTC offset), exclusive; default now. Not after "
        "`since`: a 400 naming it.",
    ),
    OpenApiParameter(
        "format",
        {"type": "string", "enum": ["json", "csv"]},
        description="csv: the buckets as a CSV file to download (one row per bucket, a "
        "`lang_<code>` column per language seen); `Accept: text/csv` does the same.",
    ),
]


class WatchMeasuresApi(APIView):
    """A watch's figures over time: volume, sentiment, authors and languages per bucket, its top
    posts and authors over the range, and its alerts there (to mark on a chart). Five queries,
    however many posts the watch found.

    With `?format=csv` (or `Accept: text/csv`), the buckets as a CSV file: columns start,
    volume, positive, neutral, negative, not_scored, authors, new_authors, then `lang_<code>`
    per language seen (`lang_und`: undetermined)."""

    content_negotiation_class = _CsvMayBeAsked

    @extend_schema(
        parameters=_MEASURES_PARAMETERS,
        responses={
            200: MeasuresOutput,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR),
        },
    )
    def get(self, request, watch_id: int):
        watch = _get_watch(request, watch_id)
        params = request.query_params
        resolution = query_choice(params, "resolution", Resolution.values) or Resolution.HOUR
        csv = _wants_csv(request)
        since, until = _moment(params, "since"), _moment(params, "until")
        until = until or timezone.now()
        since = since or until - DEFAULT_SPAN[resolution]
        if until <= since:
            raise ApplicationError(
                "until must be after since.", {"fields": {"until": ["After since."]}}
            )
        if _bucket_count(since, until, resolution) > MAX_BUCKETS:
            message = (
                f"At most {MAX_BUCKETS:,} {resolution} buckets: a later since, an earlier "
                "until, or a coarser resolution."
            )
            raise ApplicationError(message, {"fields": {"since": [message]}})
        buckets = measures.series(watch, resolution, since, until)
        if csv:
            response = HttpResponse(exports.series_csv(buckets), content_type="text/csv")
            name = f"watch-{watch.pk}-{resolution}-{since:%Y%m%dT%H%M}Z.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        marks = Alert.objects.filter(
            watch=watch, window_start__lt=until, window_end__gt=since
        ).order_by("window_start", "id")
        return Response(
            MeasuresOutput(
                {
                    "watch": watch.pk,
                    "resolution": resolution,
                    "since": since,
                    "until": until,
                    "buckets": buckets,
                    "top_posts": measures.top_posts(watch, since, until),
                    "top_authors": measures.top_authors(watch, since, until),
                    "alerts": marks,
                }
            ).data
        )


# False claims ---------------------------------------------------------------------------------
class WatchClaimListApi(ListAPIView):
    """`GET`: the watch's known false claims, newest first. `POST`: a lead of its team adds one;
    the watch's posts that use its terms are flagged from then on."""

    serializer_class = ClaimOutput

    def get_queryset(self):
        watch = _get_watch(self.request, self.kwargs["watch_id"])
        return FalseClaim.objects.filter(watch=watch)

    @extend_schema(request=ClaimInput, responses={201: ClaimOutput})
    def post(self, request, watch_id: int):
        watch = _get_watch(request, watch_id)
        data = ClaimInput(data=request.data)
        data.is_valid(raise_exception=True)
        claim = services.claim_create(by=request.user, watch=watch, **data.validated_data)
        return Response(ClaimOutput(claim).data, status=201)


class WatchClaimApi(APIView):
    """`PATCH`: a lead of the watch's team turns a false claim's flagging off or on again."""

    @extend_schema(request=ClaimUpdateInput, responses=ClaimOutput)
    def patch(self, request, watch_id: int, claim_id: int):
        watch = _get_watch(request, watch_id)
        claim = (
            FalseClaim.objects.select_related("watch__team")
            .filter(watch=watch, pk=claim_id)
            .first()
            if claim_id <= MAX_ID
            else None
        )
        if claim is None:
            raise Http404
        data = ClaimUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        claim = services.claim_set_active(
            by=request.user, claim=claim, active=data.validated_data["active"]
        )
        return Response(ClaimOutput(claim).data)


# Alerts ---------------------------------------------------------------------------------------
_ALERT_PARAMETERS = [
    id_parameter("watch", "Alerts of this watch."),
    _list("status", AlertStatus.values, "Statuses (`open,acknowledged`)."),
    _list("kind", AlertKind.values, "Kinds (`spike,false_claim`)."),
]


@extend_schema_view(get=extend_schema(parameters=_ALERT_PARAMETERS))
class AlertListApi(ListAPIView):
    """`GET`: the alerts of the watches I may see, newest first, filtered by the parameters."""

    serializer_class = AlertOutput

    def get_queryset(self):
        params = self.request.query_params
        found = selectors.alerts_for(user=self.request.user)
        watch_id = query_id(params, "watch")
        if watch_id is not None:
            found = found.filter(watch_id=watch_id)
        statuses = _choices(params, "status", AlertStatus.values)
        if statuses:
            found = found.filter(status__in=statuses)
        kinds = _choices(params, "kind", AlertKind.values)
        if kinds:
            found = found.filter(kind__in=kinds)
        return found


class AlertDetailApi(APIView):
    @extend_schema(responses=AlertOutput)
    def get(self, request, alert_id: int):
        return _read_alert(request, alert_id)


class AlertAcknowledgeApi(APIView):
    """`POST`: a lead of the watch's team is on it; the alert stays until closed."""

    error_statuses = {"post": (409,)}  # only an open alert can be acknowledged

    @extend_schema(request=None, responses=AlertOutput)
    def post(self, request, alert_id: int):
        alerts.alert_acknowledge(alert=_get_alert(request, alert_id), by=request.user)
        return _read_alert(request, alert_id)


class AlertCloseApi(APIView):
    """`POST`: a lead of the watch's team closes it, with an optional note; a new surge raises a
    new alert."""

    error_statuses = {"post": (409,)}  # a closed alert stays closed

    @extend_schema(request=AlertCloseInput, responses=AlertOutput)
    def post(self, request, alert_id: int):
        alert = _get_alert(request, alert_id)
        data = AlertCloseInput(data=request.data)
        data.is_valid(raise_exception=True)
        alerts.alert_close(alert=alert, by=request.user, note=data.validated_data["note"])
        return _read_alert(request, alert_id)


class AlertFreezeApi(APIView):
    """`POST`: a lead of the watch's team holds the team's scheduled posts on the watch's topic
    (those of the team and below carrying its topic tags or campaign): a topic freeze, answered
    as `POST /api/v1/freezes/` answers it, lifted like any freeze. 400 naming `topic_tags` when
    the watch does not say how its topic's posts are marked."""

    @extend_schema(request=AlertFreezeInput, responses={201: FreezeOutput})
    def post(self, request, alert_id: int):
        alert = _get_alert(request, alert_id)
        data = AlertFreezeInput(data=request.data)
        data.is_valid(raise_exception=True)
        freeze = alerts.alert_freeze_topic(
            alert=alert, by=request.user, reason=data.validated_data["reason"]
        )
        return Response(FreezeOutput(freeze).data, status=201)


def _drafted(request, post_id: int) -> Response:
    """The new draft as `POST /api/v1/posts/` answers it."""
    post = publishing_selectors.post_get(user=request.user, post_id=post_id)
    return Response(PostOutput(post).data, status=201)


class AlertDraftApi(APIView):
    """`POST`: a drafter of the watch's team drafts a post answering the alert in the words of an
    approved response offered to the team, for our accounts given, marked with the watch's topic
    (its tags and campaign). The answer is the new draft, as `POST /api/v1/posts/` gives it:
    submit it like any post (`/api/v1/posts/{id}/submit/`). Someone who does not draft for the
    team is refused with a 403."""

    @extend_schema(request=AlertDraftInput, responses={201: PostOutput})
    def post(self, request, alert_id: int):
        alert = _get_alert(request, alert_id)
        data = AlertDraftInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            post = alerts.alert_draft_post(
                alert=alert,
                by=request.user,
                response_id=data.validated_data["response"],
                account_ids=data.validated_data["accounts"],
            )
        except ApplicationError as error:
            raise renamed(error, {"targets": "accounts"}) from None
        return _drafted(request, post.pk)


class AlertReplyApi(APIView):
    """`POST`: a drafter of the watch's team drafts a reply to one of the watch's public posts
    (a top post of the alert, say) from one of our accounts on its network, in the words of an
    approved response (`response`) or their own (`body`). The answer is the new draft, as
    `POST /api/v1/posts/` gives it; once approved it is published as the network's reply."""

    @extend_schema(request=AlertReplyInput, responses={201: PostOutput})
    def post(self, request, alert_id: int):
        alert = _get_alert(request, alert_id)
        data = AlertReplyInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            reply = alerts.alert_reply_create(
                alert=alert,
                by=request.user,
                post_id=values["post"],
                account_id=values["account"],
                response_id=values.get("response"),
                body=values.get("body", ""),
            )
        except ApplicationError as error:
            raise renamed(error, {"targets": "account", "in_reply_to": "post"}) from None
        return _drafted(request, reply.pk)
