"""Every write of the approval chain: open a request at submit, decide, supersede on edit,
escalate overdue steps, break-glass. Each in a transaction, each audited.

One function, `_advance`, decides what comes next after a decision: the next step, changes
requested, rejected, or finished (and then the post is approved for its exact content_hash).
"""

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role, User
from accounts.notifications import notify
from accounts.selectors import user_has_role
from audit.services import record
from cxhub.errors import ApplicationError, InvalidTransition, NotAllowed
from publishing import preflight
from publishing import services as publishing
from publishing.models import Post, PostStatus

from . import routing
from .models import (
    ApprovalRequest,
    ApprovalStep,
    Decision,
    RequestStatus,
    StepStatus,
    Verdict,
)

MIN_JUSTIFICATION = 20


def _post_url(post) -> str:
    try:
        return reverse("post-detail", kwargs={"post_id": post.pk})
    except Exception:  # the pages may not be mounted (API-only deployments)
        return f"/posts/{post.pk}/"


def _activate(step: ApprovalStep, now: datetime) -> None:
    step.status = StepStatus.ACTIVE
    step.activated_at = now
    step.due_at = now + timedelta(hours=step.sla_hours)
    step.save(update_fields=["status", "activated_at", "due_at"])
    post = step.request.post
    notify(
        users=step.eligible.all(),
        kind="approval.waiting",
        title=f"Approval needed: post #{post.pk} ({step.name})",
        body=f"{post.body[:280]}\n\nDue {step.due_at:%Y-%m-%d %H:%M} UTC.",
        url=_post_url(post),
        post_id=post.pk,
    )


def request_open(*, post, by: User, now: datetime | None = None) -> ApprovalRequest:
    """Resolve the chain for `post` (in review, locked by the caller) and copy it into a request.

    Called by publishing.services.post_submit inside its transaction.
    """
    now = now or timezone.now()
    chain = routing.plan_chain(post=post)
    if not chain:
        return _approve_without_chain(post=post, by=by, now=now)
    for step in chain:
        if not step.eligible:
            raise ApplicationError(
                f"No one can decide the stage “{step.name}” ({step.source}): it needs someone "
                "other than the author. Ask an administrator to fix the approval policy.",
                {"stage": step.name},
            )
    request = _new_request(post)
    steps = []
    for order, planned in enumerate(chain, start=1):
        step = ApprovalStep.objects.create(
            request=request,
            order=order,
            name=planned.name,
            source=planned.source,
            rule=planned.rule,
            quorum=planned.quorum,
            decider_team=planned.decider_team,
            decider_role=planned.decider_role,
            sla_hours=planned.sla_hours,
            escalate_to_team=planned.escalate_to_team,
            escalate_to_role=planned.escalate_to_role,
        )
        step.eligible.set(planned.eligible)
        steps.append(step)
    _activate(steps[0], now)
    record(
        actor=by,
        action="approval.requested",
        obj=request,
        team=post.team,
        data={
            "post": post.pk,
            "version": post.version,
            "content_hash": post.content_hash,
            "steps": [
                {
                    "order": s.order,
                    "name": s.name,
                    "source": s.source,
                    "rule": s.rule,
                    "quorum": s.quorum,
                    "eligible": [u.pk for u in p.eligible],
                }
                for s, p in zip(steps, chain, strict=True)
            ],
        },
    )
    return request


def _new_request(post, **fields) -> ApprovalRequest:
    """The post's request for its current content (one open request a post: the database says)."""
    try:
        with transaction.atomic():
            return ApprovalRequest.objects.create(
                post=post, version=post.version, content_hash=post.content_hash, **fields
            )
    except IntegrityError:
        raise InvalidTransition("This post is already waiting for approval.") from None


def _approve_without_chain(*, post, by: User, now: datetime) -> ApprovalRequest:
    """A reply that its team's policy lets through without approval: the request is made and
    closed approved at once, so the trail shows which policy let it pass and on what content."""
    policy = routing.team_policy_for(post.team)
    request = _new_request(post, status=RequestStatus.APPROVED, closed_at=now)
    record(
        actor=by,
        action="approval.not_needed",
        obj=request,
        team=post.team,
        data={
            "post": post.pk,
            "version": post.version,
            "content_hash": post.content_hash,
            "reason": "replies need no approval",
            "policy": policy.pk if policy else None,
            "policy_name": policy.name if policy else "",
        },
    )
    publishing.post_approved(post=post, content_hash=post.content_hash, by=by, now=now)
    return request


def requests_supersede(*, post, by: User | None, reason: str) -> int:
    """Close the post's open request: its decisions no longer count (the content changed, or
    the post was cancelled). Called inside the publishing service's transaction."""
    now = timezone.now()
    closed = 0
    for request in ApprovalRequest.objects.select_for_update().filter(
        post=post, status=RequestStatus.OPEN
    ):
        request.status = RequestStatus.SUPERSEDED
        request.closed_at = now
        request.save(update_fields=["status", "closed_at"])
        request.steps.filter(status__in=[StepStatus.WAITING, StepStatus.ACTIVE]).update(
            status=StepStatus.CLOSED, completed_at=now
        )
        record(
            actor=by,
            action="approval.superseded",
            obj=request,
            team=post.team,
            data={"post": post.pk, "version": request.version, "reason": reason},
        )
        closed += 1
    return closed


def _lock_request(request_id: int) -> ApprovalRequest:
    return (
        ApprovalRequest.objects.select_for_update().select_related("post__team").get(pk=request_id)
    )


def is_eligible(*, step: ApprovalStep, user: User) -> bool:
    return step.eligible.filter(pk=user.pk, is_active=True).exists()


@transaction.atomic
def decide(
    *, request: ApprovalRequest, by: User, verdict: str, comment: str = ""
) -> ApprovalRequest:
    """Record `by`'s verdict on the request's active step, then advance the chain.

    The request row is locked first, so two approvers deciding at the same instant are taken
    one after the other: an `any` step advances exactly once.
    """
    if verdict not in Verdict.values:
        raise ApplicationError(
            f"Unknown verdict {verdict!r}.",
            {"fields": {"verdict": [f"One of {', '.join(Verdict.values)}."]}},
        )
    comment = (comment or "").strip()
    if verdict != Verdict.APPROVE and not comment:
        raise ApplicationError(
            "Say what must change (or why it is rejected): the author sees your comment.",
            {"fields": {"comment": ["Required when requesting changes or rejecting."]}},
        )
    request = _lock_request(request.pk)
    post = request.post
    if request.status != RequestStatus.OPEN:
        if request.status == RequestStatus.SUPERSEDED:
            raise InvalidTransition(
                "This version was changed after you opened it: review the new version.",
                {"request": request.status},
            )
        raise InvalidTransition(
            f"This approval is already {request.get_status_display().lower()}.",
            {"request": request.status},
        )
    if post.content_hash != request.content_hash:
        raise InvalidTransition(
            "The post changed since this version was submitted: review the new version."
        )
    if post.author_id == by.pk:
        raise NotAllowed("No one decides on their own post.")
    step = request.steps.filter(status=StepStatus.ACTIVE).order_by("order").first()
    if step is None:
        raise InvalidTransition("No step of this approval is waiting for a decision.")
    if Decision.objects.filter(request=request, user=by).exists():
        raise InvalidTransition("You have already decided on this version of the post.")
    if not is_eligible(step=step, user=by):
        raise NotAllowed(f"You are not one of the people who decide “{step.name}”.")
    blocked = _later_step_needing(request, step, by)
    if blocked is not None:
        raise NotAllowed(
            f"You are needed for the later stage “{blocked.name}”, and one person decides once "
            "per post: let another approver decide this stage."
        )
    Decision.objects.create(
        request=request,
        step=step,
        user=by,
        verdict=verdict,
        comment=comment,
        content_hash=request.content_hash,
    )
    record(
        actor=by,
        action=f"approval.{verdict}",
        obj=request,
        team=post.team,
        data={
            "post": post.pk,
            "step": step.order,
            "step_name": step.name,
            "version": request.version,
            "content_hash": request.content_hash,
            "comment": comment[:2000],
        },
    )
    _advance(request, step, by)
    return request


def _decided_user_ids(request: ApprovalRequest) -> set[int]:
    return set(Decision.objects.filter(request=request).values_list("user_id", flat=True))


def _required(step: ApprovalStep, decided_elsewhere: set[int]) -> int:
    """Approvals the step needs: `all` means all its people who have not decided an earlier
    stage of the same request (one person decides once per request)."""
    eligible = {u.pk for u in step.eligible.all() if u.is_active}
    return step.required_approvals(len(eligible - decided_elsewhere))


def _later_step_needing(
    request: ApprovalRequest, step: ApprovalStep, by: User
) -> ApprovalStep | None:
    """A later step that could no longer be decided if `by` decided this one."""
    decided = _decided_user_ids(request) | {by.pk}
    for later in request.steps.filter(order__gt=step.order).prefetch_related("eligible"):
        eligible = {u.pk for u in later.eligible.all() if u.is_active}
        if by.pk not in eligible:
            continue
        needed = later.quorum or 1 if later.rule == "quorum" else 1
        if len(eligible - decided) < needed:
            return later
    return None


def _advance(request: ApprovalRequest, step: ApprovalStep, by: User) -> None:
    """What comes next after a decision on `step`."""
    now = timezone.now()
    post = request.post
    verdicts = list(
        step.decisions.filter(content_hash=request.content_hash).values_list("verdict", flat=True)
    )
    if Verdict.REJECT in verdicts or Verdict.REQUEST_CHANGES in verdicts:
        rejected = Verdict.REJECT in verdicts
        step.status = StepStatus.REJECTED if rejected else StepStatus.CHANGES_REQUESTED
        step.completed_at = now
        step.save(update_fields=["status", "completed_at"])
        request.status = RequestStatus.REJECTED if rejected else RequestStatus.CHANGES_REQUESTED
        request.closed_at = now
        request.save(update_fields=["status", "closed_at"])
        request.steps.filter(status=StepStatus.WAITING).update(status=StepStatus.CLOSED)
        comment = step.decisions.filter(user=by).values_list("comment", flat=True).first() or ""
        if rejected:
            publishing.post_rejected(post=post, by=by, comment=comment)
        else:
            publishing.post_changes_requested(post=post, by=by, comment=comment)
        notify(
            users=[post.author],
            kind="approval.rejected" if rejected else "approval.changes_requested",
            title=(
                f"Post #{post.pk} was rejected"
                if rejected
                else f"Changes requested on post #{post.pk}"
            ),
            body=f"{by} ({step.name}): {comment}",
            url=_post_url(post),
            post_id=post.pk,
        )
        return
    approvals = verdicts.count(Verdict.APPROVE)
    decided_elsewhere = set(
        Decision.objects.filter(request=request)
        .exclude(step=step)
        .values_list("user_id", flat=True)
    )
    if approvals < _required(step, decided_elsewhere):
        return
    step.status = StepStatus.APPROVED
    step.completed_at = now
    step.save(update_fields=["status", "completed_at"])
    following = request.steps.filter(status=StepStatus.WAITING).order_by("order").first()
    if following is not None:
        _activate(following, now)
        return
    request.status = RequestStatus.APPROVED
    request.closed_at = now
    request.save(update_fields=["status", "closed_at"])
    post = publishing.post_approved(post=post, content_hash=request.content_hash, by=by, now=now)
    late = post.status == post.Status.NEEDS_RESCHEDULE
    deciders = User.objects.filter(
        pk__in=Decision.objects.filter(request=request).values("user_id")
    )
    notify(
        users=[post.author, *(deciders if late else [])],
        kind="post.needs_reschedule" if late else "post.approved",
        title=(
            f"Post #{post.pk} was approved after its time: choose a new time"
            if late
            else f"Post #{post.pk} is approved"
        ),
        url=_post_url(post),
        post_id=post.pk,
    )


@transaction.atomic
def escalate_overdue(*, now: datetime | None = None) -> int:
    """Tell each overdue step's escalation target, once, and record it. Returns how many."""
    now = now or timezone.now()
    overdue = list(
        ApprovalStep.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(status=StepStatus.ACTIVE, due_at__lt=now, escalated_at__isnull=True)
        .select_related("request__post__team", "escalate_to_team")
    )
    for step in overdue:
        step.escalated_at = now
        step.save(update_fields=["escalated_at"])
        post = step.request.post
        targets = routing.escalation_targets(step)
        notify(
            users=targets,
            kind="approval.escalated",
            title=f"Overdue approval: post #{post.pk} ({step.name})",
            body=f"Due {step.due_at:%Y-%m-%d %H:%M} UTC; still waiting for a decision.",
            url=_post_url(post),
            post_id=post.pk,
        )
        record(
            actor=None,
            action="approval.escalated",
            obj=step.request,
            team=post.team,
            data={
                "post": post.pk,
                "step": step.order,
                "step_name": step.name,
                "due_at": step.due_at,
                "notified": [u.pk for u in targets],
            },
        )
    return len(overdue)


@transaction.atomic
def break_glass(*, post, by: User, justification: str):
    """A lead approves and releases a post at once, with a written justification: loud in the
    audit trail, and every skipped approver is told."""
    justification = (justification or "").strip()
    if len(justification) < MIN_JUSTIFICATION:
        raise ApplicationError(
            f"Write why this cannot wait for the approvers (at least {MIN_JUSTIFICATION} "
            "characters): it is recorded and sent to them.",
            {"fields": {"justification": [f"At least {MIN_JUSTIFICATION} characters."]}},
        )
    post = Post.objects.select_for_update().select_related("team").get(pk=post.pk)
    if not user_has_role(user=by, team=post.team, role=Role.LEAD):
        raise NotAllowed("Only a communications lead of the post's team can use break-glass.")
    if post.status not in (PostStatus.DRAFT, PostStatus.IN_REVIEW, PostStatus.NEEDS_RESCHEDULE):
        raise InvalidTransition(
            f"Break-glass releases a draft or a post in review; this one is "
            f"{post.get_status_display().lower()}.",
            {"status": post.status},
        )
    errors = [
        f
        for f in preflight.run(post=post)
        if f.severity == "error" and f.code != "schedule_in_past"
    ]
    if errors:
        raise ApplicationError(
            "Break-glass skips approvals, not safety checks: "
            + "; ".join(f.message for f in errors[:3]),
            {"problems": [f.as_dict() for f in errors]},
        )
    now = timezone.now()
    skipped: set[int] = set()
    request = ApprovalRequest.objects.filter(post=post, status=RequestStatus.OPEN).first()
    if post.status == PostStatus.NEEDS_RESCHEDULE:
        post = publishing.post_release_now(post=post, by=by)
    else:
        if request is None:
            post = publishing.post_submit_for_break_glass(post=post, by=by)
            request = ApprovalRequest.objects.create(
                post=post, version=post.version, content_hash=post.content_hash
            )
        else:
            for step in request.steps.filter(
                status__in=[StepStatus.ACTIVE, StepStatus.WAITING]
            ).prefetch_related("eligible"):
                skipped.update(u.pk for u in step.eligible.all())
        request.status = RequestStatus.APPROVED
        request.break_glass = True
        request.break_glass_justification = justification
        request.closed_at = now
        request.save(
            update_fields=["status", "break_glass", "break_glass_justification", "closed_at"]
        )
        request.steps.filter(status__in=[StepStatus.ACTIVE, StepStatus.WAITING]).update(
            status=StepStatus.CLOSED, completed_at=now
        )
        post.scheduled_at = None
        post.save(update_fields=["scheduled_at", "updated_at"])
        post = publishing.post_approved(post=post, content_hash=post.content_hash, by=by, now=now)
    if not skipped:
        skipped.update(u.pk for u in routing.users_with_role_over(post.team, Role.APPROVER))
    skipped.discard(by.pk)
    record(
        actor=by,
        action="post.break_glass",
        obj=post,
        team=post.team,
        data={
            "justification": justification,
            "content_hash": post.content_hash,
            "version": post.version,
            "skipped_approvers": sorted(skipped),
            "loud": True,
        },
    )
    notify(
        users=User.objects.filter(pk__in=skipped | {post.author_id}),
        kind="post.break_glass",
        title=f"BREAK-GLASS: {by} released post #{post.pk} without approval",
        body=f"Justification: {justification}",
        url=_post_url(post),
        post_id=post.pk,
    )
    return post
