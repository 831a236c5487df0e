"""The inbox's API shapes: an item as listed and read, and the inputs of its actions; the
agency's approved responses and the inputs that keep them."""

from rest_framework import serializers
from rest_framework.fields import empty

from cxhub.api import IdField
from cxhub.outputs import FastOutput

from ..models import ApprovedResponse, InboundItem
from ..responses import BODY_MAX, TITLE_MAX


class AuthorOutput(serializers.Serializer):
    handle = serializers.CharField(source="author_handle")
    name = serializers.CharField(source="author_name")
    id = serializers.CharField(source="author_id", help_text="The author's id on the network.")


class ItemOutput(FastOutput, serializers.ModelSerializer):
    network = serializers.CharField(source="account.channel", help_text="The network's name.")
    account = serializers.IntegerField(source="account_id", help_text="Our social account.")
    author = AuthorOutput(source="*")
    post = serializers.SerializerMethodField(
        help_text="Our post it answers (or whose conversation it is in); null when none."
    )
    target = serializers.IntegerField(
        source="target_id", allow_null=True, help_text="Our post's target on this account."
    )
    assignee = serializers.IntegerField(source="assignee_id", allow_null=True)
    sentiment_score = serializers.FloatField(
        allow_null=True, help_text="-1 (most negative) to 1; null when not scored."
    )
    response_seconds = serializers.FloatField(
        allow_null=True, help_text="From its posting to our first answer; null until answered."
    )
    resolution_seconds = serializers.FloatField(
        allow_null=True, help_text="From its posting to its closing; null until closed."
    )

    class Meta:
        model = InboundItem
        fields = [
            "id",
            "kind",
            "network",
            "account",
            "author",
            "text",
            "url",
            "language",
            "sentiment",
            "sentiment_score",
            "watch_terms",
            "status",
            "assignee",
            "post",
            "target",
            "thread_id",
            "in_reply_to_id",
            "network_id",
            "deleted_upstream",
            "posted_at",
            "received_at",
            "first_response_at",
            "closed_at",
            "response_seconds",
            "resolution_seconds",
        ]

    def get_post(self, item: InboundItem) -> int | None:
        return item.target.post_id if item.target is not None else None


class AssignInput(serializers.Serializer):
    assignee = IdField(allow_null=True, help_text="A person's id; null gives it to nobody.")


class StatusInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=InboundItem.Status.choices)


class ReplyInput(serializers.Serializer):
    body = serializers.CharField(
        max_length=10_000, allow_blank=False, trim_whitespace=False, help_text="The reply's text."
    )
    team = IdField(
        required=False,
        allow_null=True,
        help_text="The team the reply belongs to; by default the account's.",
    )
    media = serializers.ListField(child=IdField(), required=False, default=list)


# Approved responses -----------------------------------------------------------------------------
class Flag(serializers.BooleanField):
    """true or false; absent from a form, not given (DRF's own reads it as false, which would
    withdraw a response whenever a form left it out)."""

    default_empty_html = empty


class ResponseOutput(FastOutput, serializers.ModelSerializer):
    """An approved response: a line a team's leads cleared for answering the public, offered to
    the team and the teams below it."""

    team = serializers.IntegerField(source="team_id", help_text="The team that keeps it.")
    team_name = serializers.CharField(source="team.name")
    active = serializers.BooleanField(help_text="false: withdrawn, offered no more.")
    created_by = serializers.IntegerField(source="created_by_id")

    class Meta:
        model = ApprovedResponse
        fields = [
            "id",
            "team",
            "team_name",
            "title",
            "body",
            "active",
            "created_by",
            "created_at",
            "updated_at",
        ]


class ResponseInput(serializers.Serializer):
    team = IdField(help_text="A team you lead: the response is offered to it and the teams below.")
    title = serializers.CharField(
        max_length=TITLE_MAX, help_text="How drafters find it in a list (spaces are collapsed)."
    )
    body = serializers.CharField(max_length=BODY_MAX, help_text="The words a draft will carry.")


class ResponseUpdateInput(serializers.Serializer):
    """What is given changes; a lead of the response's team."""

    title = serializers.CharField(required=False, max_length=TITLE_MAX)
    body = serializers.CharField(required=False, max_length=BODY_MAX)
    active = Flag(required=False, help_text="false withdraws it; true offers it again.")
