"""Output and input shapes of the accounts API (one small serializer per purpose)."""

from rest_framework import serializers

from cxhub.api import IdField

from ..models import Membership, Role, SocialAccount, Team, User


class TokenInput(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})


class TokenOutput(serializers.Serializer):
    token = serializers.CharField()


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


class SocialAccountOutput(serializers.ModelSerializer):
    team_name = serializers.CharField(source="team.name")
    connected = serializers.SerializerMethodField()

    class Meta:
        model = SocialAccount
        fields = [
            "id",
            "team",
            "team_name",
            "channel",
            "handle",
            "display_name",
            "base_url",
            "external_id",
            "status",
            "sandbox",
            "expires_at",
            "connected",
        ]

    def get_connected(self, account: SocialAccount) -> bool:
        return account.status == SocialAccount.Status.CONNECTED


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
