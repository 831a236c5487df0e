"""The inbox's API: the items of my accounts, one item, and its triage actions; the agency's
approved responses, which leads keep."""

from django.contrib.auth import get_user_model
from django.db.models import F, Value
from django.db.models.lookups import StartsWith
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import teams_for
from cxhub.api import MAX_ID, id_parameter, query_bool, query_id
from cxhub.errors import ApplicationError
from networks.models import Channel
from publishing import selectors as publishing_selectors
from publishing.api.serializers import PostOutput

from .. import replies, responses, selectors, services
from ..models import ApprovedResponse, InboundItem, ItemKind, ItemStatus, Sentiment
from ..selectors import responses_seen_by
from .serializers import (
    AssignInput,
    ItemOutput,
    ReplyInput,
    ResponseInput,
    ResponseOutput,
    ResponseUpdateInput,
    StatusInput,
)


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


def _assignee(params) -> int | None:
    if params.get("assignee") == "none":
        return 0
    return query_id(params, "assignee")


def _filters(request) -> selectors.ItemFilters:
    params = request.query_params
    networks = _choices(params, "network", Channel.values)
    if len(networks) > 1:
        raise ApplicationError(
            "Give one network.", {"fields": {"network": ["One network's name."]}}
        )
    language = params.get("language")
    if language is not None and len(language) > 16:
        raise ApplicationError(
            "language is a language code.", {"fields": {"language": ["e.g. en, fr."]}}
        )
    return selectors.ItemFilters(
        account_id=query_id(params, "account"),
        network=networks[0] if networks else None,
        kinds=_choices(params, "kind", ItemKind.values),
        statuses=_choices(params, "status", ItemStatus.values),
        sentiments=_choices(params, "sentiment", Sentiment.values),
        language=language if language is not None else None,
        assignee_id=_assignee(params),
        has_post=query_bool(params, "has_post"),
        tag=_tag(params),
    )


def _tag(params) -> str | None:
    value = params.get("tag")
    if value in (None, ""):
        return None
    try:
        return services.tag_name(value)
    except ApplicationError as error:
        raise ApplicationError(error.message, {"fields": {"tag": [error.message]}}) from None


def _list(name: str, values: list[str], description: str) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        {"type": "array", "items": {"type": "string", "enum": values}},
        style="form",
        explode=False,
        description=description + " Comma-separated; an unknown one is a 400.",
    )


_LIST_PARAMETERS = [
    id_parameter("account", "Items of this social account."),
    OpenApiParameter(
        "network", {"type": "string", "enum": Channel.values}, description="Items of a network."
    ),
    _list("kind", ItemKind.values, "Kinds (`reply,mention`)."),
    _list("status", ItemStatus.values, "Statuses (`open,waiting`)."),
    _list("sentiment", Sentiment.values, "Sentiments (`negative`)."),
    OpenApiParameter("language", str, description="A language code (`en`); empty: unknown."),
    OpenApiParameter(
        "assignee",
        str,
        description="A person's id, or `none` for items given to nobody. Anything else is a 400.",
    ),
    OpenApiParameter(
        "has_post", bool, description="`true`: items that answer one of our posts; `false`: not."
    ),
    OpenApiParameter("tag", str, description="Items with this tag (any case)."),
]


def _get_item(request, item_id: int) -> InboundItem:
    item = selectors.inbox_item_get(user=request.user, item_id=item_id)
    if item is None:
        raise Http404
    return item


def _read(request, item_id: int) -> Response:
    return Response(ItemOutput(_get_item(request, item_id)).data)


@extend_schema_view(get=extend_schema(parameters=_LIST_PARAMETERS))
class InboxListApi(ListAPIView):
    """`GET`: replies, mentions and comments that came to the accounts I may see, newest received
    first, filtered by the parameters."""

    serializer_class = ItemOutput

    def get_queryset(self):
        return selectors.inbox_items(user=self.request.user, filters=_filters(self.request))


class InboxItemApi(APIView):
    @extend_schema(responses=ItemOutput)
    def get(self, request, item_id: int):
        return _read(request, item_id)


class InboxItemAssignApi(APIView):
    @extend_schema(request=AssignInput, responses=ItemOutput)
    def post(self, request, item_id: int):
        item = _get_item(request, item_id)
        data = AssignInput(data=request.data)
        data.is_valid(raise_exception=True)
        assignee = None
        assignee_id = data.validated_data["assignee"]
        if assignee_id is not None:
            assignee = get_user_model().objects.filter(pk=assignee_id).first()
            if assignee is None:
                raise ApplicationError(
                    "No such person.", {"fields": {"assignee": ["A person's id."]}}
                )
        services.item_assign(item=item, assignee=assignee, by=request.user)
        return _read(request, item_id)


class InboxItemStatusApi(APIView):
    error_statuses = {"post": (409,)}  # e.g. a closed item cannot be put to waiting

    @extend_schema(request=StatusInput, responses=ItemOutput)
    def post(self, request, item_id: int):
        item = _get_item(request, item_id)
        data = StatusInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.item_set_status(item=item, status=data.validated_data["status"], by=request.user)
        return _read(request, item_id)


class InboxItemCloseApi(APIView):
    error_statuses = {"post": (409,)}

    @extend_schema(request=None, responses=ItemOutput)
    def post(self, request, item_id: int):
        services.item_close(item=_get_item(request, item_id), by=request.user)
        return _read(request, item_id)


class InboxItemReplyApi(APIView):
    """`POST`: draft a reply to the item from the account it came to; the answer is the new post,
    as `POST /api/v1/posts/` gives it. Submit it like any post (`/api/v1/posts/{id}/submit/`):
    it goes through the chain the team's policies set for replies, and when it is published the
    item closes."""

    @extend_schema(request=ReplyInput, responses={201: PostOutput})
    def post(self, request, item_id: int):
        item = _get_item(request, item_id)
        data = ReplyInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        post = replies.item_reply_create(
            item=item,
            by=request.user,
            body=values["body"],
            team_id=values.get("team"),
            media_ids=values["media"],
        )
        fresh = publishing_selectors.post_get(user=request.user, post_id=post.pk)
        return Response(PostOutput(fresh).data, status=201)


# Approved responses ---------------------------------------------------------------------------
_RESPONSE_PARAMETERS = [
    id_parameter(
        "team",
        "The responses offered to this team: its own and those of the teams above it. A team "
        "you hold no role on is a 400 naming it.",
    ),
    OpenApiParameter(
        "active",
        bool,
        description="`false`: the withdrawn ones instead (default `true`: those offered).",
    ),
]


def _get_response(request, response_id: int) -> ApprovedResponse:
    found = (
        responses_seen_by(user=request.user).filter(pk=response_id).first()
        if response_id <= MAX_ID
        else None
    )
    if found is None:
        raise Http404
    return found


@extend_schema_view(get=extend_schema(parameters=_RESPONSE_PARAMETERS))
class ResponseListApi(ListAPIView):
    """`GET`: the approved responses offered to the teams I hold a role on: those of these teams
    (and the teams below them) and of the teams above them, newest first. `POST`: a lead adds
    one to a team they lead; it is offered to that team and the teams below it."""

    serializer_class = ResponseOutput

    def get_queryset(self):
        params = self.request.query_params
        active = query_bool(params, "active")
        found = responses_seen_by(user=self.request.user).filter(
            active=True if active is None else active
        )
        team_id = query_id(params, "team")
        if team_id is not None:
            team = teams_for(user=self.request.user).filter(pk=team_id).first()
            if team is None:
                raise ApplicationError(
                    "No team with this id that you hold a role on.",
                    {"fields": {"team": ["A team you hold a role on."]}},
                )
            # The team's own responses and those of the teams above it (a prefix of its path).
            found = found.filter(StartsWith(Value(team.path), F("team__path")))
        return found

    @extend_schema(request=ResponseInput, responses={201: ResponseOutput})
    def post(self, request):
        data = ResponseInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        kept = responses.response_create(
            by=request.user, team_id=values["team"], title=values["title"], body=values["body"]
        )
        return Response(ResponseOutput(kept).data, status=201)


class ResponseDetailApi(APIView):
    """`GET`: one approved response. `PATCH`: a lead of its team changes its words, or withdraws
    it (`active`: false) and offers it again; audited."""

    @extend_schema(responses=ResponseOutput)
    def get(self, request, response_id: int):
        return Response(ResponseOutput(_get_response(request, response_id)).data)

    @extend_schema(request=ResponseUpdateInput, responses=ResponseOutput)
    def patch(self, request, response_id: int):
        kept = _get_response(request, response_id)
        data = ResponseUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        responses.response_update(by=request.user, response=kept, **data.validated_data)
        return Response(ResponseOutput(_get_response(request, response_id)).data)
