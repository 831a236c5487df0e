from rest_framework import serializers

from accounts.models import Role
from cxhub.api import IdField
from cxhub.outputs import FastOutput

from ..models import ApprovalRequest, ApprovalStep, Decision, Rule, Verdict
from ..services import MIN_JUSTIFICATION


class DecideInput(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    comment = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=5000,
        help_text="Shown to the author. Required (not blank) when the verdict is "
        "`request_changes` or `reject`: a 400 naming comment otherwise.",
    )


class BreakGlassInput(serializers.Serializer):
    justification = serializers.CharField(
        min_length=MIN_JUSTIFICATION,
        max_length=5000,
        error_messages={"min_length": f"At least {MIN_JUSTIFICATION} characters."},
        help_text=f"Why this cannot wait for the approvers: at least {MIN_JUSTIFICATION} "
        "characters (leading and trailing spaces do not count); recorded in the audit trail "
        "and sent to every approver it skips.",
    )


class InboxItemOutput(FastOutput, serializers.ModelSerializer):
    request = serializers.IntegerField(source="request_id")
    post = serializers.IntegerField(source="request.post_id")
    post_body = serializers.CharField(source="request.post.body")
    post_version = serializers.IntegerField(source="request.version")
    team = serializers.CharField(source="request.post.team.name")
    author = serializers.CharField(source="request.post.author.username")
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = ApprovalStep
        fields = [
            "id",
            "request",
            "post",
            "post_body",
            "post_version",
            "team",
            "author",
            "order",
            "name",
            "rule",
            "activated_at",
            "due_at",
            "overdue",
        ]

    def get_overdue(self, step) -> bool:
        now = self.context["now"]
        return bool(step.due_at and step.due_at < now)


class DecisionOutput(serializers.ModelSerializer):
    user = serializers.IntegerField(source="user_id")
    username = serializers.CharField(source="user.username")
    step = serializers.IntegerField(source="step_id")

    class Meta:
        model = Decision
        fields = [
            "id",
            "step",
            "user",
            "username",
            "verdict",
            "comment",
            "content_hash",
            "created_at",
        ]


class StepOutput(serializers.ModelSerializer):
    eligible = serializers.SerializerMethodField()

    class Meta:
        model = ApprovalStep
        fields = [
            "id",
            "order",
            "name",
            "source",
            "rule",
            "quorum",
            "status",
            "eligible",
            "activated_at",
            "due_at",
            "escalated_at",
            "completed_at",
        ]

    def get_eligible(self, step) -> list[str]:
        return [user.username for user in step.eligible.all()]


class RequestOutput(serializers.ModelSerializer):
    steps = StepOutput(many=True)
    decisions = DecisionOutput(many=True)

    class Meta:
        model = ApprovalRequest
        fields = [
            "id",
            "post",
            "version",
            "content_hash",
            "status",
            "break_glass",
            "break_glass_justification",
            "created_at",
            "closed_at",
            "steps",
            "decisions",
        ]


class StageInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    rule = serializers.ChoiceField(choices=Rule.choices, default=Rule.ANY)
    quorum = serializers.IntegerField(min_value=1, max_value=32767, required=False, allow_null=True)
    decider_team = IdField(required=False, allow_null=True)
    decider_role = serializers.ChoiceField(
        choices=Role.choices,
        required=False,
        allow_blank=True,
        default="",
        help_text="With decider_team: who decides. Give these two, or named_users, or both.",
    )
    named_users = serializers.ListField(child=IdField(), required=False, default=list)
    sla_hours = serializers.IntegerField(min_value=1, max_value=720, default=24)
    escalate_to_team = IdField(required=False, allow_null=True)
    escalate_to_role = serializers.ChoiceField(
        choices=Role.choices, required=False, allow_blank=True, default=""
    )
    for_replies = serializers.BooleanField(
        default=True, help_text="Replies to the inbox's items pass this stage too."
    )


class PolicyInput(serializers.Serializer):
    """For a team or for one social account: exactly one of `team` and `social_account`, which
    you administer and which has no policy yet."""

    name = serializers.CharField(max_length=200)
    team = IdField(required=False, allow_null=True)
    social_account = IdField(required=False, allow_null=True)
    schedule_changes_need_approval = serializers.BooleanField(default=False)
    replies_need_approval = serializers.BooleanField(
        default=True,
        help_text="false: replies to the inbox's items need no approval under this policy.",
    )
    stages = StageInputSerializer(many=True)


class PolicyUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    schedule_changes_need_approval = serializers.BooleanField(required=False)
    replies_need_approval = serializers.BooleanField(required=False)
    stages = StageInputSerializer(many=True, required=False)


class StageOutput(serializers.Serializer):
    order = serializers.IntegerField()
    name = serializers.CharField()
    rule = serializers.ChoiceField(choices=Rule.choices)
    quorum = serializers.IntegerField(allow_null=True)
    decider_team = serializers.IntegerField(source="decider_team_id", allow_null=True)
    decider_role = serializers.ChoiceField(choices=Role.choices, allow_blank=True)
    named_users = serializers.SerializerMethodField()
    sla_hours = serializers.IntegerField()
    escalate_to_team = serializers.IntegerField(source="escalate_to_team_id", allow_null=True)
    escalate_to_role = serializers.ChoiceField(choices=Role.choices, allow_blank=True)
    for_replies = serializers.BooleanField()

    def get_named_users(self, stage) -> list[int]:
        return sorted(user.pk for user in stage.named_users.all())


class PolicyOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    team = serializers.IntegerField(source="team_id", allow_null=True)
    social_account = serializers.IntegerField(source="social_account_id", allow_null=True)
    schedule_changes_need_approval = serializers.BooleanField()
    replies_need_approval = serializers.BooleanField()
    stages = StageOutput(many=True, source="stages.all")
