"""Social accounts API: the accounts I may see, and one of them.

Views parse input, call a selector, and render; the scope rules live in selectors. An account
outside a user's scope is a 404, never a 403 that would confirm it exists.
"""

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.params import ROLE, role_param
from cxhub.api import id_parameter, query_choice, query_id

from .. import selectors
from ..models import Channel
from .serializers import SocialAccountOutput


@extend_schema_view(
    get=extend_schema(
        parameters=[
            ROLE,
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
        accounts = selectors.social_accounts_for(user=request.user, roles=role_param(request))
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
