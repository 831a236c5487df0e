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


def event_hash(
    *,
    prev_hash: str,
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
    """SHA-256 hex of prev_hash + the canonical JSON of the event's fields (sorted keys, compact
    separators: jsonb reorders keys, so order must not matter)."""
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
    canonical = json.dumps(
        payload,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        cls=DjangoJSONEncoder,
    )
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()
