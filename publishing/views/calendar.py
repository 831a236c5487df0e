"""The calendar: month and week, in the viewer's time zone."""

import calendar as pycalendar
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone as dj_timezone
from django.utils.http import urlencode

from cxhub.errors import ApplicationError

from .. import scheduling, selectors
from ..models import Post, PostStatus
from .common import MONTH_DAY_LIMIT, UNSCHEDULED_LIMIT, _timezones
from .posts import _filters, _networks


@dataclass
class Entry:
    post: Post
    local: datetime
    networks: list[str]

    @property
    def clock(self) -> str:
        # Formatted here: the template's time filter would convert it to the site's zone.
        return f"{self.local:%H:%M}"


@dataclass
class Day:
    day: date
    in_range: bool
    is_today: bool
    entries: list[Entry]
    shown: list[Entry]
    more: int


_MONTH = re.compile(r"(\d{4})-(\d{2})")


def _parse_period(params, today: date):
    """("month" | "week", first day shown, last day shown + 1, anchor, errors)."""
    errors: dict[str, list[str]] = {}
    week = params.get("week", "").strip()
    month = params.get("month", "").strip()
    if week:
        try:
            start = scheduling.week_start(date.fromisoformat(week))
        except ValueError:
            errors["week"] = ["Give the week as a date like 2026-03-02."]
        else:
            return "week", start, start + timedelta(days=7), start, errors
    first = today.replace(day=1)
    if month:
        match = _MONTH.fullmatch(month)
        if match and 1 <= int(match[2]) <= 12 and int(match[1]) >= 1:
            first = date(int(match[1]), int(match[2]), 1)
        else:
            errors["month"] = ["Give the month like 2026-03."]
    last = first.replace(day=pycalendar.monthrange(first.year, first.month)[1])
    start = scheduling.week_start(first)
    end = scheduling.week_start(last) + timedelta(days=7)
    return "month", start, end, first, errors


def _local_midnight_utc(day: date, zone) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(scheduling.UTC)


def _shift_month(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@login_required
def calendar_view(request):
    user = request.user
    tz_name = request.GET.get("tz", "").strip() or "UTC"
    extra: dict[str, list[str]] = {}
    try:
        zone = scheduling.zone(tz_name)
    except ApplicationError:
        extra["tz"] = ["Choose a time zone from the list."]
        tz_name, zone = "UTC", scheduling.UTC
    today = dj_timezone.now().astimezone(zone).date()
    view, start, end, anchor, period_errors = _parse_period(request.GET, today)
    extra.update(period_errors)
    selection, teams, accounts, errors, given = _filters(request, extra_errors=extra)
    given["tz"] = tz_name

    def link(**period) -> str:
        query = [(name, value) for name, value in given.items() if value]
        query = [(name, value) for name, value in query if not (name == "tz" and value == "UTC")]
        return "?" + urlencode([*period.items(), *query])

    if view == "month":
        title = f"{anchor:%B %Y}"
        prev_url = link(month=f"{_shift_month(anchor, -1):%Y-%m}")
        next_url = link(month=f"{_shift_month(anchor, 1):%Y-%m}")
        prev_label, next_label = "Previous month", "Next month"
        # This week when it is in the month shown, else the month's first week.
        in_month = (today.year, today.month) == (anchor.year, anchor.month)
        week_of = scheduling.week_start(today if in_month else anchor)
        other_url, other_label = link(week=f"{week_of:%Y-%m-%d}"), "Week view"
    else:
        title = f"Week of {anchor.day} {anchor:%B %Y}"
        prev_url = link(week=f"{anchor - timedelta(days=7):%Y-%m-%d}")
        next_url = link(week=f"{anchor + timedelta(days=7):%Y-%m-%d}")
        prev_label, next_label = "Previous week", "Next week"
        other_url, other_label = link(month=f"{anchor:%Y-%m}"), "Month view"

    context = {
        "view": view,
        "title": title,
        "tz_name": tz_name,
        "timezones": _timezones(),
        "teams": teams,
        "accounts": accounts,
        "statuses": PostStatus.choices,
        "given": given,
        "errors": errors,
        "period_value": f"{anchor:%Y-%m}" if view == "month" else f"{anchor:%Y-%m-%d}",
        "prev_url": prev_url,
        "next_url": next_url,
        "prev_label": prev_label,
        "next_label": next_label,
        "other_url": other_url,
        "other_label": other_label,
        "today_url": link(month=f"{today:%Y-%m}")
        if view == "month"
        else link(week=f"{scheduling.week_start(today):%Y-%m-%d}"),
        "today_label": "This month" if view == "month" else "This week",
        "weekdays": [pycalendar.day_name[i] for i in range(7)],
        "weeks": [],
        "unscheduled": [],
    }
    if errors:
        return render(request, "publishing/calendar.html", context, status=400)

    posts = selectors.calendar_posts(
        user=user,
        since=_local_midnight_utc(start, zone),
        until=_local_midnight_utc(end, zone),
        **selection,
    )
    by_day: dict[date, list[Entry]] = defaultdict(list)
    for post in posts:
        local = post.scheduled_at.astimezone(zone)
        by_day[local.date()].append(Entry(post, local, _networks(post)))
    limit = MONTH_DAY_LIMIT if view == "month" else None
    weeks = []
    day = start
    while day < end:
        week = []
        for _ in range(7):
            entries = by_day.get(day, [])
            shown = entries[:limit] if limit else entries
            week.append(
                Day(
                    day=day,
                    in_range=view == "week" or day.month == anchor.month,
                    is_today=day == today,
                    entries=entries,
                    shown=shown,
                    more=len(entries) - len(shown),
                )
            )
            day += timedelta(days=1)
        weeks.append(
            {"start": week[0].day, "url": link(week=f"{week[0].day:%Y-%m-%d}"), "days": week}
        )
    unscheduled = selectors.unscheduled_posts(user=user, limit=UNSCHEDULED_LIMIT, **selection)
    for post in unscheduled:
        post.networks = _networks(post)
    context.update(weeks=weeks, unscheduled=unscheduled, unscheduled_limit=UNSCHEDULED_LIMIT)
    return render(request, "publishing/calendar.html", context)
