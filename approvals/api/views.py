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

from .. import selectors, services
from .serializers import BreakGlassInput, DecideInput, InboxItemOutput, RequestOutput


class _OldestFirst(CursorPagination):
    ordering = ("activated_at", "id")


class InboxApi(ListAPIView):
    """Steps waiting for my decision, oldest first, with overdue flags."""

    serializer_class = InboxItemOutput
    pagination_class = _OldestFirst

    def get_queryset(self):
        return selectors.inbox_for(user=self.request.user)

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
