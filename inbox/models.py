"""What came back from the networks: one row per reply, mention, comment or message
(`InboundItem`, deduplicated by account and network id, never deleted by ingestion), and each
account's place in its network's stream (`IngestState`: the cursor, when to look next)."""

from django.conf import settings
from django.db import models

from accounts.models import Team
from networks.models import SocialAccount
from publishing.models import PostTarget


class ItemKind(models.TextChoices):
    # Answers a post of ours (or of the account).
    REPLY = "reply", "Reply"
    # Names the account in a post of someone else's (a quote too).
    MENTION = "mention", "Mention"
    # A comment on one of our posts (Facebook, Instagram, LinkedIn).
    COMMENT = "comment", "Comment"
    # A direct or private message, where the network gives them.
    MESSAGE = "message", "Message"


class ItemStatus(models.TextChoices):
    # Nobody has dealt with it yet.
    OPEN = "open", "Open"
    # Someone is on it, waiting for an answer (from a colleague, an approval, the author).
    WAITING = "waiting", "Waiting"
    # Dealt with: answered, or nothing to answer.
    CLOSED = "closed", "Closed"


# Which status may follow which (services.item_set_status); anything else is InvalidTransition.
ITEM_TRANSITIONS: dict[str, frozenset[str]] = {
    ItemStatus.OPEN: frozenset({ItemStatus.WAITING, ItemStatus.CLOSED}),
    ItemStatus.WAITING: frozenset({ItemStatus.OPEN, ItemStatus.CLOSED}),
    ItemStatus.CLOSED: frozenset({ItemStatus.OPEN}),
}


class Sentiment(models.TextChoices):
    POSITIVE = "positive", "Positive"
    NEUTRAL = "neutral", "Neutral"
    NEGATIVE = "negative", "Negative"
    # No analyser reads its language: never guessed.
    NOT_SCORED = "not_scored", "Not scored"


class InboundItem(models.Model):
    """One reply, mention, comment or message that came to one of our accounts."""

    Kind = ItemKind
    Status = ItemStatus

    account = models.ForeignKey(
        SocialAccount, on_delete=models.PROTECT, related_name="inbound_items"
    )
    # The network's own id (a Mastodon status id, a Bluesky at:// URI); the sandbox's start
    # with "sandbox:".
    network_id = models.CharField(max_length=500)
    kind = models.CharField(max_length=10, choices=ItemKind.choices)
    author_handle = models.CharField(max_length=300)
    author_name = models.CharField(max_length=300, blank=True)
    author_id = models.CharField(max_length=300, blank=True)
    text = models.TextField(blank=True)
    url = models.URLField(max_length=2000, blank=True)
    # When its author posted it (the network's time), and when cxhub first read it.
    posted_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    # The network's ids of the conversation's root and of the post it answers ("" none).
    thread_id = models.CharField(max_length=500, blank=True)
    in_reply_to_id = models.CharField(max_length=500, blank=True)
    # Our published target it answers (or whose conversation it is in), when it is one of ours.
    target = models.ForeignKey(
        PostTarget, null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound_items"
    )
    # ISO 639-1 ("en"), "" when unknown; declared_language is what the author or network said.
    language = models.CharField(max_length=8, blank=True)
    declared_language = models.CharField(max_length=16, blank=True)
    sentiment = models.CharField(
        max_length=12, choices=Sentiment.choices, default=Sentiment.NOT_SCORED
    )
    # The analyser's compound score, -1 (most negative) to 1; None when not scored.
    sentiment_score = models.FloatField(null=True, blank=True)
    # The item as the network gave it.
    raw = models.JSONField(default=dict, blank=True)
    # The network says it was deleted or hidden since cxhub read it: kept, marked.
    # The watch terms of the account's team (and the teams above) the item mentions, as the
    # watches wrote them (listening, through hooks.watch_terms); empty when none.
    watch_terms = models.JSONField(default=list, blank=True)
    deleted_upstream = models.BooleanField(default=False)
    # When the network was last asked whether it still has the item (inbox/recheck.py).
    checked_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=ItemStatus.choices, default=ItemStatus.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="inbound_items",
    )
    # First answer from us (our reply published), and when it was closed (the last time).
    first_response_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-posted_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "network_id"], name="inbound_item_once_per_account"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=ItemKind.values), name="inbound_item_kind_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=ItemStatus.values),
                name="inbound_item_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(sentiment__in=Sentiment.values),
                name="inbound_item_sentiment_valid",
            ),
            # A closed item has its closing time; an open or waiting one none.
            models.CheckConstraint(
                condition=models.Q(status=ItemStatus.CLOSED, closed_at__isnull=False)
                | (~models.Q(status=ItemStatus.CLOSED) & models.Q(closed_at__isnull=True)),
                name="inbound_item_closed_at_with_status",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "-posted_at"]),
            models.Index(fields=["status", "-posted_at"]),
            models.Index(fields=["assignee", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} from {self.author_handle} on {self.account_id}"

    @property
    def response_seconds(self) -> float | None:
        """From its posting to our first answer; None until we answered."""
        if self.first_response_at is None:
            return None
        return max(0.0, (self.first_response_at - self.posted_at).total_seconds())

    @property
    def resolution_seconds(self) -> float | None:
        """From its posting to its closing; None while it is open or waiting."""
        if self.closed_at is None:
            return None
        return max(0.0, (self.closed_at - self.posted_at).total_seconds())


class IngestState(models.Model):
    """Where one account's reading of its network stands. `next_at` is when the ingestion
    dispatcher takes it again; the interval shrinks while items keep coming and grows while none
    do (ingestion.next_interval)."""

    account = models.OneToOneField(
        SocialAccount, on_delete=models.CASCADE, related_name="ingest_state"
    )
    # The channel's own cursor (networks.channels.base.InboundPage.cursor), opaque here.
    cursor = models.TextField(blank=True)
    next_at = models.DateTimeField(db_index=True)
    interval_seconds = models.PositiveIntegerField()
    last_run_at = models.DateTimeField(null=True, blank=True)
    # The last run that found something new.
    last_new_at = models.DateTimeField(null=True, blank=True)
    # The last run's failure ("" after a good run), and how many runs in a row failed.
    last_error = models.TextField(blank=True)
    failures = models.PositiveIntegerField(default=0)
    items_total = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"ingestion of {self.account_id}, next at {self.next_at:%Y-%m-%d %H:%M:%S}"


class ItemTag(models.Model):
    """A label a person put on an item ("complaint", "press", "census-scam"), for filters and
    bulk triage. A tag is its name: no separate list to manage."""

    item = models.ForeignKey(InboundItem, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=50)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["item", "name"], name="item_tag_once"),
            models.CheckConstraint(condition=~models.Q(name=""), name="item_tag_not_empty"),
        ]
        indexes = [models.Index(fields=["name"])]

    def __str__(self) -> str:
        return self.name


class ItemNote(models.Model):
    """An internal note on an item: seen by the team, never sent to the network."""

    item = models.ForeignKey(InboundItem, on_delete=models.PROTECT, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"note on {self.item_id}"


class ApprovedResponse(models.Model):
    """A line the agency has cleared for answering the public ("We never ask for bank details by
    text…"): kept by a team's leads, offered to its team and the teams below it when a reply or
    a post is drafted from an inbox item or an alert. A draft made from it still goes through
    the usual approvals."""

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="approved_responses")
    title = models.CharField(max_length=200)
    body = models.TextField()
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title", "id"]
        indexes = [models.Index(fields=["team", "active"])]

    def __str__(self) -> str:
        return self.title
