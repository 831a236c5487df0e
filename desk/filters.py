"""The audit trail's filters, read from a query string in one way for the page and the API: every
bad value is named with its field, so either interface can show the message beside its input."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.utils import timezone

from cxhub.errors import ApplicationError

FILTER_FIELDS = ("team", "actor", "action", "object_type", "object_id", "since", "until")
EXPORT_FORMATS = ("csv", "jsonl")
FORMATS = ("json", *EXPORT_FORMATS)

_MAX_ID = 2**63 - 1  # a bigint: larger ids overflow SQLite's integers instead of matching nothing
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# "+01:00" in a query string that was not percent-encoded arrives as " 01:00".
_SPACE_FOR_PLUS = re.compile(r" (\d{2}(?::?\d{2})?)$")


@dataclass(frozen=True)
class EventFilters:
    """What `selectors.events_for` takes, plus the values as given (for the export's own event
    and for links that keep the filters)."""

    team_id: int | None = None
    actor: int | str | None = None  # a user id, or a (current) username
    action: str = ""  # exact, or a prefix when it ends with "." or "*"
    object_type: str = ""
    object_id: str = ""
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    given: dict[str, str] = field(default_factory=dict)

    def selector_kwargs(self) -> dict:
        return {
            "actor": self.actor,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "since": self.since,
            "until": self.until,
        }


def parse_event_filters(params: Mapping[str, str]) -> EventFilters:
    """Read the filters from a query string; raise ApplicationError (400) naming every bad field.

    `since` and `until` take ISO 8601: a date-time with a UTC offset, or a date alone, which
    means the whole day in the site's time zone (`until=2025-03-31` includes the 31st).
    """
    given = {name: params.get(name, "").strip() for name in FILTER_FIELDS}
    given = {name: value for name, value in given.items() if value}
    errors: dict[str, list[str]] = {}
    for name, value in given.items():
        if "\x00" in value:
            errors[name] = ["Contains a NUL character."]

    def checked(name: str, parse):
        if name not in given or name in errors:
            return None
        try:
            return parse(given[name])
        except ValueError as error:
            errors[name] = [str(error)]
            return None

    team_id = checked("team", lambda value: _id(value, "a team id"))
    actor = checked("actor", _actor)
    since = checked("since", lambda value: _moment(value, end_of_day=False))
    until = checked("until", lambda value: _moment(value, end_of_day=True))
    if since and until and until <= since:
        errors.setdefault("until", ["Must be after since."])
    if "object_id" in given and "object_type" not in given:
        errors.setdefault("object_id", ["Give object_type too (e.g. accounts.team)."])
    if errors:
        first = next(iter(errors))
        raise ApplicationError(f"{first}: {errors[first][0]}", {"fields": errors})
    return EventFilters(
        team_id=team_id,
        actor=actor,
        action=given.get("action", ""),
        object_type=given.get("object_type", ""),
        object_id=given.get("object_id", ""),
        since=since,
        until=until,
        given=given,
    )


def parse_format(params: Mapping[str, str]) -> str:
    """`json` (a page of results, the default), or an export: `csv` or `jsonl`."""
    value = params.get("format", "").strip() or "json"
    if value not in FORMATS:
        message = f"One of {', '.join(FORMATS)}."
        raise ApplicationError(f"format: {message}", {"fields": {"format": [message]}})
    return value


def _id(value: str, what: str) -> int:
    if not value.isdecimal() or not value.isascii() or not 0 < int(value) <= _MAX_ID:
        raise ValueError(f"Not {what}: give a whole number.")
    return int(value)


def _actor(value: str) -> int | str:
    if value.isdecimal() and value.isascii():
        return _id(value, "a user id")
    return value


def _moment(value: str, *, end_of_day: bool) -> datetime:
    try:
        if _DATE.fullmatch(value):
            day = date.fromisoformat(value)
            moment = datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())
            if end_of_day:
                moment += timedelta(days=1)
        else:
            if "T" in value or "t" in value:
                value = _SPACE_FOR_PLUS.sub(r"+\1", value)
            moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            "Not an ISO 8601 date (2025-03-01) or date-time with offset "
            "(2025-03-01T09:00:00+01:00)."
        ) from None
    except OverflowError:
        raise ValueError("Out of range.") from None
    if moment.tzinfo is None:
        raise ValueError("Give a UTC offset, e.g. 2025-03-01T09:00:00+01:00 or …T08:00:00Z.")
    try:
        # In UTC now, so a moment at the edge of the calendar fails here, not in the database.
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("Out of range.") from None
