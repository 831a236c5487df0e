"""Writes of approval policies (the definitions). Admins of a subtree manage its policies.
Requests already in flight keep the chain they copied at submit."""

from dataclasses import dataclass

from django.db import transaction

from accounts.models import Role, Team, User
from accounts.selectors import teams_for
from audit.services import record
from cxhub.errors import ApplicationError, NotAllowed
from networks.models import SocialAccount
from networks.selectors import social_accounts_for

from .models import ApprovalPolicy, ApprovalStage, Rule


@dataclass(frozen=True)
class StageInput:
    name: str
    rule: str = Rule.ANY
    quorum: int | None = None
    decider_team_id: int | None = None
    decider_role: str = ""
    named_user_ids: tuple[int, ...] = ()
    sla_hours: int = 24
    escalate_to_team_id: int | None = None
    escalate_to_role: str = ""
    for_replies: bool = True


def _error(field: str, message: str) -> ApplicationError:
    return ApplicationError(f"{field}: {message}", {"fields": {field: [message]}})


def _admin_teams(by: User):
    return teams_for(user=by, roles=[Role.ADMIN])


def _clean_stages(by: User, stages: list[StageInput]) -> list[dict]:
    if not stages:
        raise _error("stages", "A policy needs at least one stage.")
    # Deciders may be the admin's own teams, the teams below them, or the teams above them
    # (a region's chain often ends at HQ).
    if by.is_superuser:
        all_teams = {t.pk: t for t in Team.objects.all()}
    else:
        own = list(teams_for(user=by))
        paths = {
            team.path[:end]
            for team in own
            for end in range(team.steplen, len(team.path) + 1, team.steplen)
        }
        all_teams = {t.pk: t for t in Team.objects.filter(path__in=paths)}
        all_teams.update({t.pk: t for t in own})
    cleaned = []
    for index, stage in enumerate(stages):
        where = f"stages[{index}]"
        if not stage.name.strip():
            raise _error(f"{where}.name", "Name the stage.")
        if stage.rule not in Rule.values:
            raise _error(f"{where}.rule", f"One of {', '.join(Rule.values)}.")
        if stage.rule == Rule.QUORUM and not (stage.quorum and stage.quorum >= 1):
            raise _error(f"{where}.quorum", "A quorum rule needs a quorum of at least 1.")
        named = list(User.objects.filter(pk__in=stage.named_user_ids, is_active=True))
        if len(named) != len(set(stage.named_user_ids)):
            raise _error(f"{where}.named_users", "Unknown or inactive person.")
        team = None
        if stage.decider_team_id is not None:
            team = all_teams.get(stage.decider_team_id)
            if team is None:
                raise _error(f"{where}.decider_team", "No team with this id that you can see.")
        if not named and not (team and stage.decider_role in Role.values):
            raise _error(
                f"{where}.decider_role",
                "Say who decides: a team and a role, or named people.",
            )
        escalate_team = None
        if stage.escalate_to_team_id is not None:
            escalate_team = all_teams.get(stage.escalate_to_team_id)
            if escalate_team is None:
                raise _error(f"{where}.escalate_to_team", "No team with this id that you can see.")
        if stage.escalate_to_role and stage.escalate_to_role not in Role.values:
            raise _error(f"{where}.escalate_to_role", f"One of {', '.join(Role.values)}.")
        if not 1 <= stage.sla_hours <= 24 * 30:
            raise _error(f"{where}.sla_hours", "Between 1 and 720 hours.")
        cleaned.append(
            {
                "name": stage.name.strip()[:200],
                "rule": stage.rule,
                "quorum": stage.quorum if stage.rule == Rule.QUORUM else None,
                "decider_team": team,
                "decider_role": stage.decider_role if team else "",
                "named": named,
                "sla_hours": stage.sla_hours,
                "escalate_to_team": escalate_team,
                "escalate_to_role": stage.escalate_to_role,
                "for_replies": bool(stage.for_replies),
            }
        )
    return cleaned


def _write_stages(policy: ApprovalPolicy, stages: list[dict]) -> None:
    policy.stages.all().delete()
    for order, values in enumerate(stages, start=1):
        named = values.pop("named")
        stage = ApprovalStage.objects.create(policy=policy, order=order, **values)
        stage.named_users.set(named)


def _describe(policy: ApprovalPolicy) -> dict:
    return {
        "name": policy.name,
        "team": policy.team_id,
        "social_account": policy.social_account_id,
        "schedule_changes_need_approval": policy.schedule_changes_need_approval,
        "replies_need_approval": policy.replies_need_approval,
        "stages": [
            {
                "name": s.name,
                "rule": s.rule,
                "quorum": s.quorum,
                "decider_team": s.decider_team_id,
                "decider_role": s.decider_role,
                "named_users": sorted(u.pk for u in s.named_users.all()),
                "sla_hours": s.sla_hours,
                "for_replies": s.for_replies,
            }
            for s in policy.stages.order_by("order")
        ],
    }


def _policy_team(policy: ApprovalPolicy) -> Team:
    return policy.team if policy.team_id else policy.social_account.team


@transaction.atomic
def policy_create(
    *,
    by: User,
    name: str,
    stages: list[StageInput],
    team_id: int | None = None,
    social_account_id: int | None = None,
    schedule_changes_need_approval: bool = False,
    replies_need_approval: bool = True,
) -> ApprovalPolicy:
    if (team_id is None) == (social_account_id is None):
        raise _error("team", "Give either a team or a social account, not both.")
    team = account = None
    if team_id is not None:
        team = _admin_teams(by).filter(pk=team_id).first()
        if team is None:
            raise _error("team", "No team with this id that you administer.")
        if ApprovalPolicy.objects.filter(team=team).exists():
            raise _error("team", "This team has a policy already: change that one.")
    else:
        account = (
            social_accounts_for(user=by, roles=[Role.ADMIN], include_grants=False)
            .filter(pk=social_account_id)
            .first()
        )
        if account is None:
            raise _error("social_account", "No social account with this id that you administer.")
        if ApprovalPolicy.objects.filter(social_account=account).exists():
            raise _error("social_account", "This account has a policy already.")
    if not name.strip():
        raise _error("name", "Name the policy.")
    cleaned = _clean_stages(by, stages)
    policy = ApprovalPolicy.objects.create(
        name=name.strip()[:200],
        team=team,
        social_account=account,
        schedule_changes_need_approval=schedule_changes_need_approval,
        replies_need_approval=replies_need_approval,
    )
    _write_stages(policy, cleaned)
    record(
        actor=by,
        action="approval_policy.created",
        obj=policy,
        team=_policy_team(policy),
        data=_describe(policy),
    )
    return policy


def policy_may_manage(*, by: User, policy: ApprovalPolicy) -> bool:
    return _admin_teams(by).filter(pk=_policy_team(policy).pk).exists()


@transaction.atomic
def policy_update(
    *,
    policy: ApprovalPolicy,
    by: User,
    name: str | None = None,
    stages: list[StageInput] | None = None,
    schedule_changes_need_approval: bool | None = None,
    replies_need_approval: bool | None = None,
) -> ApprovalPolicy:
    policy = ApprovalPolicy.objects.select_for_update().get(pk=policy.pk)
    if not policy_may_manage(by=by, policy=policy):
        raise NotAllowed("You do not administer this policy's team.")
    before = _describe(policy)
    if name is not None:
        if not name.strip():
            raise _error("name", "Name the policy.")
        policy.name = name.strip()[:200]
    if schedule_changes_need_approval is not None:
        policy.schedule_changes_need_approval = schedule_changes_need_approval
    if replies_need_approval is not None:
        policy.replies_need_approval = replies_need_approval
    policy.save()
    if stages is not None:
        _write_stages(policy, _clean_stages(by, stages))
    record(
        actor=by,
        action="approval_policy.changed",
        obj=policy,
        team=_policy_team(policy),
        data={"before": before, "after": _describe(policy)},
    )
    return policy


@transaction.atomic
def policy_delete(*, policy: ApprovalPolicy, by: User) -> None:
    if not policy_may_manage(by=by, policy=policy):
        raise NotAllowed("You do not administer this policy's team.")
    description = _describe(policy)
    team = _policy_team(policy)
    policy_id = policy.pk
    policy.delete()
    record(
        actor=by,
        action="approval_policy.deleted",
        object_type="approvals.approvalpolicy",
        object_id=str(policy_id),
        team=team,
        data=description,
    )


def policies_for(*, user: User):
    """Policies of the teams (and their accounts) the user administers."""
    teams = _admin_teams(user)
    accounts = SocialAccount.objects.filter(team__in=teams)
    return (
        ApprovalPolicy.objects.filter(team__in=teams)
        | ApprovalPolicy.objects.filter(social_account__in=accounts)
    ).prefetch_related("stages__named_users")
