"""The post page as every page that shows it renders it: the publishing pages, and approvals'
break-glass when it is refused (approvals/views.py). What each account will publish with its
counters, the schedule, the preflight findings, the versions with their diffs, the actions the
user may take, and the sections the apps above publishing add to it (publishing.hooks.
post_page_sections: approvals' rounds and break-glass form, approvals/sections.py).
"""

from dataclasses import dataclass

from django.shortcuts import render

from accounts.models import Role
from accounts.selectors import user_has_role
from networks.channels import get_channel
from networks.channels.base import Channel

from .. import hooks, preflight, scheduling, selectors
from ..models import CANCELLABLE_STATUSES, EDITABLE_STATUSES, Post, PostStatus
from ..versions import line_diff, version_notes
from .common import Counter, _counters


@dataclass(frozen=True)
class PageSection:
    """A section an app above publishing adds to the post page: its template, included with
    `section` set to the context."""

    template: str
    context: dict


@dataclass
class TargetRow:
    target: object
    channel: Channel
    text: str
    rendered: str
    counters: list[Counter]


# The engagement chart's drawing box, in SVG user units (it scales with the page).
CHART_WIDTH, CHART_HEIGHT = 320, 90


@dataclass(frozen=True)
class EngagementRow:
    """One published target's figures for the page: the latest reading, the chart's lines and
    the readings as a table (the chart's data beside it)."""

    target: object
    channel: Channel
    latest: object
    readings: list
    lines: list[dict]
    # The chart's scale: from 0 to this, the same for every line.
    top: int


def _chart_line(values: list[int | None], name: str, top: int) -> dict | None:
    """The polyline points of one figure over the readings, on the box's scale of 0 to `top`
    (None when the network gave no figure)."""
    known = [(index, value) for index, value in enumerate(values) if value is not None]
    if not known:
        return None
    step = CHART_WIDTH / max(len(values) - 1, 1)
    points = " ".join(
        f"{index * step:.1f},{CHART_HEIGHT - value / top * (CHART_HEIGHT - 4) - 2:.1f}"
        for index, value in known
    )
    return {"name": name, "points": points, "last": known[-1][1]}


def _engagement(post: Post) -> list[EngagementRow]:
    rows = []
    for item in selectors.post_engagement(post=post):
        if not item.series:
            continue
        names = ("likes", "reposts", "replies")
        values = {name: [getattr(reading, name) for reading in item.series] for name in names}
        top = max((v for series in values.values() for v in series if v is not None), default=0)
        lines = [_chart_line(values[name], name, top or 1) for name in names]
        rows.append(
            EngagementRow(
                target=item.target,
                channel=get_channel(item.target.social_account.channel),
                latest=item.latest,
                readings=item.series,
                lines=[line for line in lines if line is not None],
                top=top,
            )
        )
    return rows


def _versions(post: Post) -> list[dict]:
    versions = list(selectors.post_versions(post=post))
    handles = {t.social_account_id: t.social_account.handle for t in post.targets.all()}
    rows = []
    for index, version in enumerate(versions):
        previous = versions[index + 1] if index + 1 < len(versions) else None
        row = {"version": version, "previous": previous, "diff": [], "notes": [], "changed": False}
        if previous is not None:
            row["diff"] = line_diff(
                previous.content.get("body", ""), version.content.get("body", "")
            )
            row["changed"] = any(kind != "same" for kind, _ in row["diff"])
            row["notes"] = version_notes(previous.content, version.content, handles)
        rows.append(row)
    return rows


def _render_post(
    request,
    post: Post,
    *,
    error: str = "",
    status: int = 200,
    cancel_form=None,
    given: dict | None = None,
):
    """The post page; `given` goes to the sections' handlers (publishing.hooks)."""
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
                counters=_counters(channel, text, preflight.account_limits(account)),
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
        "engagement": _engagement(post),
        "chart": {"width": CHART_WIDTH, "height": CHART_HEIGHT},
        "can_edit": can_edit and post.status in EDITABLE_STATUSES,
        "can_submit": can_edit and post.status == PostStatus.DRAFT,
        "can_cancel": may_cancel,
        "can_duplicate": selectors.can_draft_for_team(user=user, team=post.team),
        "action_error": error,
        "cancel_form": cancel_form,
        # What the post stands in (the inbox: the item a reply answers), then the sections of
        # the apps above (approvals' rounds and, for leads, break-glass).
        "sections": [
            section
            for section in hooks.post_context_sections.send(user=user, post=post)
            if section is not None
        ]
        + [
            section
            for section in hooks.post_page_sections.send(user=user, post=post, given=given or {})
            if section is not None
        ],
    }
    return render(request, "publishing/post_detail.html", context, status=status)
