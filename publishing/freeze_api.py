"""Publishing freezes API: `GET/POST /api/v1/freezes/`, `POST /api/v1/freezes/<id>/lift/`, and
`POST /api/v1/posts/<id>/reschedule-held/` (a new time for a post a freeze holds).

Leads only see and lift the freezes of their scope; any other freeze answers 404. Creating one
outside one's scope is a 400 naming the field (the same answer as for an id that does not exist).
"""

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from cxhub.api import IdField
from cxhub.errors import ApplicationError

from . import freezes
from .models import PublishingFreeze

_TOPIC_RULE = (
    "With scope `topic` only: posts carrying any of these tags (compared without case or a "
    f"leading '#'; at most {freezes.MAX_TAGS} of at most {freezes.MAX_TAG_LENGTH} characters) "
    "or in `campaign` are frozen; give at least one tag or the campaign."
)


class FreezeInput(serializers.Serializer):
    """`team` with scope `team`, `social_account` with scope `account`, neither with
    `everything` (which only a lead of the whole organisation may freeze); `team` with `tags`
    and/or `campaign` with scope `topic` (the posts on that topic of the team's subtree)."""

    scope = serializers.ChoiceField(choices=PublishingFreeze.Scope.choices)
    team = IdField(required=False, allow_null=True, default=None)
    social_account = IdField(required=False, allow_null=True, default=None)
    tags = serializers.ListField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False),
        required=False,
        default=list,
        help_text=_TOPIC_RULE,
    )
    campaign = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=freezes.CAMPAIGN_MAX,
        help_text="With scope `topic` only: posts of this campaign (compared without case).",
    )
    reason = serializers.CharField(
        max_length=freezes.REASON_MAX, help_text="Shown to everyone it stops; not blank."
    )


class LiftInput(serializers.Serializer):
    reason = serializers.CharField(
        max_length=freezes.REASON_MAX, help_text="Shown to everyone it stops; not blank."
    )


class FreezeOutput(serializers.ModelSerializer):
    tags = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="A topic freeze's tags."
    )
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    lifted_by = serializers.CharField(
        source="lifted_by.username", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = PublishingFreeze
        fields = [
            "id",
            "scope",
            "team",
            "social_account",
            "tags",
            "campaign",
            "reason",
            "active",
            "created_by",
            "created_at",
            "lifted_by",
            "lifted_at",
            "lift_reason",
        ]
        read_only_fields = fields


class FreezeListCreateApi(ListAPIView):
    """`GET`: the freezes of my scope, newest first (`?active=true` for those in force).
    `POST`: freeze everything, a team and the teams below it, one account, or the posts on a
    topic (tags or campaign) of a team and the teams below it, with a reason."""

    serializer_class = FreezeOutput

    @extend_schema(parameters=[OpenApiParameter("active", bool, required=False)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        found = freezes.freezes_for(user=self.request.user)
        active = self.request.query_params.get("active")
        if active not in (None, ""):
            if active not in ("true", "false"):
                raise ApplicationError(
                    "active must be true or false.", {"fields": {"active": ["true or false"]}}
                )
            found = found.filter(active=active == "true")
        return found

    @extend_schema(request=FreezeInput, responses={201: FreezeOutput})
    def post(self, request):
        data = FreezeInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        freeze = freezes.freeze_create(
            by=request.user,
            scope=values["scope"],
            reason=values["reason"],
            team_id=values["team"],
            social_account_id=values["social_account"],
            tags=values["tags"],
            campaign=values["campaign"],
        )
        return Response(FreezeOutput(freeze).data, status=status.HTTP_201_CREATED)


class FreezeLiftApi(APIView):
    """`POST {"reason": "…"}`: lift a freeze; what it held waits again, due at its own time."""

    error_statuses = {"post": (409,)}  # a freeze is lifted once

    @extend_schema(request=LiftInput, responses={200: FreezeOutput})
    def post(self, request, freeze_id: int):
        freeze = freezes.freeze_get(user=request.user, freeze_id=freeze_id)
        if freeze is None:
            raise Http404
        data = LiftInput(data=request.data)
        data.is_valid(raise_exception=True)
        freeze = freezes.freeze_lift(
            freeze=freeze, by=request.user, reason=data.validated_data["reason"]
        )
        return Response(
            FreezeOutput(freezes.freeze_get(user=request.user, freeze_id=freeze.pk)).data
        )


class RescheduleInput(serializers.Serializer):
    scheduled_at = serializers.DateTimeField(
        help_text="The new time, ISO 8601 with its offset (2026-12-01T09:00:00+01:00)."
    )
    reason = serializers.CharField(
        max_length=freezes.REASON_MAX, help_text="Shown to everyone it stops; not blank."
    )


class RescheduleOutput(serializers.Serializer):
    post = serializers.IntegerField()
    scheduled_at = serializers.DateTimeField()
    targets = serializers.IntegerField(help_text="Accounts of the post given the new time.")


class HeldRescheduleApi(APIView):
    """`POST {"scheduled_at": "…", "reason": "…"}`: a lead gives a post held by a freeze a new
    time; its held accounts go out then, or when the freeze is lifted if it still holds them."""

    error_statuses = {"post": (409,)}  # only a post a freeze holds

    @extend_schema(request=RescheduleInput, responses={200: RescheduleOutput})
    def post(self, request, post_id: int):
        post = freezes.held_post_get(user=request.user, post_id=post_id)
        if post is None:
            raise Http404
        data = RescheduleInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        moved = freezes.held_post_reschedule(
            post=post, by=request.user, scheduled_at=values["scheduled_at"], reason=values["reason"]
        )
        return Response(
            RescheduleOutput(
                {"post": post.pk, "scheduled_at": values["scheduled_at"], "targets": moved}
            ).data
        )
