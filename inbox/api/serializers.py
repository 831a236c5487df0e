"""The inbox's API shapes: an item as listed and read, and the inputs of its actions."""

from rest_framework import serializers

from cxhub.api import IdField
from cxhub.outputs import FastOutput

from ..models import InboundItem


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
