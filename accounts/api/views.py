"""Accounts API: token sign-in, my tokens, who I am, my notifications, teams I may see.

Views parse input, call a selector or service, and render; the scope rules live in selectors.
Anything outside a user's scope is a 404, never a 403 that would confirm it exists.
"""

from django.contrib.auth import authenticate
from django.http import Http404
from django.utils.cache import add_never_cache_headers
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from cxhub.api import CursorPagination, query_bool
from cxhub.errors import ApplicationError

from .. import doors, mfa, selectors, tokens
from ..models import Notification, Team
from ..notifications import notifications_mark_read
from .params import ROLE, role_param
from .serializers import (
    ApiTokenOutput,
    MeOutput,
    NotificationOutput,
    NotificationsReadInput,
    TeamOutput,
    TokenInput,
    TokenOutput,
)
from .throttles import ClientAddressRateThrottle


class TokenObtainApi(APIView):
    """`POST {"username", "password"}` (and optionally `name`, `expires_in_days`, `read_only`) →
    a new token each time, `{"token", "id", "name", "prefix", "expires_at", "read_only"}`: the
    secret is in this answer only. Password tries go through the door policy (accounts/doors.py),
    like the sign-in page.

    One who holds a second factor, or whose role needs one, adds `otp`: a current code from an
    authenticator app or an unused recovery code (passkeys cannot be used here)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ClientAddressRateThrottle]
    throttle_scope = "auth"

    @extend_schema(request=TokenInput, responses={200: TokenOutput})
    def post(self, request):
        data = TokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        username = data.validated_data["username"]
        wait = doors.sign_in_wait(request=request, username=username)
        if wait:
            raise doors.SignInThrottled(wait)
        user = authenticate(request, username=username, password=data.validated_data["password"])
        if user is None:
            doors.sign_in_failed(request=request, username=username, method="token")
            raise ApplicationError(
                "Wrong username or password.",
                {"fields": {"password": ["Wrong username or password."]}},
            )
        mfa.check_for_token(request=request, user=user, code=data.validated_data.get("otp"))
        doors.sign_in_succeeded(request=request, user=user, method="token")
        issued = tokens.api_token_create(
            user=user,
            name=data.validated_data.get("name") or "API token",
            expires_in_days=data.validated_data.get("expires_in_days"),
            read_only=data.validated_data["read_only"],
            by=user,
        )
        response = Response(TokenOutput(_issued(issued)).data)
        add_never_cache_headers(response)  # a secret: no cache or proxy keeps a copy
        return response


def _issued(issued: tokens.IssuedToken) -> dict:
    token = issued.token
    return {
        "token": issued.secret,
        "id": token.pk,
        "name": token.name,
        "prefix": token.prefix,
        "expires_at": token.expires_at,
        "read_only": token.read_only,
    }


class ApiTokenListApi(ListAPIView):
    """My API tokens, newest first, revoked and expired ones too (`state` says which); never a
    secret. An administrator sees other people's on the /tokens/people/ page."""

    serializer_class = ApiTokenOutput

    def get_queryset(self):
        return selectors.api_tokens_of(user=self.request.user)


class ApiTokenRevokeApi(APIView):
    """Revoke a token: my own, or (as an administrator of a team above all of its owner's
    memberships) someone else's; anyone else's is 404. Revoked already: 409."""

    @extend_schema(request=None, responses={200: ApiTokenOutput})
    def post(self, request, token_id: int):
        token = selectors.api_token_get(user=request.user, token_id=token_id)
        if token is None:
            raise Http404
        token = tokens.api_token_revoke(token=token, by=request.user)
        return Response(ApiTokenOutput(token).data)


class MeApi(APIView):
    @extend_schema(responses=MeOutput)
    def get(self, request):
        user = request.user
        user.memberships_list = list(selectors.memberships_of(user=user))
        user.roles = sorted(selectors.roles_of(user=user))
        return Response(MeOutput(user).data)


class _TreeOrder(CursorPagination):
    ordering = "path"


@extend_schema_view(get=extend_schema(parameters=[ROLE]))
class TeamListApi(ListAPIView):
    """Teams I hold a role on, or below one (`?role=drafter` narrows to one role), in tree order."""

    serializer_class = TeamOutput
    pagination_class = _TreeOrder

    def get_queryset(self):
        return selectors.teams_for(user=self.request.user, roles=role_param(self.request))

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
