from rest_framework import serializers


class EventOutput(serializers.Serializer):
    """One audit event. `actor` and `team` are ids (null for the system and for events of no
    team); `actor_name` is the username at the time."""

    seq = serializers.IntegerField()
    at = serializers.DateTimeField()
    actor = serializers.IntegerField(source="actor_id", allow_null=True)
    actor_name = serializers.CharField()
    action = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    team = serializers.IntegerField(source="team_id", allow_null=True)
    team_name = serializers.SerializerMethodField()
    data = serializers.JSONField()
    prev_hash = serializers.CharField()
    hash = serializers.CharField(allow_null=True)  # null after the closed chain

    def get_team_name(self, event) -> str | None:
        return event.team.name if event.team_id else None
