"""Compose and edit a post: per-account texts, live counters, images, schedule."""

import re
from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts.models import Role
from accounts.selectors import teams_for
from cxhub.errors import ApplicationError
from networks.channels import all_channels, get_channel
from networks.channels.base import Channel
from networks.channels.text import COMMON_TLDS
from networks.channels.x import DEFAULT_WEIGHT, LIGHT_RANGES
from networks.models import SocialAccount

from .. import media_services, preflight, scheduling, selectors, services
from ..forms import ComposeForm
from ..models import EDITABLE_STATUSES, Post
from .common import Counter, _counters, _get_post, _indented, _timezones
from .post_page import _render_post


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


def _compose_data(accounts=()) -> dict:
    """What compose.js needs to count as each network counts (from the channels themselves),
    with the limits of accounts that have their own (a Mastodon server's)."""
    own = {}
    for account in accounts:
        limits = preflight.account_limits(account)
        if limits is not None:
            own[str(account.pk)] = get_channel(account.channel).counter_spec(limits)
    return {
        "channels": {channel.name: channel.counter_spec() for channel in all_channels()},
        "accounts": own,
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
            counters=_counters(channel, text, preflight.account_limits(account)),
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
        "compose_data": _compose_data(accounts),
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
