"""Pages of the approvals app: the approval inbox; the review page (what each network will show,
the media with their alt text, the chain, and a diff against the version this approver last saw)
with its decide form; the approval section of the post page; break-glass.

Views parse the form, call one service and render. A service's ApplicationError comes back on
the page with its status (400 bad input, 403 not allowed, 409 wrong state); a request the user
may not see is a 404. A decision sent by review.js (`X-Requested-With: fetch`) is answered with
an HTML fragment (the decision panel, the chain, a one-line result) that the script puts in place.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, OuterRef, Subquery, prefetch_related_objects
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Role
from accounts.selectors import user_has_role
from cxhub.errors import ApplicationError
from networks.channels import Channel, get_channel
from networks.models import SocialAccount
from publishing import preflight
from publishing import selectors as post_selectors
from publishing.models import Post, PostStatus
from publishing.versions import line_diff, line_diff_lines

from . import selectors, services
from .forms import BreakGlassForm, DecideForm
from .models import (
    ApprovalRequest,
    ApprovalStep,
    Decision,
    RequestStatus,
    Rule,
    StepStatus,
    Verdict,
)

# Break-glass releases posts in these states (the service has the final word).
BREAK_GLASS_STATUSES = (PostStatus.DRAFT, PostStatus.IN_REVIEW, PostStatus.NEEDS_RESCHEDULE)

_DONE = {
    Verdict.APPROVE: "You approved version {version}.",
    Verdict.REQUEST_CHANGES: "You requested changes to version {version}: it is back with its "
    "author.",
    Verdict.REJECT: "You rejected version {version}.",
}


def _is_fetch(request) -> bool:
    return request.headers.get("X-Requested-With") == "fetch"


def _names(people: list[str], last: str) -> str:
    """Names joined as people write them: a; a or b; a, b or c."""
    if len(people) < 2:
        return "".join(people)
    return f"{', '.join(people[:-1])} {last} {people[-1]}"


# The chain, as the review page and the post page show it --------------------------------------
@dataclass
class StepRow:
    step: ApprovalStep
    deciders: list[str]
    rule: str
    decisions: list[Decision]
    overdue: bool


@dataclass
class Chain:
    request: ApprovalRequest
    steps: list[StepRow]
    standing: str

    @property
    def stage_count(self) -> int:
        return len(self.steps)


def _rule(step: ApprovalStep) -> str:
    if step.rule == Rule.QUORUM:
        return f"{step.quorum} of them"
    return Rule(step.rule).label


def _standing(approval: ApprovalRequest, rows: list[StepRow]) -> str:
    """Where the post stands in this round, in one sentence."""
    count = len(rows)
    if approval.status == RequestStatus.OPEN:
        row = next((r for r in rows if r.step.status == StepStatus.ACTIVE), None)
        if row is None:
            return "Waiting for its first stage to start."
        step = row.step
        decided = {d.user_id for d in approval.decisions.all()}
        waiting = sorted(str(u) for u in step.eligible.all() if u.is_active and u.pk not in decided)
        if not waiting:
            who = "no one who may still decide: ask an administrator"
        elif step.rule == Rule.ALL:
            who = _names(waiting, "and")
        elif step.rule == Rule.QUORUM:
            approvals = sum(d.verdict == Verdict.APPROVE for d in row.decisions)
            more = max((step.quorum or 1) - approvals, 1)
            who = f"{more} more of {_names(waiting, 'and')}"
        else:
            who = _names(waiting, "or")
        late = " (overdue)" if row.overdue else ""
        return f"Stage {step.order} of {count}: {step.name} — waiting for {who}{late}"
    if approval.status == RequestStatus.APPROVED:
        if approval.break_glass:
            return (
                "Released by break-glass, without the remaining approvers. Justification: "
                f"{approval.break_glass_justification}"
            )
        return f"Approved at every stage ({count} of {count}) on version {approval.version}."
    if approval.status in (RequestStatus.CHANGES_REQUESTED, RequestStatus.REJECTED):
        verdict = (
            Verdict.REJECT if approval.status == RequestStatus.REJECTED else Verdict.REQUEST_CHANGES
        )
        for row in rows:
            decision = next((d for d in row.decisions if d.verdict == verdict), None)
            if decision is not None:
                what = "Rejected" if verdict == Verdict.REJECT else "Changes requested"
                return (
                    f"{what} at stage {row.step.order} of {count} ({row.step.name}) by "
                    f"{decision.user}: “{decision.comment}”"
                )
        return f"{approval.get_status_display()}."
    return (
        f"Superseded: version {approval.version} was edited or cancelled before the chain "
        "finished, so its decisions no longer count."
    )


def _chain(approval: ApprovalRequest, now) -> Chain:
    """Steps (with `eligible` prefetched) and decisions (prefetched) of one request."""
    by_step: dict[int, list[Decision]] = defaultdict(list)
    for decision in approval.decisions.all():
        by_step[decision.step_id].append(decision)
    rows = [
        StepRow(
            step=step,
            deciders=sorted(str(user) for user in step.eligible.all()),
            rule=_rule(step),
            decisions=by_step.get(step.pk, []),
            overdue=step.status == StepStatus.ACTIVE and selectors.is_overdue(step, now),
        )
        for step in approval.steps.all()
    ]
    return Chain(request=approval, steps=rows, standing=_standing(approval, rows))


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


# The post page's approval section, and break-glass ---------------------------------------------
def post_section(*, user, post: Post, break_glass: dict | None = None) -> dict:
    """The approval rounds of `post` (newest first, with their chains), and the break-glass form
    for the leads of its team."""
    rounds = list(selectors.requests_of_post(post=post))
    prefetch_related_objects(rounds, "steps__eligible")
    now = timezone.now()
    chains = [_chain(approval, now) for approval in rounds]
    may_break_glass = post.status in BREAK_GLASS_STATUSES and user_has_role(
        user=user, team=post.team, role=Role.LEAD
    )
    return {
        "current": chains[0] if chains else None,
        "past": chains[1:],
        "can_break_glass": may_break_glass,
        "break_glass": break_glass or {},
        "min_justification": services.MIN_JUSTIFICATION,
    }


@login_required
@require_POST
def break_glass(request, post_id: int):
    # Imported here: the post page (publishing.views) imports this module for its section.
    from publishing.views import _render_post

    post = post_selectors.post_get(user=request.user, post_id=post_id)
    if post is None:
        raise Http404
    form = BreakGlassForm(request.POST)
    typed = request.POST.get("justification", "")
    if not form.is_valid():
        found = form.errors.get("justification", [])
        given = {"justification": typed, "errors": list(found)}
        return _render_post(request, post, error=" ".join(found), status=400, break_glass=given)
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
            request, fresh, error=error.message, status=error.status, break_glass=given
        )
    messages.warning(
        request,
        "Break-glass used: the post is approved and released. It is recorded in the audit trail "
        "and the skipped approvers are told.",
    )
    return redirect("post-detail", post_id=post.pk)
