"""Output shapes of the social accounts API."""

from rest_framework import serializers

from ..models import SocialAccount


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
