"""Listening's records: what a team watches (`Watch`, with its known false claims), where each
watch reads (`Source`: one query on one network, with its cursor), what it found (`PublicPost`,
once per network; `Hit`, once per watch), its figures over time (`Measure`, per minute, hour
and day), and the alerts its detectors raised (`Alert`)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Team
from inbox.models import Sentiment
from networks.models import SocialAccount


class Resolution(models.TextChoices):
    MINUTE = "minute", "Minute"
    HOUR = "hour", "Hour"
    DAY = "day", "Day"


class AlertKind(models.TextChoices):
    # Far more posts in the window than the recent baseline leads one to expect.
    SPIKE = "spike", "Spike in volume"
    # The share of negative posts rose well above the baseline's.
    SENTIMENT = "sentiment", "Shift to negative sentiment"
    # Posts repeat a false claim a lead named.
    FALSE_CLAIM = "false_claim", "Known false claim"


class AlertStatus(models.TextChoices):
    # Raised, and nobody has said they are on it.
    OPEN = "open", "Open"
    # A person is on it.
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    # Dealt with; a new surge raises a new alert.
    CLOSED = "closed", "Closed"


# Which status may follow which (services.alert_acknowledge, alert_close).
ALERT_TRANSITIONS: dict[str, frozenset[str]] = {
    AlertStatus.OPEN: frozenset({AlertStatus.ACKNOWLEDGED, AlertStatus.CLOSED}),
    AlertStatus.ACKNOWLEDGED: frozenset({AlertStatus.CLOSED}),
    AlertStatus.CLOSED: frozenset(),
}


class Watch(models.Model):
    """A topic a team listens for: posts that mention any of `terms` or carry any of `hashtags`,
    or are written by any of `accounts`, unless they mention one of `exclude`; in `languages`
    only, when any are given; on `networks` only, when any are given (else on every network
    that offers public search). Its detectors compare the last `window_minutes` with the
    `baseline_hours` before them and stay quiet below `min_volume` posts."""

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="watches")
    name = models.CharField(max_length=200)
    terms = models.JSONField(default=list, blank=True)
    exclude = models.JSONField(default=list, blank=True)
    hashtags = models.JSONField(default=list, blank=True)
    accounts = models.JSONField(default=list, blank=True)
    languages = models.JSONField(default=list, blank=True)
    networks = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)
    # Reads the sandbox's made-up public conversation instead of the networks (the demo, and
    # training): it has no sources.
    sandbox = models.BooleanField(default=False)
    window_minutes = models.PositiveIntegerField(default=15)
    baseline_hours = models.PositiveIntegerField(default=24)
    min_volume = models.PositiveIntegerField(default=10)
    # Collected posts (and their matches) are kept this many days, then purged; the figures
    # stay, per minute for as long, then per hour and per day (services.watch_purge).
    retention_days = models.PositiveIntegerField(default=30)
    # When the watch first read its networks: the baseline starts here (what the first page
    # brought from before is not a baseline), and the demo's history sets it back.
    listening_since = models.DateTimeField(null=True, blank=True)
    # How the team's own posts on this topic are marked (their tags, their campaign): a post
    # drafted from an alert carries them, and an alert's "freeze posts on this topic" holds the
    # scheduled posts that carry them.
    topic_tags = models.JSONField(default=list, blank=True)
    topic_campaign = models.CharField(max_length=100, blank=True)
    # The agency's chat tool (or any HTTPS endpoint) told of each alert raised, signed with the
    # secret (encrypted at rest as the networks' tokens are; webhooks.py).
    webhook_url = models.URLField(max_length=500, blank=True)
    webhook_secret_encrypted = models.TextField(blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["team", "active"])]

    def __str__(self) -> str:
        return self.name


class FalseClaim(models.Model):
    """A false claim a lead wants flagged: any post of the watch that mentions one of `terms` is
    marked as repeating it, and raises an alert."""

    watch = models.ForeignKey(Watch, on_delete=models.CASCADE, related_name="claims")
    claim = models.TextField()
    terms = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.claim[:80]


class Source(models.Model):
    """One query of one watch on one network (a term, a hashtag, an account followed), with the
    network's cursor and when to read it next."""

    class Kind(models.TextChoices):
        SEARCH = "search", "Search"
        HASHTAG = "hashtag", "Hashtag"
        ACCOUNT = "account", "Account"

    watch = models.ForeignKey(Watch, on_delete=models.CASCADE, related_name="sources")
    network = models.CharField(max_length=30)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    query = models.CharField(max_length=500)
    cursor = models.TextField(blank=True)
    next_at = models.DateTimeField(db_index=True)
    interval_seconds = models.PositiveIntegerField(default=60)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    failures = models.PositiveIntegerField(default=0)
    posts_total = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["watch", "network", "kind", "query"]
        constraints = [
            models.UniqueConstraint(
                fields=["watch", "network", "kind", "query"], name="listening_source_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.network} {self.kind} {self.query!r}"


class PublicPost(models.Model):
    """One public post a watch found, kept once per network (several watches may find it), with
    its signals and the figures it showed when last read. Purged after its watches' retention."""

    network = models.CharField(max_length=30)
    network_id = models.CharField(max_length=500)
    author_handle = models.CharField(max_length=300)
    author_name = models.CharField(max_length=300, blank=True)
    author_id = models.CharField(max_length=300, blank=True)
    text = models.TextField()
    url = models.URLField(max_length=1000, blank=True)
    posted_at = models.DateTimeField()
    language = models.CharField(max_length=16, blank=True)
    declared_language = models.CharField(max_length=16, blank=True)
    sentiment = models.CharField(max_length=10, choices=Sentiment.choices)
    sentiment_score = models.FloatField(null=True, blank=True)
    likes = models.PositiveIntegerField(null=True, blank=True)
    reposts = models.PositiveIntegerField(null=True, blank=True)
    replies = models.PositiveIntegerField(null=True, blank=True)
    quotes = models.PositiveIntegerField(null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    # The account whose credentials read it: a Mastodon id is its server's, so a reply to the
    # post goes from an account on that server.
    read_via = models.ForeignKey(
        SocialAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    collected_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["network", "network_id"], name="public_post_unique")
        ]

    def __str__(self) -> str:
        return f"{self.network} {self.author_handle}: {self.text[:40]}"


class Hit(models.Model):
    """A post found by a watch: once per watch and post, with what it matched and, copied from
    the post for the figures, its time, author, language and sentiment."""

    watch = models.ForeignKey(Watch, on_delete=models.CASCADE, related_name="hits")
    post = models.ForeignKey(PublicPost, on_delete=models.CASCADE, related_name="hits")
    at = models.DateTimeField()
    author_key = models.CharField(max_length=340)
    language = models.CharField(max_length=16, blank=True)
    sentiment = models.CharField(max_length=10, choices=Sentiment.choices)
    terms = models.JSONField(default=list, blank=True)
    # The known false claims the post repeats (their ids); empty for most.
    claims = models.JSONField(default=list, blank=True)
    found_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["watch", "post"], name="hit_unique")]
        indexes = [
            models.Index(fields=["watch", "at"]),
            models.Index(fields=["watch", "author_key", "at"]),
        ]

    def __str__(self) -> str:
        return f"watch {self.watch_id} post {self.post_id}"


class WatchAuthor(models.Model):
    """When a watch first saw an author: "new authors" per bucket, kept after posts are purged."""

    watch = models.ForeignKey(Watch, on_delete=models.CASCADE, related_name="+")
    author_key = models.CharField(max_length=340)
    first_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["watch", "author_key"], name="watch_author_unique")
        ]
        indexes = [models.Index(fields=["watch", "first_at"])]

    def __str__(self) -> str:
        return f"watch {self.watch_id} first saw {self.author_key}"


class Measure(models.Model):
    """A watch's figures for one minute, hour or day (from `start`): counted again from its hits
    whenever a hit lands in it, so a page stored twice counts once; kept after the hits are
    purged (minutes rolled up into hours and days first)."""

    watch = models.ForeignKey(Watch, on_delete=models.CASCADE, related_name="measures")
    resolution = models.CharField(max_length=6, choices=Resolution.choices)
    start = models.DateTimeField()
    volume = models.PositiveIntegerField(default=0)
    positive = models.PositiveIntegerField(default=0)
    neutral = models.PositiveIntegerField(default=0)
    negative = models.PositiveIntegerField(default=0)
    not_scored = models.PositiveIntegerField(default=0)
    authors = models.PositiveIntegerField(default=0)
    new_authors = models.PositiveIntegerField(default=0)
    # Posts per language code ("" for undetermined).
    languages = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["watch", "resolution", "start"]
        constraints = [
            models.UniqueConstraint(fields=["watch", "resolution", "start"], name="measure_unique")
        ]

    def __str__(self) -> str:
        return f"watch {self.watch_id} {self.resolution} {self.start:%Y-%m-%d %H:%M}: {self.volume}"


class Alert(models.Model):
    """What a detector raised for a watch: its kind, the window it saw, the evidence (figures,
    baseline, top posts) as it was when raised, and the peak since; acknowledged and closed by a
    person. A watch has at most one alert not closed per kind (and per claim)."""

    Kind = AlertKind
    Status = AlertStatus

    watch = models.ForeignKey(Watch, on_delete=models.PROTECT, related_name="alerts")
    kind = models.CharField(max_length=12, choices=AlertKind.choices)
    claim = models.ForeignKey(
        FalseClaim, null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )
    # kind, or kind:claim id: the key of "one not closed at a time".
    key = models.CharField(max_length=40)
    status = models.CharField(max_length=12, choices=AlertStatus.choices, default="open")
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    evidence = models.JSONField(default=dict)
    peak = models.JSONField(default=dict, blank=True)
    raised_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    close_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["watch", "key"],
                condition=~Q(status="closed"),
                name="alert_one_not_closed_per_key",
            )
        ]
        indexes = [models.Index(fields=["watch", "status"])]

    def __str__(self) -> str:
        return f"{self.kind} alert on watch {self.watch_id} ({self.status})"


class AlertDelivery(models.Model):
    """One alert's message to its watch's webhook: written with the alert (an outbox), sent by a
    task, tried again with a growing wait until the endpoint takes it or the tries run out. The
    key goes with every try (Idempotency-Key): the receiver keeps each key once."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    url = models.URLField(max_length=500)
    key = models.UUIDField(unique=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_at = models.DateTimeField(db_index=True)
    last_status = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["status", "next_at"])]

    def __str__(self) -> str:
        return f"alert {self.alert_id} to {self.url} ({self.status})"
