"""Input and output shapes of the posts and media API (one serializer per purpose)."""

from datetime import datetime

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cxhub.api import IdField
from cxhub.outputs import FastOutput
from networks.models import Channel

from .. import services
from ..media_services import MAX_ALT_TEXT
from ..models import Media, Post, PostStatus, PostTarget


@extend_schema_field(OpenApiTypes.DATETIME)
class OffsetDateTimeField(serializers.Field):
    """An ISO 8601 time that must carry its UTC offset (or Z): a bare local time is ambiguous."""

    represents_alone = True  # to_representation depends on the value alone (cxhub.outputs)

    default_error_messages = {
        "invalid": "Give a time like 2026-03-29T09:00:00+02:00 (ISO 8601 with its UTC offset).",
        "naive": "Include the UTC offset (e.g. +02:00 or Z).",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            moment = datetime.fromisoformat(data.strip())
        except ValueError:
            self.fail("invalid")
        if moment.tzinfo is None:
            self.fail("naive")
        return moment

    def to_representation(self, value):
        return value.isoformat() if value else None


# Rules the services enforce, stated in the schema (a 400 naming the field when broken).
_BODY_RULE = (
    "The text. It may be blank only when every target has its own text "
    f"(at most {services.MAX_BODY:,} characters)."
)
_LINK_RULE = "A full http:// or https:// address, or blank."
_TARGETS_RULE = "At least one: accounts you may draft for, each listed once."
_MEDIA_RULE = (
    f"Ids of images you may use, each once (at most {services.MAX_MEDIA}); every image needs "
    "alt text before the post can be submitted."
)
_SCHEDULE_RULE = "When to publish, with its UTC offset; null or absent for no time yet."
_TIMEZONE_RULE = "An IANA time zone name (Europe/Paris), used to show and reschedule the time."
_TAGS_RULE = (
    f"At most {services.MAX_TAGS} tags of at most {services.MAX_TAG_LENGTH} characters; "
    "a leading # is dropped, blanks and repeats are ignored."
)
_CAMPAIGN_RULE = "Free text; trimmed and cut at 100 characters."


class TargetInput(serializers.Serializer):
    social_account = IdField(help_text="An account you may draft for.")
    body = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        default="",
        max_length=services.MAX_BODY,
        help_text="This account's own text; blank: the post's text.",
    )


class PostInput(serializers.Serializer):
    team = IdField(help_text="A team you draft for.")
    body = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        default="",
        max_length=services.MAX_BODY,
        help_text=_BODY_RULE,
    )
    link = serializers.CharField(required=False, allow_blank=True, default="", help_text=_LINK_RULE)
    targets = TargetInput(many=True, help_text=_TARGETS_RULE)
    media = serializers.ListField(
        child=IdField(),
        required=False,
        default=list,
        max_length=services.MAX_MEDIA,
        help_text=_MEDIA_RULE,
    )
    scheduled_at = OffsetDateTimeField(
        required=False, allow_null=True, default=None, help_text=_SCHEDULE_RULE
    )
    timezone = serializers.CharField(required=False, default="UTC", help_text=_TIMEZONE_RULE)
    tags = serializers.ListField(
        child=serializers.CharField(), required=False, default=list, help_text=_TAGS_RULE
    )
    campaign = serializers.CharField(
        required=False, allow_blank=True, default="", help_text=_CAMPAIGN_RULE
    )
    urgent = serializers.BooleanField(required=False, default=False)


class PostUpdateInput(serializers.Serializer):
    """Every field optional: what is given changes (PATCH and PUT alike). `team` is refused: a
    post cannot move to another team."""

    body = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=services.MAX_BODY,
        help_text=_BODY_RULE,
    )
    link = serializers.CharField(required=False, allow_blank=True, help_text=_LINK_RULE)
    targets = TargetInput(many=True, required=False, help_text=_TARGETS_RULE)
    media = serializers.ListField(
        child=IdField(), required=False, max_length=services.MAX_MEDIA, help_text=_MEDIA_RULE
    )
    scheduled_at = OffsetDateTimeField(required=False, allow_null=True, help_text=_SCHEDULE_RULE)
    timezone = serializers.CharField(required=False, help_text=_TIMEZONE_RULE)
    tags = serializers.ListField(
        child=serializers.CharField(), required=False, help_text=_TAGS_RULE
    )
    campaign = serializers.CharField(required=False, allow_blank=True, help_text=_CAMPAIGN_RULE)
    urgent = serializers.BooleanField(required=False)

    def validate(self, attrs):
        if "team" in self.initial_data:
            raise serializers.ValidationError(
                {"team": ["A post cannot move to another team; duplicate it instead."]}
            )
        return attrs


class CancelInput(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)


class TargetDecideInput(serializers.Serializer):
    """A person's word on a target held because reconcile could not tell whether it went out:
    `published` (with the candidate's `external_id`), `send_again`, or `give_up`."""

    decision = serializers.ChoiceField(choices=["published", "send_again", "give_up"])
    external_id = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=255
    )


class TargetOutput(FastOutput, serializers.ModelSerializer):
    handle = serializers.CharField(source="social_account.handle")
    channel = serializers.ChoiceField(choices=Channel.choices, source="social_account.channel")
    in_reply_to = serializers.SerializerMethodField(
        help_text="A reply's: the network's id of the item it answers; null for a post."
    )

    class Meta:
        model = PostTarget
        fields = [
            "id",
            "social_account",
            "handle",
            "channel",
            "body",
            "status",
            "external_id",
            "external_url",
            "attempt_count",
            "last_error",
            "published_at",
            "held_reason",
            "reconcile_candidates",
            "in_reply_to",
        ]

    def get_in_reply_to(self, target: PostTarget) -> str | None:
        return (target.in_reply_to or {}).get("network_id") or None


class PostOutput(FastOutput, serializers.ModelSerializer):
    targets = TargetOutput(many=True)
    media = serializers.SerializerMethodField()
    scheduled_at = OffsetDateTimeField(
        allow_null=True, help_text="When the post goes out; null while it has no time."
    )
    status_label = serializers.SerializerMethodField()

    class Meta:
        model = Post
        fields = [
            "id",
            "team",
            "author",
            "status",
            "status_label",
            "version",
            "content_hash",
            "body",
            "link",
            "targets",
            "media",
            "scheduled_at",
            "timezone",
            "tags",
            "campaign",
            "urgent",
            "is_reply",
            "submitted_at",
            "created_at",
            "updated_at",
        ]

    def get_media(self, post: Post) -> list[int]:
        ids = getattr(post, "media_ids", None)  # a page's (selectors.fill_listing)
        if ids is None:
            ids = [item.media_id for item in post.post_media.all()]
        return ids

    def get_status_label(self, post: Post) -> str:
        return PostStatus(post.status).label


class FindingOutput(serializers.Serializer):
    code = serializers.CharField()
    severity = serializers.ChoiceField(choices=["error", "warning"])
    message = serializers.CharField()
    field = serializers.CharField()
    social_account = serializers.IntegerField(allow_null=True)
    channel = serializers.CharField(allow_null=True)


class PreflightOutput(serializers.Serializer):
    ok = serializers.BooleanField()
    problems = FindingOutput(many=True)


class MediaUploadInput(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=True,
        help_text="A JPEG, PNG, WebP or GIF within the site's size and pixel limits (a larger "
        "body is a 413); it is re-encoded without its metadata.",
    )
    alt_text = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=MAX_ALT_TEXT,
        help_text="What the image shows, for people who cannot see it. Required (not blank) "
        "unless the site turns CXHUB_REQUIRE_ALT_TEXT off: a 400 naming alt_text.",
    )
    team = IdField(
        required=False, help_text="A team you draft for; absent: the first of your teams."
    )


class MediaOutput(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    renditions = serializers.SerializerMethodField()

    class Meta:
        model = Media
        fields = [
            "id",
            "team",
            "url",
            "thumbnail_url",
            "width",
            "height",
            "bytes",
            "format",
            "sha256",
            "alt_text",
            "animated",
            "renditions",
            "created_at",
        ]

    def _absolute(self, media: Media, kind: str) -> str:
        # Served through a view that checks the reader's scope, never as public files.
        url = reverse("media-file", kwargs={"media_id": media.pk, "kind": kind})
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url

    def get_url(self, media: Media) -> str:
        return self._absolute(media, "original")

    def get_thumbnail_url(self, media: Media) -> str | None:
        return self._absolute(media, "thumbnail") if media.thumbnail else None

    def get_renditions(self, media: Media) -> list[dict]:
        return [
            {"channel": r.channel, "width": r.width, "height": r.height, "bytes": r.bytes}
            for r in media.renditions.all()
        ]


class ReadingOutput(serializers.Serializer):
    at = serializers.DateTimeField()
    likes = serializers.IntegerField(allow_null=True)
    reposts = serializers.IntegerField(allow_null=True, help_text="Reposts, boosts, shares.")
    replies = serializers.IntegerField(allow_null=True)
    quotes = serializers.IntegerField(allow_null=True)
    impressions = serializers.IntegerField(
        allow_null=True, help_text="null where the network does not give it."
    )
    clicks = serializers.IntegerField(allow_null=True)


class TargetMetricsOutput(serializers.Serializer):
    target = serializers.IntegerField(source="target.pk")
    social_account = serializers.IntegerField(source="target.social_account_id")
    handle = serializers.CharField(source="target.social_account.handle")
    channel = serializers.ChoiceField(
        choices=Channel.choices, source="target.social_account.channel"
    )
    external_url = serializers.CharField(source="target.external_url")
    published_at = serializers.DateTimeField(source="target.published_at", allow_null=True)
    next_reading_at = serializers.DateTimeField(
        source="target.metrics_next_at",
        allow_null=True,
        help_text="When the figures are read next; null when they no longer are.",
    )
    latest = ReadingOutput(allow_null=True)
    series = ReadingOutput(many=True, help_text="Every reading, oldest first.")


class PostMetricsOutput(serializers.Serializer):
    post = serializers.IntegerField()
    targets = TargetMetricsOutput(many=True)
