"""Approval chains: policies with ordered stages (the definition), and requests with steps and
decisions (the runtime copy made at submit, which later policy edits never touch)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Role, Team
from networks.models import SocialAccount


class Rule(models.TextChoices):
    ANY = "any", "Any one of them"
    ALL = "all", "All of them"
    QUORUM = "quorum", "A quorum of them"


class ApprovalPolicy(models.Model):
    """Applies to a team (and the teams below it, until a lower team has its own) or to one
    social account (its stages are added to the chain of every post that targets it)."""

    name = models.CharField(max_length=200)
    team = models.OneToOneField(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="approval_policy"
    )
    social_account = models.OneToOneField(
        SocialAccount,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="approval_policy",
    )
    # When set, a new time for an approved post needs a new approval too.
    schedule_changes_need_approval = models.BooleanField(default=False)
    # Replies to the inbox's items (posts with is_reply): False, they need no approval under this
    # policy (the team trusts its drafters to answer); True, the stages marked for_replies apply.
    replies_need_approval = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "approval policies"
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(team__isnull=False, social_account__isnull=True)
                    | Q(team__isnull=True, social_account__isnull=False)
                ),
                name="policy_for_team_xor_account",
            )
        ]

    def __str__(self) -> str:
        return self.name


class ApprovalStage(models.Model):
    """Who decides (a team and a role, or named people), by which rule, within what time."""

    policy = models.ForeignKey(ApprovalPolicy, on_delete=models.CASCADE, related_name="stages")
    order = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=200)
    decider_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decider_role = models.CharField(max_length=20, choices=Role.choices, blank=True)
    named_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    rule = models.CharField(max_length=10, choices=Rule.choices, default=Rule.ANY)
    quorum = models.PositiveSmallIntegerField(null=True, blank=True)
    sla_hours = models.PositiveIntegerField(default=24)
    escalate_to_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    escalate_to_role = models.CharField(max_length=20, choices=Role.choices, blank=True)
    # Whether replies go through this stage too: a lighter chain for replies leaves out the
    # stages they need not pass (routing.plan_chain).
    for_replies = models.BooleanField(default=True)

    class Meta:
        ordering = ["policy", "order"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "order"], name="unique_stage_order"),
            models.CheckConstraint(
                condition=~Q(rule="quorum") | Q(quorum__gte=1), name="stage_quorum_given"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy}: {self.order}. {self.name}"


class RequestStatus(models.TextChoices):
    # Decisions are being collected.
    OPEN = "open", "Open"
    # Every step approved (or a lead used break-glass).
    APPROVED = "approved", "Approved"
    # A decider asked for changes: the post went back to draft.
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    # A decider rejected the post.
    REJECTED = "rejected", "Rejected"
    # The post was edited or cancelled: decisions no longer count.
    SUPERSEDED = "superseded", "Superseded"


class ApprovalRequest(models.Model):
    """One round of approval of one version (content_hash) of a post."""

    Status = RequestStatus

    post = models.ForeignKey(
        "publishing.Post", on_delete=models.CASCADE, related_name="approval_requests"
    )
    version = models.PositiveIntegerField()
    content_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=20, choices=RequestStatus.choices, default="open")
    break_glass = models.BooleanField(default=False)
    break_glass_justification = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["post"], condition=Q(status="open"), name="one_open_request_per_post"
            ),
            models.CheckConstraint(
                condition=Q(status__in=RequestStatus.values), name="request_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"approval of post {self.post_id} v{self.version} ({self.status})"


class StepStatus(models.TextChoices):
    # Earlier steps are not done yet.
    WAITING = "waiting", "Waiting"
    # Its deciders are being asked now.
    ACTIVE = "active", "Active"
    APPROVED = "approved", "Approved"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    REJECTED = "rejected", "Rejected"
    # The request closed before this step finished.
    CLOSED = "closed", "Closed"


class ApprovalStep(models.Model):
    """A stage copied into a request, with the people who may decide it (fixed at submit)."""

    Status = StepStatus

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=200)
    source = models.CharField(max_length=200, blank=True)
    rule = models.CharField(max_length=10, choices=Rule.choices)
    quorum = models.PositiveSmallIntegerField(null=True, blank=True)
    decider_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decider_role = models.CharField(max_length=20, blank=True)
    eligible = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="approval_steps")
    sla_hours = models.PositiveIntegerField(default=24)
    escalate_to_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    escalate_to_role = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=20, choices=StepStatus.choices, default="waiting")
    activated_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["request", "order"]
        constraints = [
            models.UniqueConstraint(fields=["request", "order"], name="unique_step_order"),
            models.CheckConstraint(
                condition=Q(status__in=StepStatus.values), name="step_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "due_at"]),
            # The inbox: waiting steps, oldest first, a page at a time (approvals.selectors).
            models.Index(
                fields=["activated_at", "id"],
                condition=Q(status=StepStatus.ACTIVE),
                name="step_waiting_oldest_first",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.request} step {self.order}: {self.name}"

    def required_approvals(self, eligible_count: int) -> int:
        if self.rule == Rule.ALL:
            return eligible_count
        if self.rule == Rule.QUORUM:
            return min(self.quorum or 1, eligible_count)
        return 1


class Verdict(models.TextChoices):
    APPROVE = "approve", "Approve"
    REQUEST_CHANGES = "request_changes", "Request changes"
    REJECT = "reject", "Reject"


class Decision(models.Model):
    """One person's verdict on one step, bound to the content it was made on."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="decisions")
    step = models.ForeignKey(ApprovalStep, on_delete=models.CASCADE, related_name="decisions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verdict = models.CharField(max_length=20, choices=Verdict.choices)
    comment = models.TextField(blank=True)
    content_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # One person decides at most once per request.
            models.UniqueConstraint(fields=["request", "user"], name="one_decision_per_person"),
            models.CheckConstraint(
                condition=Q(verdict__in=Verdict.values), name="decision_verdict_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.verdict} on {self.step_id}"
