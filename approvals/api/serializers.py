from rest_framework import serializers

from ..models import ApprovalRequest, ApprovalStep, Decision, Verdict


class DecideInput(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class BreakGlassInput(serializers.Serializer):
    justification = serializers.CharField(max_length=5000)


class InboxItemOutput(serializers.ModelSerializer):
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
