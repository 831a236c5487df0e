"""Which chain a post needs: resolved once, at submit, from the policies in force then.

The nearest team policy up the tree comes first, then the stages of every target account's own
policy; a stage already in the chain (same deciders and rule) is dropped. With no policy at all,
the organisation default applies: one approver of the post's own team (or a team above it).

A reply to an inbox item (post.is_reply) passes only the stages marked for_replies, of the
policies whose replies_need_approval holds: a lighter chain, or none at all when the nearest team
policy says replies need no approval and no account policy adds a stage for them (an empty chain:
approved at submit, approvals.services.request_open).
"""

from dataclasses import dataclass, field

from django.db.models import Prefetch

from accounts.models import Role, Team, User

from .models import ApprovalPolicy, ApprovalStage, Rule


@dataclass
class PlannedStep:
    name: str
    source: str
    rule: str
    quorum: int | None
    decider_team: Team | None
    decider_role: str
    named_user_ids: tuple[int, ...]
    sla_hours: int
    escalate_to_team: Team | None
    escalate_to_role: str
    eligible: list[User] = field(default_factory=list)

    def key(self) -> tuple:
        return (
            self.decider_team.pk if self.decider_team else None,
            self.decider_role,
            self.named_user_ids,
            self.rule,
            self.quorum,
        )


def _ancestor_paths(team: Team) -> list[str]:
    step = team.steplen
    return [team.path[:end] for end in range(step, len(team.path) + 1, step)]


def _plan(stage: ApprovalStage, source: str) -> PlannedStep:
    return PlannedStep(
        name=stage.name,
        source=source,
        rule=stage.rule,
        quorum=stage.quorum,
        decider_team=stage.decider_team,
        decider_role=stage.decider_role,
        named_user_ids=tuple(sorted(u.pk for u in stage.named_users.all())),
        sla_hours=stage.sla_hours,
        escalate_to_team=stage.escalate_to_team,
        escalate_to_role=stage.escalate_to_role,
    )


def users_with_role_over(team: Team, role: str) -> list[User]:
    """Active people holding `role` on `team` or a team above it."""
    return list(
        User.objects.filter(
            is_active=True,
            memberships__role=role,
            memberships__team__path__in=_ancestor_paths(team),
        )
        .distinct()
        .order_by("pk")
    )


def plan_chain(*, post) -> list[PlannedStep]:
    stages = Prefetch("stages", queryset=ApprovalStage.objects.prefetch_related("named_users"))
    team_policy = (
        ApprovalPolicy.objects.filter(team__path__in=_ancestor_paths(post.team))
        .select_related("team")
        .prefetch_related(stages)
        .order_by("-team__depth")
        .first()
    )
    account_ids = [t.social_account_id for t in post.targets.all()]
    account_policies = (
        ApprovalPolicy.objects.filter(social_account_id__in=account_ids)
        .select_related("social_account")
        .prefetch_related(stages)
        .order_by("social_account_id")
    )
    planned: list[PlannedStep] = []
    if team_policy is not None:
        planned += [
            _plan(s, f"team policy “{team_policy.name}”")
            for s in _stages_for(team_policy, reply=post.is_reply)
        ]
    for policy in account_policies:
        planned += [
            _plan(s, f"account policy “{policy.name}” ({policy.social_account.handle})")
            for s in _stages_for(policy, reply=post.is_reply)
        ]
    if not planned and post.is_reply and team_policy and not team_policy.replies_need_approval:
        return []
    if not planned:
        planned = [
            PlannedStep(
                name="Approval by the team",
                source="organisation default",
                rule=Rule.ANY,
                quorum=None,
                decider_team=post.team,
                decider_role=Role.APPROVER,
                named_user_ids=(),
                sla_hours=24,
                escalate_to_team=post.team,
                escalate_to_role=Role.LEAD,
            )
        ]
    chain: list[PlannedStep] = []
    seen: set[tuple] = set()
    for step in planned:
        if step.key() in seen:
            continue
        seen.add(step.key())
        chain.append(step)
    for step in chain:
        step.eligible = _eligible(step, post)
    return chain


def _stages_for(policy: ApprovalPolicy, *, reply: bool) -> list[ApprovalStage]:
    """The policy's stages a post passes: all of them, or for a reply those marked for_replies
    (none when the policy says replies need no approval)."""
    stages = list(policy.stages.all())
    if not reply:
        return stages
    if not policy.replies_need_approval:
        return []
    return [stage for stage in stages if stage.for_replies]


def _eligible(step: PlannedStep, post) -> list[User]:
    if step.named_user_ids:
        people = list(
            User.objects.filter(pk__in=step.named_user_ids, is_active=True).order_by("pk")
        )
    elif step.decider_team is not None and step.decider_role:
        people = users_with_role_over(step.decider_team, step.decider_role)
    else:
        people = []
    # No one decides on their own post.
    return [person for person in people if person.pk != post.author_id]


def escalation_targets(step) -> list[User]:
    if step.escalate_to_team is None or not step.escalate_to_role:
        return []
    return users_with_role_over(step.escalate_to_team, step.escalate_to_role)


def schedule_change_needs_approval(*, team: Team) -> bool:
    """Does the team's policy say that moving an approved post needs a new approval? (The
    handler of publishing.hooks.schedule_change_needs_approval.)"""
    policy = team_policy_for(team)
    return bool(policy and policy.schedule_changes_need_approval)


def team_policy_for(team: Team) -> ApprovalPolicy | None:
    """The nearest team policy at or above `team`."""
    return (
        ApprovalPolicy.objects.filter(team__path__in=_ancestor_paths(team))
        .order_by("-team__depth")
        .first()
    )
