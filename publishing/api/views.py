"""Posts and media API. Views parse input, call one service or selector, and render.

Objects outside the caller's scope answer 404. Service refusals come back as
`{"message", "extra"}` with 400 (bad input), 403 (not allowed), 409 (wrong state).
"""

from datetime import UTC, datetime

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from cxhub.api import id_parameter, query_id
from cxhub.errors import ApplicationError

from .. import media_services, preflight, selectors, services
from ..dispatch import sweep
from ..models import PostStatus
from .serializers import (
    CancelInput,
    MediaOutput,
    MediaUploadInput,
    PostInput,
    PostMetricsOutput,
    PostOutput,
    PostUpdateInput,
    PreflightOutput,
    TargetDecideInput,
)


def _targets(data) -> list[services.TargetInput]:
    return [
        services.TargetInput(social_account_id=item["social_account"], body=item.get("body", ""))
        for item in data
    ]


def _int_param(request, name: str) -> int | None:
    return query_id(request.query_params, name)


def _time_param(request, name: str) -> datetime | None:
    value = request.query_params.get(name)
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace(" ", "+"))
        if moment.tzinfo is not None:
            moment.astimezone(UTC)  # the database compares in UTC: year 1 or 9999 can overflow
    except (ValueError, OverflowError):
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ApplicationError(
            f"{name} must be an ISO 8601 time with its offset.",
            {"fields": {name: ["e.g. 2026-03-01T00:00:00Z"]}},
        )
    return moment


def _get_post(request, post_id: int):
    post = selectors.post_get(user=request.user, post_id=post_id)
    if post is None:
        raise Http404
    return post


def _read(request, post_id: int) -> Response:
    return Response(PostOutput(_get_post(request, post_id)).data)


_LIST_PARAMETERS = [
    OpenApiParameter(
        "status",
        {"type": "array", "items": {"type": "string", "enum": PostStatus.values}},
        style="form",
        explode=False,
        description="Comma-separated statuses (`draft,scheduled`); an unknown one is a 400.",
    ),
    id_parameter("team", "Posts of this team and the teams below it."),
    id_parameter("account", "Posts with a target on this social account."),
    OpenApiParameter(
        "since",
        OpenApiTypes.DATETIME,
        description="Scheduled at or after (ISO 8601 with its UTC offset).",
    ),
    OpenApiParameter(
        "until", OpenApiTypes.DATETIME, description="Scheduled before (ISO 8601 with its offset)."
    ),
]


@extend_schema_view(get=extend_schema(parameters=_LIST_PARAMETERS))
class PostListCreateApi(ListAPIView):
    """`GET`: posts I may see (`?status=draft,scheduled`, `?team=`, `?account=`, `?since=`,
    `?until=` on the scheduled time). `POST`: a new draft."""

    serializer_class = PostOutput

    def get_queryset(self):
        request = self.request
        statuses = [s for s in request.query_params.get("status", "").split(",") if s]
        unknown = [s for s in statuses if s not in PostStatus.values]
        if unknown:
            raise ApplicationError(
                f"Unknown status {unknown[0]!r}.",
                {"fields": {"status": [f"One of {', '.join(PostStatus.values)}."]}},
            )
        return selectors.post_listing(
            user=request.user,
            status=statuses,
            team_id=_int_param(request, "team"),
            account_id=_int_param(request, "account"),
            since=_time_param(request, "since"),
            until=_time_param(request, "until"),
        )

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        return None if page is None else selectors.fill_listing(page)

    @extend_schema(request=PostInput, responses={201: PostOutput})
    def post(self, request):
        data = PostInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        post = services.post_create(
            by=request.user,
            team_id=values["team"],
            body=values["body"],
            link=values["link"],
            targets=_targets(values["targets"]),
            media_ids=values["media"],
            scheduled_at=values["scheduled_at"],
            timezone_name=values["timezone"],
            tags=values["tags"],
            campaign=values["campaign"],
            urgent=values["urgent"],
        )
        return Response(
            PostOutput(_get_post(request, post.pk)).data, status=status.HTTP_201_CREATED
        )


class PostDetailApi(APIView):
    error_statuses = {"patch": (409,), "put": (409,)}  # a post past review cannot change

    @extend_schema(responses=PostOutput)
    def get(self, request, post_id: int):
        return _read(request, post_id)

    @extend_schema(request=PostUpdateInput, responses=PostOutput)
    def patch(self, request, post_id: int):
        post = _get_post(request, post_id)
        data = PostUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        changes = {}
        for name in ("body", "link", "scheduled_at", "tags", "campaign", "urgent"):
            if name in values:
                changes[name] = values[name]
        if "timezone" in values:
            changes["timezone_name"] = values["timezone"]
        if "targets" in values:
            changes["targets"] = _targets(values["targets"])
        if "media" in values:
            changes["media_ids"] = values["media"]
        services.post_update(post=post, by=request.user, **changes)
        return _read(request, post_id)

    put = patch


class PostSubmitApi(APIView):
    error_statuses = {"post": (409,)}  # the post (or request) must be in a state that allows it

    @extend_schema(request=None, responses=PostOutput)
    def post(self, request, post_id: int):
        services.post_submit(post=_get_post(request, post_id), by=request.user)
        return _read(request, post_id)


class PostCancelApi(APIView):
    error_statuses = {"post": (409,)}  # the post (or request) must be in a state that allows it

    @extend_schema(request=CancelInput, responses=PostOutput)
    def post(self, request, post_id: int):
        data = CancelInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.post_cancel(
            post=_get_post(request, post_id), by=request.user, reason=data.validated_data["reason"]
        )
        return _read(request, post_id)


class PostTargetDecideApi(APIView):
    """Decide a target held because reconcile found posts that may be ours (its
    `reconcile_candidates`): one of them is ours, none is (send again), or give up."""

    error_statuses = {"post": (409,)}  # only a held target can be decided

    @extend_schema(request=TargetDecideInput, responses=PostOutput)
    def post(self, request, post_id: int, target_id: int):
        data = TargetDecideInput(data=request.data)
        data.is_valid(raise_exception=True)
        post = _get_post(request, post_id)
        target = next((t for t in post.targets.all() if t.pk == target_id), None)
        if target is None:
            raise Http404
        sweep.target_decide(target=target, by=request.user, **data.validated_data)
        return _read(request, post_id)


class PostDuplicateApi(APIView):
    @extend_schema(request=None, responses={201: PostOutput})
    def post(self, request, post_id: int):
        copy = services.post_duplicate(post=_get_post(request, post_id), by=request.user)
        return Response(PostOutput(_get_post(request, copy.pk)).data, status=201)


class PostPreflightApi(APIView):
    """Every problem with the post as stored now; `ok` is false when one blocks submission."""

    @extend_schema(request=None, responses=PreflightOutput)
    def get(self, request, post_id: int):
        findings = preflight.run(post=_get_post(request, post_id))
        return Response(
            {
                "ok": not any(f.severity == "error" for f in findings),
                "problems": [f.as_dict() for f in findings],
            }
        )

    post = get


class MediaListCreateApi(ListAPIView):
    """`GET`: images I may use. `POST` (multipart): `file` + `alt_text` (+ `team`)."""

    serializer_class = MediaOutput
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self):
        return selectors.media_for(user=self.request.user).prefetch_related("renditions")

    @extend_schema(request=MediaUploadInput, responses={201: MediaOutput})
    def post(self, request):
        data = MediaUploadInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        media = media_services.media_upload(
            by=request.user,
            file=values["file"],
            alt_text=values["alt_text"],
            team_id=values.get("team"),
            original_name=values["file"].name,
        )
        return Response(
            MediaOutput(media, context={"request": request}).data, status=status.HTTP_201_CREATED
        )


class MediaDetailApi(APIView):
    @extend_schema(responses=MediaOutput, parameters=[OpenApiParameter("media_id", int, "path")])
    def get(self, request, media_id: int):
        media = (
            selectors.media_visible(user=request.user)
            .prefetch_related("renditions")
            .filter(pk=media_id)
            .first()
        )
        if media is None:
            raise Http404
        return Response(MediaOutput(media, context={"request": request}).data)


class PostMetricsApi(APIView):
    """`GET`: how the post did on each network: every reading of its figures (likes, reposts,
    replies, quotes, and impressions and clicks where the network gives them), oldest first."""

    @extend_schema(responses=PostMetricsOutput)
    def get(self, request, post_id: int):
        post = _get_post(request, post_id)
        data = {"post": post.pk, "targets": selectors.post_engagement(post=post)}
        return Response(PostMetricsOutput(data).data)
