"""Times: stored in UTC, entered and shown in the author's time zone, correct across DST."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.utils import timezone as dj_timezone

from cxhub.errors import ApplicationError

UTC = ZoneInfo("UTC")


def zone(name: str, *, field: str = "timezone") -> ZoneInfo:
    """The IANA zone called `name` ("Europe/Paris"), or a 400 naming the field."""
    if not name or "/" not in name and name != "UTC":
        raise ApplicationError(
            f"{name!r} is not a time zone name like Europe/Paris.",
            {"fields": {field: ["Give an IANA time zone name such as Europe/Paris."]}},
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ApplicationError(
            f"Unknown time zone {name!r}.",
            {"fields": {field: ["Give an IANA time zone name such as Europe/Paris."]}},
        ) from None


def local_to_utc(day: date, clock: time, tz_name: str, *, field: str = "scheduled_at") -> datetime:
    """The UTC instant of a wall-clock time in a zone.

    A time that does not exist (skipped when clocks go forward) is refused with a message that
    says so; a time that happens twice (clocks go back) means the first of the two, as most
    calendars do.
    """
    tz = zone(tz_name)
    naive = datetime.combine(day, clock)
    first = naive.replace(tzinfo=tz, fold=0)
    # A skipped time does not survive the round trip through UTC.
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        raise ApplicationError(
            f"{clock:%H:%M} does not exist on {day:%Y-%m-%d} in {tz_name}: the clocks go "
            "forward then. Choose another time.",
            {"fields": {field: ["This local time is skipped by a daylight-saving change."]}},
        )
    return first.astimezone(UTC)


def is_ambiguous(day: date, clock: time, tz_name: str) -> bool:
    """Whether the wall-clock time happens twice that day (clocks go back)."""
    tz = zone(tz_name)
    naive = datetime.combine(day, clock)
    return (
        naive.replace(tzinfo=tz, fold=0).utcoffset() != naive.replace(tzinfo=tz, fold=1).utcoffset()
    )


def utc_to_local(moment: datetime, tz_name: str) -> datetime:
    return moment.astimezone(zone(tz_name))


def ensure_aware(moment: datetime, *, field: str = "scheduled_at") -> datetime:
    if dj_timezone.is_naive(moment):
        raise ApplicationError(
            "A time needs its UTC offset (e.g. 2026-03-29T09:00:00+02:00).",
            {"fields": {field: ["Include the UTC offset or Z."]}},
        )
    return moment.astimezone(UTC)


def common_timezones() -> list[str]:
    return sorted(
        name
        for name in available_timezones()
        if "/" in name and not name.startswith(("Etc/", "SystemV/", "posix/", "right/"))
    ) + ["UTC"]


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())
