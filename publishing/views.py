"""Pages of the publishing app: compose and edit, the post page, the posts list, the calendar,
and the media files behind them.

Views parse the form, call a service, and render. A service's ApplicationError comes back on the
page, its message beside the field it names, with its status (400 bad input, 403 not allowed,
409 wrong state). Posts outside the user's scope are 404.
"""

import calendar as pycalendar
import difflib
import functools
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone as dj_timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from accounts.models import Role, SocialAccount
from accounts.selectors import social_accounts_for, teams_for, user_has_role
from approvals import views as approval_pages
from cxhub.errors import ApplicationError

from . import media_services, preflight, scheduling, selectors, services
from .channels import all_channels, get_channel
from .channels.base import Channel
from .channels.text import COMMON_TLDS
from .channels.x import DEFAULT_WEIGHT, LIGHT_RANGES
from .forms import CancelForm, ComposeForm, PostFilterForm
from .models import CANCELLABLE_STATUSES, EDITABLE_STATUSES, Post, PostStatus

PAGE_SIZE = 50
UNSCHEDULED_LIMIT = 50
# A month cell lists this many posts, then links to its week, which lists them all.
MONTH_DAY_LIMIT = 5


@login_required
def media_file(request, media_id: int, kind: str):
    """An uploaded image, to the people who may use it (media are not public files)."""
    media = selectors.media_visible(user=request.user).filter(pk=media_id).first()
    if media is None:
        raise Http404
    stored = media.thumbnail if kind == "thumbnail" else media.file
    if not stored:
        raise Http404
    response = FileResponse(stored.open("rb"), content_type=media.mime)
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response


# Shared helpers --------------------------------------------------------------------------------
@functools.cache
def _timezones() -> list[str]:
    return scheduling.common_timezones()


def _get_post(request, post_id: int) -> Post:
    post = selectors.post_get(user=request.user, post_id=post_id)
    if post is None:
        raise Http404
    return post


@dataclass(frozen=True)
class Counter:
    text: str
    over: bool


def _counter(value: int, limit: int, unit: str) -> Counter:
    # The same words as compose.js writes while typing.
    text = f"{value:,} / {limit:,} {unit}"
    if value > limit:
        text += f" — {value - limit:,} over"
    return Counter(text, value > limit)


def _counters(channel: Channel, text: str) -> list[Counter]:
    limits = channel.limits
    counters = [_counter(channel.count(text), limits.max_text, limits.text_unit)]
    if limits.max_text_bytes is not None:
        counters.append(_counter(channel.text_bytes(text), limits.max_text_bytes, "bytes"))
    return counters


def _indented(teams) -> list:
    top = min((team.depth for team in teams), default=1)
    for team in teams:
        team.indent = "— " * (team.depth - top)
    return teams


# Compose and edit ------------------------------------------------------------------------------
@dataclass
class AccountRow:
    account: SocialAccount
    channel: Channel
    checked: bool
    variant: str
    preview: str
    counters: list[Counter]
    errors: list[str] = field(default_factory=list)


_SERVICE_FIELDS = {
    "team": "team",
    "body": "body",
    "link": "link",
    "scheduled_at": "schedule",
    "timezone": "timezone",
    "file": "image",
    "alt_text": "image_alt",
}
_FORM_FIELDS = {"schedule_date": "schedule", "schedule_time": "schedule", "action": "general"}
_TARGET_FIELD = re.compile(r"targets\[(\d+)\]\.(\w+)")


def _error_key(name: str, account_order: list[int]) -> str:
    """The compose field a service's field name points at."""
    match = _TARGET_FIELD.fullmatch(name)
    if match:
        index = int(match[1])
        if match[2] == "body" and index < len(account_order):
            return f"variant-{account_order[index]}"
        return "accounts"
    if name.startswith("targets"):
        return "accounts"
    if name.startswith("media"):
        return "media"
    return _SERVICE_FIELDS.get(name, "general")


def _service_errors(
    error: ApplicationError, account_order: list[int]
) -> tuple[dict[str, list[str]], str]:
    """(messages by compose field, the error's own sentence when it says more than they do)."""
    errors: dict[str, list[str]] = defaultdict(list)
    fields = error.extra.get("fields") if isinstance(error.extra, dict) else None
    fields = fields if isinstance(fields, dict) else {}
    for name, found in fields.items():
        found = found if isinstance(found, list) else [found]
        errors[_error_key(name, account_order)].extend(str(message) for message in found)
    if not errors:
        return {"general": [error.message]}, ""
    # "body: Must be text." only repeats its field message; "09:30 does not exist on …" does not.
    repeats = any(error.message.startswith(f"{name}: ") for name in fields)
    return dict(errors), "" if repeats else error.message


def _form_errors(form: ComposeForm) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = defaultdict(list)
    for name, found in form.errors.items():
        key = _FORM_FIELDS.get(name, name if name != "__all__" else "general")
        errors[key].extend(found)
    return dict(errors)


def _values_from_post(post: Post) -> dict:
    local = scheduling.utc_to_local(post.scheduled_at, post.timezone) if post.scheduled_at else None
    targets = list(post.targets.all())
    return {
        "team": str(post.team_id),
        "body": post.body,
        "link": post.link,
        "accounts": [target.social_account_id for target in targets],
        "variants": {target.social_account_id: target.body for target in targets},
        "media": [item.media_id for item in post.post_media.all()],
        "schedule_date": f"{local:%Y-%m-%d}" if local else "",
        "schedule_time": f"{local:%H:%M}" if local else "",
        "timezone": post.timezone,
        "image_alt": "",
    }


def _values_from_form(form: ComposeForm, post: Post | None) -> dict:
    """What was typed, to show it again (cleaned where it parsed, raw where it did not)."""
    data = form.data
    cleaned = getattr(form, "cleaned_data", {})

    def ids(name: str) -> list[int]:
        if name in cleaned:
            return list(cleaned[name])
        return [int(v) for v in data.getlist(name) if v.isascii() and v.isdecimal()]

    accounts = ids("accounts")
    return {
        "team": str(post.team_id) if post else data.get("team", ""),
        "body": data.get("body", ""),
        "link": data.get("link", ""),
        "accounts": accounts,
        "variants": {pk: data.get(f"variant-{pk}", "") for pk in accounts},
        "media": ids("media"),
        "schedule_date": data.get("schedule_date", ""),
        "schedule_time": data.get("schedule_time", ""),
        "timezone": data.get("timezone", "") or "UTC",
        "image_alt": data.get("image_alt", ""),
    }


def _compose_data() -> dict:
    """What compose.js needs to count as each network counts (from the channels themselves)."""
    return {
        "channels": {channel.name: channel.counter_spec() for channel in all_channels()},
        "link_in_text": sorted(preflight.LINK_IN_TEXT),
        "tlds": sorted(COMMON_TLDS),
        "x": {"light_ranges": [list(r) for r in LIGHT_RANGES], "default_weight": DEFAULT_WEIGHT},
        "upload_url": reverse("api-media"),
    }


def _render_compose(
    request, *, post, teams, values, errors=None, lead="", status=200, zone_from_browser=False
):
    user = request.user
    errors = errors or {}
    accounts = list(selectors.drafting_accounts(user=user).order_by("channel", "handle", "pk"))
    known = {account.pk for account in accounts}
    if post is not None:
        # A colleague editing keeps accounts only the author was granted.
        accounts += [
            target.social_account
            for target in post.targets.all()
            if target.social_account_id not in known
        ]
    probe = Post(body=values["body"], link=values["link"])
    groups: dict[str, list[AccountRow]] = {}
    for account in accounts:
        channel = get_channel(account.channel)
        variant = values["variants"].get(account.pk, "")
        text = preflight.published_text(probe, account.channel, variant)
        row = AccountRow(
            account=account,
            channel=channel,
            checked=account.pk in values["accounts"],
            variant=variant,
            preview=text,
            counters=_counters(channel, text),
            errors=errors.get(f"variant-{account.pk}", []),
        )
        groups.setdefault(channel.label, []).append(row)

    media_by_id = {}
    if values["media"]:
        found = selectors.media_for(user=user).filter(pk__in=values["media"])
        media_by_id = {media.pk: media for media in found}
    media = [media_by_id[pk] for pk in values["media"] if pk in media_by_id]

    summary = []
    anchors = {
        "team": "compose-team",
        "body": "compose-body",
        "link": "compose-link",
        "accounts": f"account-{accounts[0].pk}" if accounts else "compose-accounts",
        "media": "compose-media",
        "image": "compose-image",
        "image_alt": "compose-image-alt",
        "schedule": "compose-date",
        "timezone": "compose-timezone",
    }
    for key, found in errors.items():
        anchor = key if key.startswith("variant-") else anchors.get(key, "")
        for message in found:
            summary.append({"anchor": anchor, "message": message})

    context = {
        "post": post,
        "teams": teams,
        "values": values,
        "errors": errors,
        "error_lead": lead,
        "error_summary": summary,
        "groups": list(groups.items()),
        "any_checked": bool(values["accounts"]),
        "media": media,
        "timezones": _timezones(),
        "zone_from_browser": zone_from_browser,
        "compose_data": _compose_data(),
        "findings": preflight.run(post=post) if post is not None else [],
    }
    return render(request, "publishing/compose.html", context, status=status)


def _schedule(form: ComposeForm):
    """The UTC instant for the date, time and zone given; None when both are empty."""
    day = form.cleaned_data.get("schedule_date")
    clock = form.cleaned_data.get("schedule_time")
    if day is None or clock is None:
        return None
    return scheduling.local_to_utc(day, clock, form.cleaned_data["timezone"])


@login_required
def post_new(request):
    teams = _indented(list(teams_for(user=request.user, roles=[Role.DRAFTER])))
    if not teams:
        return render(request, "publishing/no_drafting.html", status=403)
    if request.method == "POST":
        return _compose_post(request, post=None, teams=teams)
    last_zone = selectors.last_timezone(user=request.user)
    values = {
        "team": str(teams[0].pk) if len(teams) == 1 else "",
        "body": "",
        "link": "",
        "accounts": [],
        "variants": {},
        "media": [],
        "schedule_date": "",
        "schedule_time": "",
        "timezone": last_zone or "UTC",
        "image_alt": "",
    }
    # No zone of their own yet: the browser's, when it is in the list (compose.js).
    return _render_compose(
        request, post=None, teams=teams, values=values, zone_from_browser=not last_zone
    )


@login_required
def post_edit(request, post_id: int):
    post = _get_post(request, post_id)
    if not selectors.can_edit(user=request.user, post=post):
        return _render_post(
            request,
            post,
            error="Only the author or a drafter of the post's team can edit it.",
            status=403,
        )
    if post.status not in EDITABLE_STATUSES:
        return _render_post(
            request,
            post,
            error=f"A post that is {post.get_status_display().lower()} can no longer be edited; "
            "duplicate it to start a new one.",
            status=409,
        )
    if request.method == "POST":
        return _compose_post(request, post=post, teams=[])
    return _render_compose(request, post=post, teams=[], values=_values_from_post(post))


def _compose_post(request, *, post: Post | None, teams: list):
    """Save the form. The form's own image (the upload without JavaScript) goes first, through
    the same service as the API, so a post refused afterwards keeps it attached on the form.
    "Save and submit" saves, then submits: a refused submission leaves the saved draft and says
    why on its page."""
    user = request.user
    form = ComposeForm(request.POST, request.FILES, editing=post is not None)
    if not form.is_valid():
        values = _values_from_form(form, post)
        return _render_compose(
            request, post=post, teams=teams, values=values, errors=_form_errors(form), status=400
        )
    data = form.cleaned_data
    values = _values_from_form(form, post)
    account_order = list(data["accounts"])
    try:
        image = data.get("image")
        if image is not None:
            media = media_services.media_upload(
                by=user,
                file=image,
                alt_text=data["image_alt"],
                team_id=post.team_id if post else data["team"],
                original_name=image.name,
            )
            # Kept on the form from now on, even if the post itself is refused below.
            values["media"].append(media.pk)
            values["image_alt"] = ""
        if data["action"] == "upload":
            if image is None:
                raise ApplicationError(
                    "Choose an image to upload.", {"fields": {"file": ["Choose an image file."]}}
                )
            messages.success(request, "Image uploaded. It is attached when you save the post.")
            return _render_compose(request, post=post, teams=teams, values=values)
        common = {
            "body": data["body"],
            "link": data["link"],
            "targets": [
                services.TargetInput(social_account_id=pk, body=values["variants"].get(pk, ""))
                for pk in account_order
            ],
            "media_ids": values["media"],
            "scheduled_at": _schedule(form),
            "timezone_name": data["timezone"],
        }
        if post is None:
            post = services.post_create(by=user, team_id=data["team"], **common)
            saved = "Draft saved."
        else:
            post = services.post_update(post=post, by=user, **common)
            saved = f"Saved as version {post.version}."
    except ApplicationError as error:
        errors, lead = _service_errors(error, account_order)
        return _render_compose(
            request,
            post=post,
            teams=teams,
            values=values,
            errors=errors,
            lead=lead,
            status=error.status,
        )
    if data["action"] == "submit":
        try:
            services.post_submit(post=post, by=user)
        except ApplicationError as error:
            messages.error(request, f"{saved} It was not submitted: {error.message}")
        else:
            messages.success(request, f"{saved} Submitted for approval.")
    else:
        messages.success(request, saved)
    return redirect("post-detail", post_id=post.pk)


# The post page ---------------------------------------------------------------------------------
@dataclass
class TargetRow:
    target: object
    channel: Channel
    text: str
    rendered: str
    counters: list[Counter]


def _line_diff(old: str, new: str) -> list[tuple[str, str]]:
    """(kind, line) with kind "added", "removed" or "same"; difflib's hint lines left out."""
    rows = []
    for line in difflib.ndiff(old.splitlines(), new.splitlines()):
        kind = {"+ ": "added", "- ": "removed", "  ": "same"}.get(line[:2])
        if kind:
            rows.append((kind, line[2:]))
    return rows


def _version_changes(old: dict, new: dict, handles: dict[int, str]) -> list[str]:
    """What else changed between two snapshots, in words."""
    notes = []
    if old.get("link") != new.get("link"):
        notes.append(f"Link: {old.get('link') or '(none)'} → {new.get('link') or '(none)'}")
    before = {t["social_account"]: t["body"] for t in old.get("targets", [])}
    after = {t["social_account"]: t["body"] for t in new.get("targets", [])}

    def name(pk: int) -> str:
        return handles.get(pk, f"account {pk}")

    added = [name(pk) for pk in after if pk not in before]
    removed = [name(pk) for pk in before if pk not in after]
    if added:
        notes.append("Accounts added: " + ", ".join(added))
    if removed:
        notes.append("Accounts removed: " + ", ".join(removed))
    for pk in after:
        if pk in before and before[pk] != after[pk]:
            notes.append(f"Own text for {name(pk)} changed")
    old_media = [(m["id"], m["alt_text"]) for m in old.get("media", [])]
    new_media = [(m["id"], m["alt_text"]) for m in new.get("media", [])]
    if old_media != new_media:
        notes.append(f"Images changed ({len(old_media)} before, {len(new_media)} now)")
    return notes


def _versions(post: Post) -> list[dict]:
    versions = list(selectors.post_versions(post=post))
    handles = {t.social_account_id: t.social_account.handle for t in post.targets.all()}
    rows = []
    for index, version in enumerate(versions):
        previous = versions[index + 1] if index + 1 < len(versions) else None
        row = {"version": version, "previous": previous, "diff": [], "notes": [], "changed": False}
        if previous is not None:
            row["diff"] = _line_diff(
                previous.content.get("body", ""), version.content.get("body", "")
            )
            row["changed"] = any(kind != "same" for kind, _ in row["diff"])
            row["notes"] = _version_changes(previous.content, version.content, handles)
        rows.append(row)
    return rows


def _render_post(
    request,
    post: Post,
    *,
    error: str = "",
    status: int = 200,
    cancel_form=None,
    break_glass: dict | None = None,
):
    user = request.user
    can_edit = selectors.can_edit(user=user, post=post)
    targets = []
    for target in post.targets.all():
        account = target.social_account
        channel = get_channel(account.channel)
        text = preflight.published_text(post, account.channel, target.body)
        targets.append(
            TargetRow(
                target=target,
                channel=channel,
                text=text,
                rendered=channel.render(text),
                counters=_counters(channel, text),
            )
        )
    findings = preflight.run(post=post)
    schedule = None
    if post.scheduled_at:
        # Formatted here: the template filters would turn it back into the site's zone.
        local = scheduling.utc_to_local(post.scheduled_at, post.timezone)
        utc = post.scheduled_at.astimezone(scheduling.UTC)
        schedule = {
            "local": f"{local:%A} {local.day} {local:%B %Y, %H:%M}",
            "utc": f"{utc:%Y-%m-%d %H:%M}",
            "iso": local.isoformat(),
        }
    may_cancel = post.status in CANCELLABLE_STATUSES and (
        can_edit or user_has_role(user=user, team=post.team, role=Role.LEAD)
    )
    context = {
        "post": post,
        "status_label": PostStatus(post.status).label,
        "targets": targets,
        "media": [item.media for item in post.post_media.all()],
        "schedule": schedule,
        "findings": findings,
        "has_errors": any(f.severity == "error" for f in findings),
        "versions": _versions(post),
        "can_edit": can_edit and post.status in EDITABLE_STATUSES,
        "can_submit": can_edit and post.status == PostStatus.DRAFT,
        "can_cancel": may_cancel,
        "can_duplicate": selectors.can_draft_for_team(user=user, team=post.team),
        "action_error": error,
        "cancel_form": cancel_form,
        # The approval rounds and, for leads, break-glass (approvals.views.break_glass posts).
        "approval": approval_pages.post_section(user=user, post=post, break_glass=break_glass),
    }
    return render(request, "publishing/post_detail.html", context, status=status)


@login_required
def post_detail(request, post_id: int):
    return _render_post(request, _get_post(request, post_id))


@login_required
@require_POST
def post_submit(request, post_id: int):
    post = _get_post(request, post_id)
    try:
        services.post_submit(post=post, by=request.user)
    except ApplicationError as error:
        return _render_post(
            request, _get_post(request, post_id), error=error.message, status=error.status
        )
    messages.success(request, "Submitted for approval.")
    return redirect("post-detail", post_id=post.pk)


@login_required
@require_POST
def post_cancel(request, post_id: int):
    post = _get_post(request, post_id)
    form = CancelForm(request.POST)
    if not form.is_valid():
        return _render_post(
            request,
            post,
            error="The reason has at most 1,000 characters.",
            status=400,
            cancel_form=form,
        )
    try:
        services.post_cancel(post=post, by=request.user, reason=form.cleaned_data["reason"])
    except ApplicationError as error:
        return _render_post(
            request, _get_post(request, post_id), error=error.message, status=error.status
        )
    messages.success(request, "The post is cancelled.")
    return redirect("post-detail", post_id=post.pk)


@login_required
@require_POST
def post_duplicate(request, post_id: int):
    post = _get_post(request, post_id)
    try:
        copy = services.post_duplicate(post=post, by=request.user)
    except ApplicationError as error:
        return _render_post(request, post, error=error.message, status=error.status)
    messages.success(request, f"A new draft copied from post {post.pk}. Edit it, then submit it.")
    return redirect("post-edit", post_id=copy.pk)


# Filters shared by the posts list and the calendar ---------------------------------------------
def _filters(request, *, extra_errors: dict | None = None):
    """(form, teams, accounts, errors). The selects list the user's teams and accounts; a team or
    account that is not among them is a 404, as any object outside the user's scope."""
    user = request.user
    teams = _indented(list(teams_for(user=user)))
    accounts = list(social_accounts_for(user=user).order_by("channel", "handle", "pk"))
    form = PostFilterForm(request.GET)
    errors: dict[str, list[str]] = dict(extra_errors or {})
    selection = {}
    if not form.is_valid():
        errors.update({name: list(found) for name, found in form.errors.items()})
    else:
        team_id = form.cleaned_data.get("team")
        account_id = form.cleaned_data.get("account")
        team = next((team for team in teams if team.pk == team_id), None)
        if team_id is not None and team is None:
            raise Http404
        if account_id is not None and all(account.pk != account_id for account in accounts):
            raise Http404
        selection = {"status": form.statuses(), "team": team, "account_id": account_id}
    given = {name: request.GET.get(name, "") for name in ("status", "team", "account")}
    return selection, teams, accounts, errors, given


def _networks(post: Post) -> list[str]:
    seen: list[str] = []
    for target in post.targets.all():
        label = get_channel(target.social_account.channel).label
        if label not in seen:
            seen.append(label)
    return seen


@login_required
def post_list(request):
    selection, teams, accounts, errors, given = _filters(request)
    context = {
        "teams": teams,
        "accounts": accounts,
        "statuses": PostStatus.choices,
        "given": given,
        "errors": errors,
        "posts": [],
    }
    if errors:
        return render(request, "publishing/post_list.html", context, status=400)
    before = request.GET.get("before", "")
    valid = before.isascii() and before.isdecimal() and len(before) < 19
    before_id = int(before) if valid else None
    posts = selectors.post_list_page(
        user=request.user, before_id=before_id, size=PAGE_SIZE, **selection
    )
    has_more = len(posts) > PAGE_SIZE
    posts = posts[:PAGE_SIZE]
    for post in posts:
        post.networks = _networks(post)
        post.first_line = next((line for line in post.body.splitlines() if line.strip()), "")
    query = [(name, value) for name, value in given.items() if value]
    context.update(
        posts=posts,
        older_url=f"?{urlencode([*query, ('before', posts[-1].pk)])}" if has_more else None,
        newest_url=f"?{urlencode(query)}" if before_id is not None else None,
    )
    return render(request, "publishing/post_list.html", context)


# The calendar ----------------------------------------------------------------------------------
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
