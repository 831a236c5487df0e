"""Approvals API: my inbox, a request's chain, deciding, and break-glass."""

from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from cxhub.api import CursorPagination
from publishing import selectors as post_selectors
from publishing.api.serializers import PostOutput

from .. import policies, selectors, services
from .serializers import (
    BreakGlassInput,
    DecideInput,
    InboxItemOutput,
    PolicyInput,
    PolicyOutput,
    PolicyUpdateInput,
    RequestOutput,
)


class _OldestFirst(CursorPagination):
    ordering = ("activated_at", "id")


class InboxApi(ListAPIView):
    """Steps waiting for my decision, oldest first, with overdue flags."""

    serializer_class = InboxItemOutput
    pagination_class = _OldestFirst

    def get_queryset(self):
        return selectors.inbox_listing(user=self.request.user)

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        return None if page is None else selectors.fill_inbox(page)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}


def _request(request, request_id: int):
    found = selectors.request_get(user=request.user, request_id=request_id)
    if found is None:
        raise Http404
    return found


class RequestDetailApi(APIView):
    @extend_schema(responses=RequestOutput)
    def get(self, request, request_id: int):
        return Response(RequestOutput(_request(request, request_id)).data)


class DecideApi(APIView):
    error_statuses = {"post": (409,)}  # the request must be open, this version undecided by you

    @extend_schema(request=DecideInput, responses=RequestOutput)
    def post(self, request, request_id: int):
        data = DecideInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.decide(
            request=_request(request, request_id),
            by=request.user,
            verdict=data.validated_data["verdict"],
            comment=data.validated_data["comment"],
        )
        return Response(RequestOutput(_request(request, request_id)).data)


class BreakGlassApi(APIView):
    error_statuses = {"post": (409,)}  # only a draft or a post in review

    @extend_schema(request=BreakGlassInput, responses=PostOutput)
    def post(self, request, post_id: int):
        post = post_selectors.post_get(user=request.user, post_id=post_id)
        if post is None:
            raise Http404
        data = BreakGlassInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.break_glass(
            post=post, by=request.user, justification=data.validated_data["justification"]
        )
        return Response(
            PostOutput(post_selectors.post_get(user=request.user, post_id=post_id)).data
        )


def _stage_inputs(items) -> list[policies.StageInput]:
    return [
        policies.StageInput(
            name=item["name"],
            rule=item["rule"],
            quorum=item.get("quorum"),
            decider_team_id=item.get("decider_team"),
            decider_role=item.get("decider_role", ""),
            named_user_ids=tuple(item.get("named_users", [])),
            sla_hours=item["sla_hours"],
            escalate_to_team_id=item.get("escalate_to_team"),
            escalate_to_role=item.get("escalate_to_role", ""),
            for_replies=item.get("for_replies", True),
        )
        for item in items
    ]


class PolicyListCreateApi(ListAPIView):
    """Approval policies of the teams I administer (and their accounts); `POST` adds one."""

    serializer_class = PolicyOutput

    def get_queryset(self):
        return policies.policies_for(user=self.request.user)

    @extend_schema(request=PolicyInput, responses={201: PolicyOutput})
    def post(self, request):
        data = PolicyInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        policy = policies.policy_create(
            by=request.user,
            name=values["name"],
            team_id=values.get("team"),
            social_account_id=values.get("social_account"),
            schedule_changes_need_approval=values["schedule_changes_need_approval"],
            replies_need_approval=values["replies_need_approval"],
            stages=_stage_inputs(values["stages"]),
        )
        return Response(PolicyOutput(policy).data, status=201)


class PolicyDetailApi(APIView):
    def _policy(self, request, policy_id):
        policy = policies.policies_for(user=request.user).filter(pk=policy_id).first()
        if policy is None:
            raise Http404
        return policy

    @extend_schema(responses=PolicyOutput)
    def get(self, request, policy_id: int):
        return Response(PolicyOutput(self._policy(request, policy_id)).data)

    @extend_schema(request=PolicyUpdateInput, responses=PolicyOutput)
    def patch(self, request, policy_id: int):
        policy = self._policy(request, policy_id)
        data = PolicyUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        policy = policies.policy_update(
            policy=policy,
            by=request.user,
            name=values.get("name"),
            schedule_changes_need_approval=values.get("schedule_changes_need_approval"),
            replies_need_approval=values.get("replies_need_approval"),
            stages=_stage_inputs(values["stages"]) if "stages" in values else None,
        )
        return Response(PolicyOutput(self._policy(request, policy.pk)).data)

    put = patch

    @extend_schema(responses={204: None})
    def delete(self, request, policy_id: int):
        policies.policy_delete(policy=self._policy(request, policy_id), by=request.user)
        return Response(status=204)
