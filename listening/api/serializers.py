"""Listening's API shapes: a watch with its sources, a false claim, an alert, a watch's measures,
and the inputs of their actions. The inputs state the rules for the schema; the services check
them again and name the field they refuse."""

from rest_framework import serializers
from rest_framework.fields import empty

from cxhub.api import IdField
from cxhub.outputs import FastOutput
from inbox.models import Sentiment

from ..forms import web_address
from ..models import Alert, FalseClaim, Hit, Resolution, Source, Watch

# The ranges services._clean enforces, stated here so that the schema says them.
WINDOW_MINUTES = (1, 24 * 60)
BASELINE_HOURS = (1, 24 * 28)
MIN_VOLUME = (1, 1_000_000)
RETENTION_DAYS = (1, 3650)


class Strings(serializers.ListField):
    """A list of strings, as a watch keeps it in a JSON column: written as it is (the items are
    strings already), without DRF's call per item."""

    represents_alone = True  # cxhub.outputs calls to_representation directly

    def __init__(self, **kwargs):
        kwargs.setdefault("child", serializers.CharField(allow_blank=True, trim_whitespace=False))
        super().__init__(**kwargs)

    def to_representation(self, data):
        return list(data)


class Flag(serializers.BooleanField):
    """true or false; absent from a form, not given (DRF's own reads it as false, which would
    turn a watch off whenever a form left it out)."""

    default_empty_html = empty


# Watches --------------------------------------------------------------------------------------
class SourceOutput(FastOutput, serializers.ModelSerializer):
    """One query of the watch on one network, and how its reading goes."""

    last_run_at = serializers.DateTimeField(
        allow_null=True, help_text="When it was last read; null until its first run."
    )
    last_error = serializers.CharField(help_text="Why its last run failed; empty when it did not.")
    next_at = serializers.DateTimeField(help_text="When it is read next.")

    class Meta:
        model = Source
        fields = ["network", "kind", "query", "last_run_at", "last_error", "next_at"]


class WatchOutput(FastOutput, serializers.ModelSerializer):
    """A watch as listed and read, with its open alerts and its sources."""

    team = serializers.IntegerField(source="team_id")
    terms = Strings()
    exclude = Strings()
    hashtags = Strings(help_text="Without their `#`.")
    accounts = Strings(help_text="`handle` (every network) or `network:handle`.")
    languages = Strings(help_text="Language codes; empty: every language.")
    networks = Strings(help_text="Empty: every network that offers public search.")
    listening_since = serializers.DateTimeField(
        allow_null=True, help_text="When it first found a post; null until then."
    )
    topic_tags = Strings(help_text="The tags of the team's own posts on this topic.")
    topic_campaign = serializers.CharField(
        help_text="The campaign of the team's own posts on this topic; empty: none."
    )
    webhook_url = serializers.CharField(
        help_text="Where its alerts are sent, signed (`POST /api/v1/watches/{id}/webhook/` sets "
        "it); empty: none. Its secret is never shown here."
    )
    open_alerts = serializers.IntegerField(
        help_text="Its alerts whose status is `open` (nobody has acknowledged them yet)."
    )
    sources = SourceOutput(
        many=True,
        help_text="What it reads: one query on one network each (none for a sandbox watch or "
        "an inactive one).",
    )

    class Meta:
        model = Watch
        fields = [
            "id",
            "team",
            "name",
            "terms",
            "exclude",
            "hashtags",
            "accounts",
            "languages",
            "networks",
            "window_minutes",
            "baseline_hours",
            "min_volume",
            "retention_days",
            "active",
            "sandbox",
            "listening_since",
            "topic_tags",
            "topic_campaign",
            "webhook_url",
            "created_at",
            "open_alerts",
            "sources",
        ]


_TERMS_RULE = (
    "Words or phrases (any case); at most 1,000 once duplicates are removed, each at most 200 "
    "characters. A watch needs at least one term, hashtag or account."
)
_HASHTAGS_RULE = "Letters, digits and `_`, with or without their `#`; each at most 100 characters."
_ACCOUNTS_RULE = "`handle` (followed on every network) or `network:handle`."
_LANGUAGES_RULE = "Two- or three-letter language codes (`en`, `fr`); empty: every language."
_NETWORKS_RULE = (
    "Networks that offer public search (an unknown one is a 400 naming `networks`); empty: all."
)


class _WatchFields(serializers.Serializer):
    """The fields a lead sets, all optional (what is given changes)."""

    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    terms = Strings(required=False, help_text=_TERMS_RULE)
    exclude = Strings(required=False, help_text="Posts that mention one of these are left out.")
    hashtags = Strings(required=False, help_text=_HASHTAGS_RULE)
    accounts = Strings(required=False, help_text=_ACCOUNTS_RULE)
    languages = Strings(required=False, help_text=_LANGUAGES_RULE)
    networks = Strings(required=False, help_text=_NETWORKS_RULE)
    window_minutes = serializers.IntegerField(
        required=False,
        min_value=WINDOW_MINUTES[0],
        max_value=WINDOW_MINUTES[1],
        help_text="The detectors' window (default 15).",
    )
    baseline_hours = serializers.IntegerField(
        required=False,
        min_value=BASELINE_HOURS[0],
        max_value=BASELINE_HOURS[1],
        help_text="The baseline before the window the detectors compare it with (default 24).",
    )
    min_volume = serializers.IntegerField(
        required=False,
        min_value=MIN_VOLUME[0],
        max_value=MIN_VOLUME[1],
        help_text="Below this many posts in the window nothing is raised (default 10).",
    )
    retention_days = serializers.IntegerField(
        required=False,
        min_value=RETENTION_DAYS[0],
        max_value=RETENTION_DAYS[1],
        help_text="Posts are kept this long, then purged; the figures stay (default 30).",
    )
    topic_tags = Strings(
        required=False,
        help_text="How the team's own posts on this topic are tagged (at most 20, each at most "
        "50 characters): a post drafted from an alert carries them, and freezing the topic holds "
        "the scheduled posts that carry them.",
    )
    topic_campaign = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=100,
        help_text="The campaign of the team's own posts on this topic, used as `topic_tags` are.",
    )
    active = Flag(required=False, help_text="false: the watch is no longer read (default true).")


class WatchInput(_WatchFields):
    team = IdField(help_text="A team you lead: the watch is its and its leads' (and above).")
    name = serializers.CharField(allow_blank=True, max_length=200)
    sandbox = Flag(
        required=False,
        help_text="Read the sandbox's made-up conversation instead of the networks (the demo).",
    )


class WatchUpdateInput(_WatchFields):
    """`team` and `sandbox` are set when the watch is made: refused here."""

    def validate(self, attrs):
        for name in ("team", "sandbox"):
            if name in self.initial_data:
                raise serializers.ValidationError(
                    {name: ["Set when the watch is made; make a new watch instead."]}
                )
        return attrs


class WebhookInput(serializers.Serializer):
    url = serializers.CharField(
        allow_blank=True,
        max_length=500,
        validators=[web_address],
        help_text="Where the watch's alerts are sent, signed: an https address on the public "
        "internet (another is a 400 naming `url`). Empty removes the webhook.",
    )


class WebhookOutput(serializers.Serializer):
    webhook_url = serializers.CharField(help_text="As saved; empty when removed.")
    secret = serializers.CharField(
        help_text="The new signing secret (HMAC-SHA256 of `<timestamp>.<body>`, sent as "
        "`X-Cxhub-Signature`), given in this answer only: keep it now, it is never shown again. "
        "Empty when the webhook was removed."
    )


# False claims ---------------------------------------------------------------------------------
class ClaimOutput(FastOutput, serializers.ModelSerializer):
    """A known false claim of a watch."""

    watch = serializers.IntegerField(source="watch_id")
    terms = Strings()
    created_by = serializers.IntegerField(source="created_by_id")

    class Meta:
        model = FalseClaim
        fields = ["id", "watch", "claim", "terms", "active", "created_by", "created_at"]


class ClaimInput(serializers.Serializer):
    claim = serializers.CharField(
        allow_blank=True, help_text="The false claim, as a lead would state it; at most 2,000."
    )
    terms = Strings(
        help_text="Words or phrases its posts use (at least one, at most 200): a post of the "
        "watch that mentions one is flagged as repeating it."
    )


class ClaimUpdateInput(serializers.Serializer):
    active = Flag(help_text="false: its matches are no longer flagged.")


# Alerts ---------------------------------------------------------------------------------------
class AlertOutput(FastOutput, serializers.ModelSerializer):
    """An alert as listed and read, with its evidence."""

    watch = serializers.IntegerField(source="watch_id")
    watch_name = serializers.CharField(source="watch.name")
    evidence = serializers.JSONField(
        help_text="As it was when raised: `window`, `observed`, the figures of its kind "
        "(`expected`, `ratio`, `p_value`; `negative_share`, `baseline_negative_share`, `z`; "
        "`claim`), `top_posts` and, for spike and sentiment, `baseline` and `top_authors`."
    )
    peak = serializers.JSONField(
        help_text="The strongest finding since: `observed`, `at` (and its `evidence`)."
    )
    claim = serializers.IntegerField(
        source="claim_id", allow_null=True, help_text="The false claim (false_claim alerts)."
    )
    acknowledged_by = serializers.IntegerField(source="acknowledged_by_id", allow_null=True)
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    closed_by = serializers.IntegerField(source="closed_by_id", allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        model = Alert
        fields = [
            "id",
            "watch",
            "watch_name",
            "kind",
            "status",
            "window_start",
            "window_end",
            "evidence",
            "peak",
            "claim",
            "raised_at",
            "acknowledged_by",
            "acknowledged_at",
            "closed_by",
            "closed_at",
            "close_note",
        ]


class AlertFreezeInput(serializers.Serializer):
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=1500,
        help_text="Why, besides the alert (which the freeze's reason names).",
    )


class AlertCloseInput(serializers.Serializer):
    note = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        help_text="What was done; kept to its first 2,000 characters.",
    )


class AlertDraftInput(serializers.Serializer):
    response = IdField(
        help_text="One of the approved responses offered to the watch's team "
        "(`GET /api/v1/responses/?team=`): the post carries its words."
    )
    accounts = serializers.ListField(
        child=IdField(),
        max_length=100,
        help_text="Our social accounts the post goes to: ones you draft for (at least one).",
    )


class AlertReplyInput(serializers.Serializer):
    post = IdField(help_text="A public post of the watch (an `id` of the evidence's `top_posts`).")
    account = IdField(
        help_text="Our account that answers: on the post's network (on Mastodon, on the server "
        "that read the post), one you draft for."
    )
    response = IdField(
        required=False,
        allow_null=True,
        help_text="An approved response offered to the watch's team, whose words the reply "
        "carries; or give `body`.",
    )
    body = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=10_000,
        trim_whitespace=False,
        help_text="The reply in your words, when no `response` is given.",
    )

    def validate(self, attrs):
        if attrs.get("response") is not None and (attrs.get("body") or "").strip():
            raise serializers.ValidationError(
                {"body": ["Give an approved response or a body, not both."]}
            )
        return attrs


# Measures -------------------------------------------------------------------------------------
class BucketOutput(serializers.Serializer):
    start = serializers.DateTimeField()
    volume = serializers.IntegerField(help_text="Posts.")
    positive = serializers.IntegerField()
    neutral = serializers.IntegerField()
    negative = serializers.IntegerField()
    not_scored = serializers.IntegerField()
    authors = serializers.IntegerField(help_text="Distinct authors.")
    new_authors = serializers.IntegerField(help_text="Authors the watch had not seen before.")
    languages = serializers.DictField(
        child=serializers.IntegerField(),
        help_text='Posts per language code ("" for undetermined).',
    )

    def to_representation(self, instance):
        # A row of measures.series holds these keys, in this order, already as JSON writes
        # them but for `start`: written as DRF would, without its toll per field (a chart may
        # ask for 2,000 rows).
        return {**instance, "start": self.fields["start"].to_representation(instance["start"])}


class TopPostOutput(FastOutput, serializers.ModelSerializer):
    """One of the most shared public posts of the range."""

    id = serializers.IntegerField(source="post_id", help_text="The public post's id.")
    network = serializers.CharField(source="post.network")
    url = serializers.CharField(source="post.url")
    author = serializers.CharField(source="post.author_handle")
    text = serializers.CharField(source="post.text")
    posted_at = serializers.DateTimeField(source="post.posted_at")
    likes = serializers.IntegerField(source="post.likes", allow_null=True)
    reposts = serializers.IntegerField(source="post.reposts", allow_null=True)
    sentiment = serializers.ChoiceField(source="post.sentiment", choices=Sentiment.choices)
    language = serializers.CharField(source="post.language")

    class Meta:
        model = Hit
        fields = [
            "id",
            "network",
            "url",
            "author",
            "text",
            "posted_at",
            "likes",
            "reposts",
            "sentiment",
            "language",
        ]


class TopAuthorOutput(serializers.Serializer):
    author = serializers.CharField(source="author_key", help_text="`network:handle`.")
    posts = serializers.IntegerField()


class AlertMarkOutput(FastOutput, serializers.ModelSerializer):
    """An alert to mark on a chart (the whole of it: `GET /api/v1/alerts/{id}/`)."""

    class Meta:
        model = Alert
        fields = ["id", "kind", "status", "window_start", "window_end"]


class MeasuresOutput(serializers.Serializer):
    watch = serializers.IntegerField()
    resolution = serializers.ChoiceField(choices=Resolution.choices)
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    buckets = BucketOutput(
        many=True,
        help_text="One per minute, hour or day (UTC) that starts from `since` and before "
        "`until`, empty ones included.",
    )
    top_posts = TopPostOutput(many=True, help_text="The most reposted, then liked (at most 5).")
    top_authors = TopAuthorOutput(many=True, help_text="The most posts (at most 5).")
    alerts = AlertMarkOutput(
        many=True, help_text="The watch's alerts whose window overlaps the range."
    )
