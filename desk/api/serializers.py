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
    prev_hash = serializers.CharField(help_text='The closed chain\'s link: "" after it closed.')
    hash = serializers.CharField(
        allow_null=True, help_text="The closed chain's hash: null for events after it closed."
    )

    def get_team_name(self, event) -> str | None:
        return event.team.name if event.team_id else None


class CheckpointOutput(serializers.Serializer):
    """A signed checkpoint of the audit log: a C2SP tlog-checkpoint in a signed note (Ed25519),
    and the verifier keys to check it with (get them from a source you trust as well)."""

    size = serializers.IntegerField(help_text="The tree size: how many events the log holds.")
    root = serializers.CharField(help_text="The RFC 9162 root hash, base64.")
    at = serializers.DateTimeField()
    origin = serializers.CharField(help_text="The log's name, the note's first line.")
    note = serializers.CharField(help_text="The signed note, as witnesses and verifiers read it.")
    verifier_keys = serializers.ListField(child=serializers.CharField())


class ProofOutput(serializers.Serializer):
    """An event's RFC 9162 inclusion proof in the tree of the signed checkpoint given."""

    seq = serializers.IntegerField()
    leaf_index = serializers.IntegerField(help_text="The event's place in the tree.")
    tree_size = serializers.IntegerField(help_text="The checkpoint's tree size.")
    inclusion_proof = serializers.ListField(
        child=serializers.CharField(), help_text="The proof's hashes, base64, the leaf's first."
    )
    leaf = serializers.CharField(help_text="The canonical JSON of the event: the leaf's data.")
    leaf_hash = serializers.CharField(help_text="SHA-256(0x00 || leaf), base64.")
    checkpoint = serializers.CharField(help_text="The signed checkpoint note.")
    origin = serializers.CharField()
    verifier_keys = serializers.ListField(child=serializers.CharField())
    event = EventOutput()


class ConsistencyOutput(serializers.Serializer):
    """The RFC 9162 consistency proof that the tree of `first` events is a prefix of the tree of
    `second`: the log only grew between them."""

    first = serializers.IntegerField()
    second = serializers.IntegerField()
    first_root = serializers.CharField(help_text="The root of the first tree, base64.")
    second_root = serializers.CharField(help_text="The root of the second tree, base64.")
    proof = serializers.ListField(child=serializers.CharField(), help_text="Base64 hashes.")
    checkpoint = serializers.CharField(help_text="The latest signed checkpoint note.")
    verifier_keys = serializers.ListField(child=serializers.CharField())
