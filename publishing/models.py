"""Posts and what they are made of: targets (one per social account), media and versions."""

import uuid

from django.conf import settings
from django.db import models

from accounts.models import Team
from networks.models import HttpsURLField, SocialAccount


class PostStatus(models.TextChoices):
    # Being written; the author may change anything.
    DRAFT = "draft", "Draft"
    # Submitted; the approval chain is deciding.
    IN_REVIEW = "in_review", "In review"
    # Every stage approved; no time set yet, or waiting to be scheduled.
    APPROVED = "approved", "Approved"
    # Approved with a time: the dispatcher takes it when due.
    SCHEDULED = "scheduled", "Scheduled"
    # Approved after its time had passed (beyond the grace window): needs a new time, which
    # needs no new approval unless the content changes.
    NEEDS_RESCHEDULE = "needs_reschedule", "Needs a new time"
    # Its targets are being published.
    PUBLISHING = "publishing", "Publishing"
    # Every target went out.
    PUBLISHED = "published", "Published"
    # Some targets went out, some failed for good.
    PARTIALLY_PUBLISHED = "partially_published", "Partially published"
    # No target went out.
    FAILED = "failed", "Failed"
    # An approver refused it; terminal (duplicate it to start again).
    REJECTED = "rejected", "Rejected"
    # Withdrawn before publishing; terminal.
    CANCELLED = "cancelled", "Cancelled"


# The one map of allowed post transitions; services check every change against it.
POST_TRANSITIONS: dict[str, frozenset[str]] = {
    PostStatus.DRAFT: frozenset({PostStatus.IN_REVIEW, PostStatus.CANCELLED}),
    PostStatus.IN_REVIEW: frozenset(
        {
            PostStatus.DRAFT,
            PostStatus.APPROVED,
            PostStatus.SCHEDULED,
            PostStatus.NEEDS_RESCHEDULE,
            PostStatus.PUBLISHING,
            PostStatus.REJECTED,
            PostStatus.CANCELLED,
        }
    ),
    PostStatus.APPROVED: frozenset({PostStatus.SCHEDULED, PostStatus.DRAFT, PostStatus.CANCELLED}),
    PostStatus.NEEDS_RESCHEDULE: frozenset(
        {PostStatus.SCHEDULED, PostStatus.DRAFT, PostStatus.CANCELLED}
    ),
    PostStatus.SCHEDULED: frozenset(
        {PostStatus.PUBLISHING, PostStatus.APPROVED, PostStatus.DRAFT, PostStatus.CANCELLED}
    ),
    PostStatus.PUBLISHING: frozenset(
        {
            PostStatus.PUBLISHED,
            PostStatus.PARTIALLY_PUBLISHED,
            PostStatus.FAILED,
            PostStatus.CANCELLED,
        }
    ),
    PostStatus.PUBLISHED: frozenset(),
    # A publication the network confirms late (a send given up for lost that did land) is the
    # truth: only dispatch moves a post on from these, and only towards published.
    PostStatus.PARTIALLY_PUBLISHED: frozenset({PostStatus.PUBLISHED}),
    PostStatus.FAILED: frozenset({PostStatus.PUBLISHED, PostStatus.PARTIALLY_PUBLISHED}),
    PostStatus.REJECTED: frozenset(),
    PostStatus.CANCELLED: frozenset(),
}

# Editing content in these states makes a new version and sends the post back to draft.
EDITABLE_STATUSES = frozenset(
    {
        PostStatus.DRAFT,
        PostStatus.IN_REVIEW,
        PostStatus.APPROVED,
        PostStatus.SCHEDULED,
        PostStatus.NEEDS_RESCHEDULE,
    }
)
# Cancelling a post that is publishing stops what has not gone out yet; what is being sent
# finishes, and what went out stays out.
CANCELLABLE_STATUSES = EDITABLE_STATUSES | {PostStatus.PUBLISHING}


class Media(models.Model):
    """An uploaded image, re-encoded on upload (metadata stripped), with its alt text."""

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="media")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    file = models.FileField(upload_to="media/%Y/%m/")
    thumbnail = models.FileField(upload_to="media/thumbs/%Y/%m/", blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    alt_text = models.TextField(blank=True)
    format = models.CharField(max_length=10)
    mime = models.CharField(max_length=50)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    bytes = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    animated = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "media"

    def __str__(self) -> str:
        return f"{self.original_name or self.sha256[:12]} ({self.width}×{self.height})"


class MediaRendition(models.Model):
    """A version of a media file that fits one network's limits."""

    media = models.ForeignKey(Media, on_delete=models.CASCADE, related_name="renditions")
    channel = models.CharField(max_length=20)
    file = models.FileField(upload_to="media/renditions/%Y/%m/")
    format = models.CharField(max_length=10)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    bytes = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["media", "channel"], name="unique_rendition_per_channel"
            )
        ]

    def __str__(self) -> str:
        return f"{self.media_id} for {self.channel}"


class Post(models.Model):
    """One message for one or more social accounts, with its approval and publishing state."""

    Status = PostStatus

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="posts")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="posts"
    )
    body = models.TextField(blank=True)
    link = HttpsURLField(max_length=2000, blank=True)
    # Stored in UTC; `timezone` is the author's zone, for display and for "9:00 local time".
    scheduled_at = models.DateTimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    status = models.CharField(max_length=30, choices=PostStatus.choices, default=PostStatus.DRAFT)
    version = models.PositiveIntegerField(default=1)
    content_hash = models.CharField(max_length=64)
    tags = models.JSONField(default=list, blank=True)
    campaign = models.CharField(max_length=100, blank=True)
    urgent = models.BooleanField(default=False)
    media = models.ManyToManyField(Media, through="PostMedia", related_name="posts")
    duplicated_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    # The content_hash the approval chain approved: only this content may be published.
    approved_content_hash = models.CharField(max_length=64, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    # An answer to an item of the inbox: its target carries `in_reply_to`, and the approval
    # chain is the one the team's policies set for replies (approvals.routing).
    is_reply = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=PostStatus.values), name="post_status_valid"
            ),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="post_version_min"),
        ]
        indexes = [
            models.Index(fields=["team", "status"]),
            models.Index(fields=["scheduled_at"]),
            models.Index(fields=["status", "scheduled_at"]),
        ]

    def __str__(self) -> str:
        first_line = (self.body or "").strip().splitlines()[0] if self.body.strip() else ""
        return f"#{self.pk} {first_line[:60]}"


class PostMedia(models.Model):
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="post_media")
    media = models.ForeignKey(Media, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["post", "position"], name="unique_media_position"),
            models.UniqueConstraint(fields=["post", "media"], name="unique_media_per_post"),
        ]

    def __str__(self) -> str:
        return f"post {self.post_id} media {self.media_id} @{self.position}"


class TargetStatus(models.TextChoices):
    # The post is not approved yet.
    PENDING = "pending", "Pending"
    # Approved: due at next_attempt_at (its time, or the next retry).
    WAITING = "waiting", "Waiting"
    # Taken by the dispatcher; a publish task is on its way.
    QUEUED = "queued", "Queued"
    # A worker is talking to the network.
    SENDING = "sending", "Sending"
    # On the network: external id and URL stored.
    PUBLISHED = "published", "Published"
    # Failed for good (or after the last retry).
    FAILED = "failed", "Failed"
    # Kept back (freeze, account needs reconnecting); goes out when released.
    HELD = "held", "Held"
    # The post was cancelled.
    CANCELLED = "cancelled", "Cancelled"


class PostTarget(models.Model):
    """One social account of a post, with its own text variant and publishing state."""

    Status = TargetStatus

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="targets")
    social_account = models.ForeignKey(
        SocialAccount, on_delete=models.PROTECT, related_name="targets"
    )
    # Empty: the post's master text.
    body = models.TextField(blank=True)
    status = models.CharField(
        max_length=20, choices=TargetStatus.choices, default=TargetStatus.PENDING
    )
    idempotency_key = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    external_id = models.CharField(max_length=255, blank=True)
    external_url = models.URLField(max_length=2000, blank=True)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # The last try's outcome is unknown (timeout after sending): look before sending again.
    needs_reconcile = models.BooleanField(default=False)
    queued_at = models.DateTimeField(null=True, blank=True)
    sending_started_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Why a held target is held ("freeze", "account"), so a release finds its own.
    held_reason = models.CharField(max_length=20, blank=True)
    # Posts on the network that may be this one (held for a person, "decision"): each
    # {"external_id", "external_url", "text", "created_at", "why"}.
    reconcile_candidates = models.JSONField(default=list, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    # A reply's: the item it answers, as networks.channels.ReplyTo ({"network_id", "thread_id",
    # "raw"}); empty for a post of its own.
    in_reply_to = models.JSONField(default=dict, blank=True)
    # When its engagement is read next (publishing.engagement: often at first, then daily for
    # 30 days); null when not (yet, or any more).
    metrics_next_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["post", "social_account"], name="unique_target_per_account"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=TargetStatus.values), name="target_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            # The inbox finds our post an item answers by its network id (inbox.services).
            models.Index(fields=["social_account", "external_id"]),
        ]

    def __str__(self) -> str:
        return f"post {self.post_id} → {self.social_account_id}"

    @property
    def web_url(self) -> str:
        """external_url when it is a web address: it comes from the network (or from a webhook
        receiver an organisation runs), so anything else (javascript:, data:) is never a link."""
        url = (self.external_url or "").strip()
        return url if url.lower().startswith(("https://", "http://")) else ""

    @property
    def text(self) -> str:
        """What this account will say: its own variant, or the master text."""
        return self.body or self.post.body


class TargetMetrics(models.Model):
    """One reading of a published target's engagement: the network's figures at `at` (None
    where it gives none). Kept as a series, so the post page and the reports chart how a post
    did over time."""

    target = models.ForeignKey(PostTarget, on_delete=models.CASCADE, related_name="metrics")
    at = models.DateTimeField()
    likes = models.PositiveBigIntegerField(null=True, blank=True)
    reposts = models.PositiveBigIntegerField(null=True, blank=True)
    replies = models.PositiveBigIntegerField(null=True, blank=True)
    quotes = models.PositiveBigIntegerField(null=True, blank=True)
    impressions = models.PositiveBigIntegerField(null=True, blank=True)
    clicks = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["target", "at"]
        indexes = [models.Index(fields=["target", "-at"])]

    def __str__(self) -> str:
        return f"metrics of {self.target_id} at {self.at:%Y-%m-%d %H:%M}"


class PublishAttempt(models.Model):
    """One try at one target: when, what happened, what the network said."""

    class Outcome(models.TextChoices):
        PUBLISHED = "published", "Published"
        # Temporary (5xx, 429, network error before sending): tried again later.
        RETRYABLE = "retryable", "Will retry"
        # The network refused for good (4xx, content rules).
        PERMANENT = "permanent", "Refused"
        # Sent but no answer (timeout): reconciled before any retry.
        UNKNOWN = "unknown", "Unknown"
        # The account's token was refused: held until reconnected.
        AUTH_EXPIRED = "auth_expired", "Needs reconnect"
        # Found already published by reconcile.
        RECONCILED = "reconciled", "Found published"
        # Not sent: frozen, content changed, or account not connected.
        SKIPPED = "skipped", "Not sent"
        # Reconcile found posts that may be ours but cannot tell: a person decides.
        AMBIGUOUS = "ambiguous", "Needs a person"

    target = models.ForeignKey(PostTarget, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    retry_after_seconds = models.FloatField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["target", "number"]
        indexes = [models.Index(fields=["outcome", "started_at"])]

    def __str__(self) -> str:
        return f"target {self.target_id} attempt {self.number}: {self.outcome or 'running'}"


class PublishingFreeze(models.Model):
    """Stop publishing: everything, a team subtree, one account, or the posts on a topic (tags
    or campaign) of a team subtree. Held, not lost."""

    class Scope(models.TextChoices):
        EVERYTHING = "everything", "Everything"
        TEAM = "team", "A team and the teams below it"
        ACCOUNT = "account", "One social account"
        TOPIC = "topic", "Posts on a topic (tags or campaign) of a team and the teams below it"

    scope = models.CharField(max_length=20, choices=Scope.choices)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.PROTECT)
    social_account = models.ForeignKey(
        SocialAccount, null=True, blank=True, on_delete=models.PROTECT
    )
    # A topic freeze's topic: posts carrying any of these tags (compared without case or a
    # leading '#') or in this campaign (compared without case); empty for the other scopes.
    tags = models.JSONField(default=list, blank=True)
    campaign = models.CharField(max_length=100, blank=True)
    reason = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    active = models.BooleanField(default=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)
    lift_reason = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(scope="everything", team__isnull=True, social_account__isnull=True)
                    | models.Q(scope="team", team__isnull=False, social_account__isnull=True)
                    | models.Q(scope="account", team__isnull=True, social_account__isnull=False)
                    | models.Q(scope="topic", team__isnull=False, social_account__isnull=True)
                ),
                name="freeze_scope_fields",
            ),
        ]
        indexes = [models.Index(fields=["active", "scope"])]

    def __str__(self) -> str:
        return f"freeze {self.scope} ({'active' if self.active else 'lifted'})"


class SandboxPublication(models.Model):
    """What a sandbox account "published": the demo's feed, and a record for training."""

    social_account = models.ForeignKey(
        SocialAccount, on_delete=models.CASCADE, related_name="sandbox_publications"
    )
    target = models.ForeignKey(PostTarget, null=True, on_delete=models.SET_NULL, related_name="+")
    idempotency_key = models.UUIDField(unique=True)
    text = models.TextField()
    media = models.JSONField(default=list)
    published_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-published_at"]

    def __str__(self) -> str:
        return f"sandbox {self.social_account_id}: {self.text[:40]}"


class PostVersion(models.Model):
    """A snapshot of a post's content at one version: what approvers saw, for diffs."""

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    content = models.JSONField()
    content_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["post", "version"]
        constraints = [
            models.UniqueConstraint(fields=["post", "version"], name="unique_post_version")
        ]

    def __str__(self) -> str:
        return f"post {self.post_id} v{self.version}"


class BannedTerm(models.Model):
    """A word or phrase the organisation does not publish (preflight flags it)."""

    class Severity(models.TextChoices):
        ERROR = "error", "Blocks submission"
        WARNING = "warning", "Warns"

    term = models.CharField(max_length=200)
    # None: the whole organisation; else this team and the teams below it.
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.ERROR)
    reason = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return self.term
