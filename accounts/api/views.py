"""Accounts API: token sign-in, who I am, teams and social accounts I may see.

Views parse input, call a selector or service, and render; the scope rules live in selectors.
Anything outside a user's scope is a 404, never a 403 that would confirm it exists.
"""

from django.contrib.auth import authenticate
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from cxhub.api import CursorPagination, id_parameter, query_bool, query_choice, query_id
from cxhub.errors import ApplicationError

from .. import selectors, services
from ..models import Channel, Notification, Role, Team
from ..notifications import notifications_mark_read
from .serializers import (
    MeOutput,
    NotificationOutput,
    NotificationsReadInput,
    SocialAccountOutput,
    TeamOutput,
    TokenInput,
    TokenOutput,
)


def _client_address(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


class TokenObtainApi(APIView):
    """`POST {"username", "password"}` → `{"token"}`; failures are throttled like the login page."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(request=TokenInput, responses={200: TokenOutput})
    def post(self, request):
        data = TokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        username = data.validated_data["username"]
        address = _client_address(request)
        wait = services.login_throttle_wait(username=username, address=address)
        if wait:
            raise _TooManyAttempts(wait)
        user = authenticate(request, username=username, password=data.validated_data["password"])
        if user is None:
            services.login_failed(username=username, address=address)
            raise ApplicationError(
                "Wrong username or password.",
                {"fields": {"password": ["Wrong username or password."]}},
            )
        services.login_succeeded(user=user, address=address)
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


class _TooManyAttempts(ApplicationError):
    status = status.HTTP_429_TOO_MANY_REQUESTS

    def __init__(self, wait: int):
        minutes = max(1, round(wait / 60))
        super().__init__(
            f"Too many failed sign-ins. Try again in about {minutes} minute(s).",
            {"retry_after_seconds": wait},
        )


class MeApi(APIView):
    @extend_schema(responses=MeOutput)
    def get(self, request):
        user = request.user
        user.memberships_list = list(selectors.memberships_of(user=user))
        user.roles = sorted(selectors.roles_of(user=user))
        return Response(MeOutput(user).data)


def _role_param(request) -> list[str] | None:
    role = query_choice(request.query_params, "role", Role.values)
    return None if role is None else [role]


_ROLE = OpenApiParameter(
    "role", str, enum=Role.values, description="Only where I hold this role (or below it)."
)


class _TreeOrder(CursorPagination):
    ordering = "path"


@extend_schema_view(get=extend_schema(parameters=[_ROLE]))
class TeamListApi(ListAPIView):
    """Teams I hold a role on, or below one (`?role=drafter` narrows to one role), in tree order."""

    serializer_class = TeamOutput
    pagination_class = _TreeOrder

    def get_queryset(self):
        return selectors.teams_for(user=self.request.user, roles=_role_param(self.request))

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(
            TeamOutput(page, many=True, context={"parents": _parents_of(page)}).data
        )


class TeamDetailApi(APIView):
    @extend_schema(responses=TeamOutput)
    def get(self, request, team_id: int):
        team = selectors.team_get(user=request.user, team_id=team_id)
        if team is None:
            raise Http404
        return Response(TeamOutput(team, context={"parents": _parents_of([team])}).data)


def _parents_of(teams) -> dict[str, int]:
    """Parent ids of a page of teams, from their paths, in one query."""
    paths = {team.path[: -team.steplen] for team in teams if team.depth > 1}
    if not paths:
        return {}
    return dict(Team.objects.filter(path__in=paths).values_list("path", "id"))


@extend_schema_view(
    get=extend_schema(
        parameters=[
            _ROLE,
            OpenApiParameter("channel", str, enum=Channel.values, description="One network."),
            id_parameter("team", "Accounts of this team only."),
        ]
    )
)
class SocialAccountListApi(ListAPIView):
    """Social accounts I may see (`?role=drafter`: those I may draft for; `?channel=`, `?team=`)."""

    serializer_class = SocialAccountOutput

    def get_queryset(self):
        request = self.request
        accounts = selectors.social_accounts_for(user=request.user, roles=_role_param(request))
        channel = query_choice(request.query_params, "channel", Channel.values)
        if channel is not None:
            accounts = accounts.filter(channel=channel)
        team = query_id(request.query_params, "team")
        if team is not None:
            accounts = accounts.filter(team_id=team)
        return accounts


class SocialAccountDetailApi(APIView):
    @extend_schema(responses=SocialAccountOutput)
    def get(self, request, account_id: int):
        account = selectors.social_account_get(user=request.user, account_id=account_id)
        if account is None:
            raise Http404
        return Response(SocialAccountOutput(account).data)


@extend_schema_view(
    get=extend_schema(
        parameters=[OpenApiParameter("unread", bool, description="true: unread ones only.")]
    )
)
class NotificationListApi(ListAPIView):
    """My notifications, newest first (`?unread=1` for unread only); `unread_count` in a header."""

    serializer_class = NotificationOutput

    def get_queryset(self):
        notifications = Notification.objects.filter(user=self.request.user)
        if query_bool(self.request.query_params, "unread"):
            notifications = notifications.filter(read_at__isnull=True)
        return notifications

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        response["X-Unread-Count"] = str(
            Notification.objects.filter(user=request.user, read_at__isnull=True).count()
        )
        return response


class NotificationsReadApi(APIView):
    """Mark some (`ids`) or all of my notifications read."""

    @extend_schema(request=NotificationsReadInput, responses={200: None})
    def post(self, request):
        data = NotificationsReadInput(data=request.data)
        data.is_valid(raise_exception=True)
        marked = notifications_mark_read(user=request.user, ids=data.validated_data.get("ids"))
        return Response({"marked": marked})
