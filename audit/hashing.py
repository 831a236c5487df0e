"""How an audit event is hashed: the one function the writer and the verifier share, so the two
can never disagree about what a link of the chain is."""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder


def _integral_floats_as_ints(value: Any) -> Any:
    # PostgreSQL's jsonb prints 1e16 as 10000000000000000, which reads back as an int: hash such
    # floats as the int they equal, so a value hashes the same before and after the round trip.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral_floats_as_ints(item) for item in value]
    return value


def normalise_data(data: dict | None) -> dict:
    """`data` as it will read back from the database: plain JSON types only (dates, decimals and
    UUIDs become strings through DjangoJSONEncoder). NaN and infinities are refused."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TypeError(f"audit data must be a dict, not {type(data).__name__}")
    plain = json.loads(json.dumps(data, cls=DjangoJSONEncoder, allow_nan=False))
    return _integral_floats_as_ints(plain)


def format_at(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_event(
    *,
    seq: int,
    at: datetime,
    actor_id: int | None,
    actor_name: str,
    action: str,
    object_type: str,
    object_id: str,
    team_id: int | None,
    data: dict,
) -> str:
    """The canonical JSON of an event's fields (sorted keys, compact separators: jsonb reorders
    keys, so order must not matter). Shared by the chain's hash and the Merkle tree's leaf."""
    payload = {
        "seq": seq,
        "at": format_at(at),
        "actor_id": actor_id,
        "actor_name": actor_name,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "team_id": team_id,
        "data": _integral_floats_as_ints(data),
    }
    return json.dumps(
        payload,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        cls=DjangoJSONEncoder,
    )


def event_hash(*, prev_hash: str, **fields: Any) -> str:
    """SHA-256 hex of prev_hash + the canonical JSON of the event's fields (`canonical_event`'s
    keyword arguments)."""
    return hashlib.sha256((prev_hash + canonical_event(**fields)).encode("utf-8")).hexdigest()


def event_leaf(event) -> bytes:
    """The Merkle tree's leaf data for an AuditEvent: the UTF-8 of `canonical_event` of its
    fields, the very bytes the chain hashes after prev_hash. prev_hash is left out, so the tree
    stands on its own (and its leaves do not depend on the chain); seq is in, so a leaf names its
    place. The tree hashes it as SHA-256(0x00 || leaf), see audit.merkle.leaf_hash."""
    return canonical_event(
        seq=event.seq,
        at=event.at,
        actor_id=event.actor_id,
        actor_name=event.actor_name,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        team_id=event.team_id,
        data=event.data,
    ).encode("utf-8")
