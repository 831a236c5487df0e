"""Output and input shapes of the accounts API (one small serializer per purpose)."""

from django.conf import settings
from rest_framework import serializers

from cxhub.api import IdField

from ..models import ApiToken, Membership, Role, Team, User


class TokenInput(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})
    name = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=100,
        help_text="What the token is for, to recognise it in your list (default: API token).",
    )
    expires_in_days = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Days until the token expires: by default CXHUB_API_TOKEN_DAYS (90), at most "
        "CXHUB_API_TOKEN_MAX_DAYS (365).",
    )
    read_only = serializers.BooleanField(
        required=False,
        default=False,
        help_text="A read-only token is refused (403) on anything but GET, HEAD and OPTIONS.",
    )

    def validate_expires_in_days(self, value: int) -> int:
        # Checked again by the service; here so that a bad value is refused before the password.
        maximum = settings.CXHUB_API_TOKEN_MAX_DAYS
        if value > maximum:
            raise serializers.ValidationError(f"A token lives between 1 and {maximum} days.")
        return value

    otp = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="For people with a second factor (or whose role needs one): a current code "
        "from their authenticator app, or an unused recovery code. Passkeys cannot be used here.",
    )


class TokenOutput(serializers.Serializer):
    token = serializers.CharField(help_text="The secret: shown this once, never again.")
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="Not secret: names the token in lists.")
    expires_at = serializers.DateTimeField()
    read_only = serializers.BooleanField()


class ApiTokenOutput(serializers.ModelSerializer):
    """A token as lists show it: never its secret or hash."""

    state = serializers.ChoiceField(choices=["active", "expired", "revoked"], read_only=True)
    user = serializers.IntegerField(source="user_id")

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "user",
            "name",
            "prefix",
            "created_at",
            "expires_at",
            "last_used_at",
            "read_only",
            "revoked_at",
            "state",
        ]


class TeamOutput(serializers.ModelSerializer):
    parent = serializers.SerializerMethodField()

    class Meta:
        model = Team
        fields = ["id", "name", "slug", "path", "depth", "parent"]

    def get_parent(self, team: Team) -> int | None:
        # Resolved from a map the view builds in one query, not one query per row.
        return self.context.get("parents", {}).get(team.path[: -team.steplen])


class MembershipOutput(serializers.ModelSerializer):
    team = serializers.IntegerField(source="team_id")
    team_name = serializers.CharField(source="team.name")

    class Meta:
        model = Membership
        fields = ["team", "team_name", "role"]


class MeOutput(serializers.ModelSerializer):
    memberships = MembershipOutput(many=True, source="memberships_list")
    roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.choices))

    class Meta:
        model = User
        fields = ["id", "username", "display_name", "email", "is_superuser", "roles", "memberships"]


class NotificationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    title = serializers.CharField()
    body = serializers.CharField()
    url = serializers.CharField()
    post = serializers.IntegerField(source="post_id", allow_null=True)
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True)


class NotificationsReadInput(serializers.Serializer):
    ids = serializers.ListField(child=IdField(), required=False)
