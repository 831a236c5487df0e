"""How an audit event is hashed: the one function the writer and the verifiers share (the chain's
audit.verify and the standalone audit/verifier.py, whose canonical form this is), so they can
never disagree about what a link of the chain or a leaf of the tree is."""

import hashlib
import json
from functools import partial
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

# The canonical form is the standalone verifier's (audit/verifier.py), so that an auditor hashes
# an exported event into the very bytes the sealer hashed.
from .verifier import canonical_event as _canonical_event
from .verifier import format_at  # noqa: F401 (re-exported)
from .verifier import integral_floats_as_ints as _integral_floats_as_ints

# The fields of an event that its leaf (and its chain hash) cover, in the database's column
# names: what the writer inserts, the sealer and the verifiers read.
EVENT_FIELDS = (
    "seq",
    "at",
    "actor_id",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "team_id",
    "data",
)


def normalise_data(data: dict | None) -> dict:
    """`data` as it will read back from the database: plain JSON types only (dates, decimals and
    UUIDs become strings through DjangoJSONEncoder). NaN and infinities are refused."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TypeError(f"audit data must be a dict, not {type(data).__name__}")
    plain = json.loads(json.dumps(data, cls=DjangoJSONEncoder, allow_nan=False))
    return _integral_floats_as_ints(plain)


# The canonical JSON of an event's fields (sorted keys, compact separators: jsonb reorders keys,
# so order must not matter), shared by the chain's hash and the Merkle tree's leaf; values JSON
# has no type for (dates, decimals) go through DjangoJSONEncoder, as `data` was stored.
canonical_event = partial(_canonical_event, encoder=DjangoJSONEncoder)


def event_hash(*, prev_hash: str, **fields: Any) -> str:
    """SHA-256 hex of prev_hash + the canonical JSON of the event's fields (`canonical_event`'s
    keyword arguments)."""
    return hashlib.sha256((prev_hash + canonical_event(**fields)).encode("utf-8")).hexdigest()


def event_leaf(event) -> bytes:
    """The Merkle tree's leaf data for an AuditEvent: the UTF-8 of `canonical_event` of its
    fields, the very bytes the chain hashes after prev_hash. prev_hash is left out, so the tree
    stands on its own (and its leaves do not depend on the chain); seq is in, so a leaf names its
    place. The tree hashes it as SHA-256(0x00 || leaf), see audit.merkle.leaf_hash."""
    return canonical_event(**{name: getattr(event, name) for name in EVENT_FIELDS}).encode("utf-8")
