"""Approval sections that more than one page shows: the chain of an approval round (each stage's
deciders, rule and decisions, whether it is late, and one sentence saying where the post stands),
on the review page (approvals/views.py) and on the post page; and the post page's approval
section itself: the rounds with their chains and, for the leads of its team, the break-glass form.

The post page belongs to publishing, which sits below approvals: it asks for post_section here
(publishing/views/post_page.py), the one thing publishing's pages take from approvals, until
approvals registers it with publishing at start-up (issue 14, item 3).
"""

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import prefetch_related_objects
from django.utils import timezone

from accounts.models import Role
from accounts.selectors import user_has_role
from publishing.models import Post, PostStatus
from publishing.views.post_page import PageSection

from . import selectors, services
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


# The post page's approval section ----------------------------------------------------------------
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


def post_page_section(*, user, post: Post, given: dict) -> PageSection:
    """Approvals' section of the post page (the handler of publishing.hooks.post_page_sections):
    the rounds, and the break-glass form as the lead last sent it (``given["break_glass"]``)."""
    return PageSection(
        template="approvals/_post_approval.html",
        context=post_section(user=user, post=post, break_glass=given.get("break_glass")),
    )
