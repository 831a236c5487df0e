"""Pages of the approvals app: the approval inbox; the review page (what each network will show,
the media with their alt text, the chain, and a diff against the version this approver last saw)
with its decide form; break-glass, whose form is in the post page's approval section
(approvals/sections.py), and which shows the post page again (publishing/views/post_page.py)
when it is refused.

Views parse the form, call one service and render. A service's ApplicationError comes back on
the page with its status (400 bad input, 403 not allowed, 409 wrong state); a request the user
may not see is a 404. A decision sent by review.js (`X-Requested-With: fetch`) is answered with
an HTML fragment (the decision panel, the chain, a one-line result) that the script puts in place.
"""

from dataclasses import dataclass, field

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, OuterRef, Subquery
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from cxhub.errors import ApplicationError
from networks.channels import Channel, get_channel
from networks.models import SocialAccount
from publishing import hooks as post_hooks
from publishing import preflight
from publishing import selectors as post_selectors
from publishing.models import Post
from publishing.versions import line_diff, line_diff_lines
from publishing.views.post_page import _render_post

from . import selectors, services
from .forms import BreakGlassForm, DecideForm
from .models import (
    ApprovalRequest,
    ApprovalStep,
    RequestStatus,
    StepStatus,
    Verdict,
)
from .sections import _chain

_DONE = {
    Verdict.APPROVE: "You approved version {version}.",
    Verdict.REQUEST_CHANGES: "You requested changes to version {version}: it is back with its "
    "author.",
    Verdict.REJECT: "You rejected version {version}.",
}


def _is_fetch(request) -> bool:
    return request.headers.get("X-Requested-With") == "fetch"


# The inbox -------------------------------------------------------------------------------------
@login_required
def inbox(request):
    """Steps waiting for me, oldest first. One query whatever their number (the stage count of
    each request is a subquery of it)."""
    now = timezone.now()
    stage_count = (
        ApprovalStep.objects.filter(request=OuterRef("request_id"))
        .order_by()
        .values("request")
        .annotate(total=Count("pk"))
        .values("total")
    )
    steps = list(selectors.inbox_for(user=request.user).annotate(stage_count=Subquery(stage_count)))
    for step in steps:
        step.overdue = selectors.is_overdue(step, now)
    context = {"steps": steps, "overdue_count": sum(step.overdue for step in steps)}
    return render(request, "approvals/inbox.html", context)


# The review page -------------------------------------------------------------------------------
@dataclass
class Preview:
    account: SocialAccount
    channel: Channel
    own_text: bool
    text: str
    rendered: str


@dataclass
class DiffSection:
    title: str
    rows: list[tuple[str, str]]


@dataclass
class Panel:
    """The decision panel: the form when the user may decide now, else why not."""

    can_decide: bool
    reason: str = ""
    newer: ApprovalRequest | None = None
    error: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)


def _get_request(request, request_id: int) -> ApprovalRequest:
    found = selectors.request_get(user=request.user, request_id=request_id)
    if found is None:
        raise Http404
    return found


def _media_lines(content: dict) -> list[str]:
    return [
        f"Image {number} ({item.get('sha256', '')[:8]}), alt text: {item.get('alt_text', '')}"
        for number, item in enumerate(content.get("media", []), start=1)
    ]


def _content_diff(old: dict, new: dict, handles: dict[int, str]) -> list[DiffSection]:
    """What changed between two PostVersion snapshots, section by section (only the sections
    that changed)."""

    def handle(pk: int) -> str:
        return handles.get(pk, f"account {pk}")

    before = {t["social_account"]: t.get("body", "") for t in old.get("targets", [])}
    after = {t["social_account"]: t.get("body", "") for t in new.get("targets", [])}
    sections = [
        DiffSection(
            "Main text", line_diff_lines(old["body"].splitlines(), new["body"].splitlines())
        ),
        DiffSection(
            "Accounts",
            line_diff_lines(
                sorted(handle(pk) for pk in before), sorted(handle(pk) for pk in after)
            ),
        ),
    ]
    for pk in sorted(set(before) | set(after), key=handle):
        old_text, new_text = before.get(pk, ""), after.get(pk, "")
        if old_text != new_text:
            rows = line_diff(old_text, new_text)
            sections.append(DiffSection(f"Own text for {handle(pk)}", rows))
    links = [[c["link"]] if c.get("link") else [] for c in (old, new)]
    sections.append(DiffSection("Link", line_diff_lines(*links)))
    sections.append(
        DiffSection("Images and alt text", line_diff_lines(_media_lines(old), _media_lines(new)))
    )
    return [s for s in sections if any(kind != "same" for kind, _ in s.rows)]


def _panel(user, approval: ApprovalRequest, rounds: list[ApprovalRequest], **given) -> Panel:
    newest = rounds[0] if rounds else None
    newer = newest if newest is not None and newest.pk > approval.pk else None
    mine = next((d for d in approval.decisions.all() if d.user_id == user.pk), None)
    active = next((s for s in approval.steps.all() if s.status == StepStatus.ACTIVE), None)
    if mine is not None:
        reason = (
            f"You decided “{mine.get_verdict_display()}” on version {approval.version}, "
            f"{mine.created_at:%Y-%m-%d %H:%M} UTC."
        )
    elif approval.post.author_id == user.pk:
        reason = "This is your post: other people decide on it."
    elif approval.status != RequestStatus.OPEN:
        reason = f"This approval round is {approval.get_status_display().lower()}."
    elif active is None or all(u.pk != user.pk for u in active.eligible.all()):
        stage = f" (“{active.name}”)" if active else ""
        reason = f"You are not one of the people who decide the current stage{stage}."
    else:
        return Panel(can_decide=True, newer=newer, **given)
    return Panel(can_decide=False, reason=reason, newer=newer, **given)


def _review_context(request, approval: ApprovalRequest, **panel) -> dict:
    user = request.user
    post = approval.post
    now = timezone.now()
    rounds = list(selectors.requests_of_post(post=post))
    versions = {v.version: v for v in post_selectors.post_versions(post=post)}
    shown = versions.get(approval.version)
    content = shown.content if shown else {"body": post.body, "link": post.link}

    targets = content.get("targets", [])
    accounts = SocialAccount.objects.in_bulk([t["social_account"] for t in targets])
    probe = Post(body=content.get("body", ""), link=content.get("link", ""))
    previews = []
    for target in targets:
        account = accounts.get(target["social_account"])
        if account is None:
            continue
        channel = get_channel(account.channel)
        text = preflight.published_text(probe, account.channel, target.get("body", ""))
        previews.append(
            Preview(account, channel, bool(target.get("body")), text, channel.render(text))
        )
    previews.sort(key=lambda p: (p.channel.label, p.account.handle))

    # Against what this approver last saw: their latest decision on an earlier round of the post;
    # else the version before this one.
    base, seen_by_me = None, False
    for earlier in rounds:  # newest first
        if earlier.pk < approval.pk and any(d.user_id == user.pk for d in earlier.decisions.all()):
            base, seen_by_me = earlier.version, True
            break
    if base is None:
        base = max((v for v in versions if v < approval.version), default=None)
    diff = None
    if base is not None and base in versions and shown is not None:
        handles = {pk: account.handle for pk, account in accounts.items()}
        old_ids = [t["social_account"] for t in versions[base].content.get("targets", [])]
        missing = [pk for pk in old_ids if pk not in handles]
        if missing:
            handles.update((a.pk, a.handle) for a in SocialAccount.objects.filter(pk__in=missing))
        diff = {
            "base": base,
            "seen_by_me": seen_by_me,
            "sections": _content_diff(versions[base].content, content, handles),
        }

    return {
        "approval": approval,
        "post": post,
        # What the post stands in (the inbox: the item a reply answers), as on the post page.
        "context_sections": [
            section
            for section in post_hooks.post_context_sections.send(user=user, post=post)
            if section is not None
        ],
        "previews": previews,
        "media": [
            {"number": number, "id": item["id"], "alt_text": item.get("alt_text", "")}
            for number, item in enumerate(content.get("media", []), start=1)
        ],
        "diff": diff,
        "chain": _chain(approval, now),
        "panel": _panel(user, approval, rounds, **panel),
        "verdicts": Verdict.choices,
    }


@login_required
@require_http_methods(["GET", "POST"])
def review(request, request_id: int):
    approval = _get_request(request, request_id)
    if request.method == "POST":
        return _decide(request, approval)
    return render(request, "approvals/review.html", _review_context(request, approval))


def _decide(request, approval: ApprovalRequest):
    form = DecideForm(request.POST)
    values = {
        "verdict": request.POST.get("verdict", ""),
        "comment": request.POST.get("comment", ""),
    }
    if form.is_valid():
        verdict = form.cleaned_data["verdict"]
        try:
            services.decide(
                request=approval,
                by=request.user,
                verdict=verdict,
                comment=form.cleaned_data["comment"],
            )
        except ApplicationError as error:
            fields = error.extra.get("fields") if isinstance(error.extra, dict) else None
            errors = {
                name: [str(m) for m in (found if isinstance(found, list) else [found])]
                for name, found in (fields or {}).items()
                if name in ("verdict", "comment")
            }
            message, status = error.message, error.status
        else:
            done = _DONE[verdict].format(version=approval.version)
            if not _is_fetch(request):
                messages.success(request, done)
                return redirect("approval-review", request_id=approval.pk)
            fresh = _get_request(request, approval.pk)
            context = _review_context(request, fresh)
            context["result"] = f"{done} {context['chain'].standing}"
            return render(request, "approvals/_decided.html", context)
    else:
        errors = {name: list(found) for name, found in form.errors.items()}
        problems = " ".join(message for found in errors.values() for message in found)
        message, status = f"Your decision was not sent: {problems}", 400
    fresh = _get_request(request, approval.pk)
    context = _review_context(request, fresh, error=message, errors=errors, values=values)
    if _is_fetch(request):
        context["result"] = message
        return render(request, "approvals/_decided.html", context, status=status)
    return render(request, "approvals/review.html", context, status=status)


# Break-glass ----------------------------------------------------------------------------------
@login_required
@require_POST
def break_glass(request, post_id: int):
    post = post_selectors.post_get(user=request.user, post_id=post_id)
    if post is None:
        raise Http404
    form = BreakGlassForm(request.POST)
    typed = request.POST.get("justification", "")
    if not form.is_valid():
        found = form.errors.get("justification", [])
        given = {"justification": typed, "errors": list(found)}
        return _render_post(
            request, post, error=" ".join(found), status=400, given={"break_glass": given}
        )
    try:
        services.break_glass(
            post=post, by=request.user, justification=form.cleaned_data["justification"]
        )
    except ApplicationError as error:
        fields = error.extra.get("fields") if isinstance(error.extra, dict) else None
        found = (fields or {}).get("justification", [])
        given = {"justification": typed, "errors": [str(m) for m in found]}
        fresh = post_selectors.post_get(user=request.user, post_id=post_id)
        return _render_post(
            request, fresh, error=error.message, status=error.status, given={"break_glass": given}
        )
    messages.warning(
        request,
        "Break-glass used: the post is approved and released. It is recorded in the audit trail "
        "and the skipped approvers are told.",
    )
    return redirect("post-detail", post_id=post.pk)
