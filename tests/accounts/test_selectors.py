"""Who sees which teams and social accounts: roles inherited down the tree, per-account grants,
inactive users and superusers, and a fixed number of queries whatever the size of the tree."""

import pytest
from django.contrib.auth.models import AnonymousUser
from guardian.shortcuts import assign_perm

from accounts import selectors
from accounts.models import Role, Team
from networks.models import SocialAccount
from networks.selectors import social_account_get, social_accounts_for
from networks.services import social_account_grant_drafting, social_account_revoke_drafting
from tests.factories import SocialAccountFactory, UserFactory, grant

ALL_ROLES = list(Role.values)


def names(teams) -> set[str]:
    return {team.name for team in teams}


def handles(accounts) -> set[str]:
    return {account.handle for account in accounts}


# Role inheritance down the tree ------------------------------------------------------------------
def test_a_role_on_hq_holds_for_every_team_below(org, lead):
    # given a lead on HQ
    # when we ask which teams they lead
    teams = selectors.teams_for(user=lead, roles=Role.LEAD)
    # then it is the whole tree
    assert names(teams) == {"HQ", "North", "South", "North Centre", "South Centre"}
    for team in org.values():
        assert selectors.user_has_role(user=lead, team=team, role=Role.LEAD)


def test_a_role_on_north_holds_below_north_but_not_for_south_or_hq(org, author):
    # given a drafter on North
    # when we ask which teams they draft for
    teams = selectors.teams_for(user=author, roles=Role.DRAFTER)
    # then North and the centre below it, nothing of South and not HQ above
    assert names(teams) == {"North", "North Centre"}
    assert selectors.user_has_role(user=author, team=org["north_centre"], role=Role.DRAFTER)
    assert not selectors.user_has_role(user=author, team=org["hq"], role=Role.DRAFTER)
    assert not selectors.user_has_role(user=author, team=org["south"], role=Role.DRAFTER)
    assert not selectors.user_has_role(user=author, team=org["south_centre"], role=Role.DRAFTER)


def test_a_role_in_one_region_does_not_leak_to_the_sibling_region(org, outsider):
    # given a drafter of South
    # when they list their teams
    teams = selectors.teams_for(user=outsider)
    # then they see none of North's
    assert names(teams) == {"South", "South Centre"}


@pytest.mark.parametrize("role", ALL_ROLES)
def test_each_role_holds_on_its_team_and_below_and_only_that_role(org, role):
    # given someone holding only `role` on North
    user = UserFactory()
    grant(user, org["north"], role)
    # when we ask about each role on each team
    # then they hold `role` on North and North Centre, and no other role anywhere
    for team_key in ("north", "north_centre"):
        assert selectors.user_has_role(user=user, team=org[team_key], role=role)
    for team_key in ("hq", "south", "south_centre"):
        assert not selectors.user_has_role(user=user, team=org[team_key], role=role)
    for other in set(ALL_ROLES) - {role}:
        assert not selectors.user_has_role(user=user, team=org["north"], role=other)
    assert selectors.roles_of(user=user) == {role}
    assert names(selectors.teams_for(user=user, roles=role)) == {"North", "North Centre"}
    assert not selectors.teams_for(user=user, roles=set(ALL_ROLES) - {role}).exists()


def test_roles_of_gathers_every_role_held_anywhere(org, author):
    # given the author also approves for South
    grant(author, org["south"], Role.APPROVER)
    # when we ask for their roles
    roles = selectors.roles_of(user=author)
    # then both are there, once each
    assert roles == {Role.DRAFTER, Role.APPROVER}


def test_someone_without_memberships_has_no_roles_and_sees_nothing(org, north_account):
    # given a signed-up person with no membership
    user = UserFactory()
    # when they ask
    # then nothing
    assert selectors.roles_of(user=user) == set()
    assert not selectors.teams_for(user=user).exists()
    assert not social_accounts_for(user=user).exists()


def test_teams_for_filters_by_the_roles_asked_for(org, author, approver):
    # given a drafter and an approver of North
    # when we ask for approvers' teams
    # then only the approver has them
    assert not selectors.teams_for(user=author, roles=Role.APPROVER).exists()
    assert names(selectors.teams_for(user=approver, roles=[Role.APPROVER, Role.LEAD])) == {
        "North",
        "North Centre",
    }


# One team, one account: None (the caller answers 404) outside the scope -------------------------
def test_team_get_gives_a_team_in_scope_and_none_outside_it(org, author):
    # when the North drafter fetches teams one by one
    # then North Centre is there, South and HQ are not
    assert selectors.team_get(user=author, team_id=org["north_centre"].pk) == org["north_centre"]
    assert selectors.team_get(user=author, team_id=org["south"].pk) is None
    assert selectors.team_get(user=author, team_id=org["hq"].pk) is None
    assert selectors.team_get(user=author, team_id=org["north"].pk, roles=Role.APPROVER) is None


def test_team_get_of_a_team_that_does_not_exist_is_none(org, lead):
    assert selectors.team_get(user=lead, team_id=10**9) is None


def test_social_accounts_for_gives_the_accounts_of_the_teams_in_scope(
    org, author, outsider, lead, north_account, south_account
):
    # when each person lists the accounts they may see
    # then the drafters see their region's, the HQ lead sees both
    assert handles(social_accounts_for(user=author)) == {"@north_centre"}
    assert handles(social_accounts_for(user=outsider)) == {"@south"}
    assert handles(social_accounts_for(user=lead)) == {"@north_centre", "@south"}


def test_social_account_get_gives_an_account_in_scope_and_none_outside_it(
    author, north_account, south_account
):
    got = social_account_get(user=author, account_id=north_account.pk)
    assert got == north_account
    assert social_account_get(user=author, account_id=south_account.pk) is None


def test_an_approver_role_does_not_give_drafting(org, approver, north_account):
    # given an approver of North
    # when we ask what they may draft for
    drafting = social_accounts_for(user=approver, roles=Role.DRAFTER)
    # then nothing, though they may see the account as an approver
    assert not drafting.exists()
    assert not selectors.user_has_role(user=approver, team=org["north"], role=Role.DRAFTER)
    assert (
        social_account_get(user=approver, account_id=north_account.pk, roles=Role.DRAFTER) is None
    )
    assert social_account_get(user=approver, account_id=north_account.pk, roles=Role.APPROVER)


# Inactive users, anonymous users, superusers ------------------------------------------------------
def test_an_inactive_user_sees_nothing(org, author, north_account):
    # given the author's account was deactivated
    author.is_active = False
    author.save()
    # when they ask for teams and accounts
    # then nothing, whatever their memberships
    assert not selectors.teams_for(user=author).exists()
    assert not social_accounts_for(user=author).exists()
    assert selectors.team_get(user=author, team_id=org["north"].pk) is None
    assert social_account_get(user=author, account_id=north_account.pk) is None


def test_an_inactive_user_granted_an_account_does_not_see_it(outsider, north_account):
    # given a per-account grant to someone since deactivated
    assign_perm("networks.draft_socialaccount", outsider, north_account)
    outsider.is_active = False
    outsider.save()
    # then the grant gives nothing
    assert not social_accounts_for(user=outsider).exists()


def test_an_inactive_user_holds_no_role(org, author):
    # given the author was deactivated
    author.is_active = False
    author.save()
    # when anything asks about their roles
    # then they hold none, on any team
    assert not selectors.memberships_of(user=author).exists()
    assert not selectors.user_has_role(user=author, team=org["north"], role=Role.DRAFTER)
    assert selectors.roles_of(user=author) == set()


def test_an_inactive_superuser_holds_no_role(org):
    # given a deactivated operator
    root = UserFactory(is_superuser=True, is_active=False)
    # then superuser status opens nothing
    assert not selectors.teams_for(user=root).exists()
    assert not selectors.user_has_role(user=root, team=org["north"], role=Role.ADMIN)
    assert selectors.roles_of(user=root) == set()


def test_an_anonymous_visitor_holds_no_role(org):
    # given someone not signed in
    visitor = AnonymousUser()
    # then they hold no role, and asking does not crash
    assert not selectors.user_has_role(user=visitor, team=org["north"], role=Role.DRAFTER)
    assert selectors.roles_of(user=visitor) == set()


def test_an_anonymous_visitor_sees_nothing(org, north_account):
    visitor = AnonymousUser()
    assert not selectors.teams_for(user=visitor).exists()
    assert not social_accounts_for(user=visitor).exists()


def test_a_superuser_sees_everything(org, north_account, south_account):
    # given an operator of the installation with no membership
    root = UserFactory(is_superuser=True)
    # when they ask
    # then every team, every account, every role
    assert selectors.teams_for(user=root).count() == Team.objects.count() == 5
    assert handles(social_accounts_for(user=root)) == {"@north_centre", "@south"}
    assert selectors.roles_of(user=root) == set(ALL_ROLES)
    assert selectors.user_has_role(user=root, team=org["south_centre"], role=Role.ADMIN)
    assert selectors.team_get(user=root, team_id=org["south"].pk) == org["south"]


# Per-account grants (django-guardian) -----------------------------------------------------------
def test_a_drafting_grant_gives_exactly_that_one_extra_account(org, outsider, south_account):
    # given two North accounts, one of which the South drafter is granted
    granted = SocialAccountFactory(team=org["north_centre"], handle="@north_granted")
    SocialAccountFactory(team=org["north_centre"], handle="@north_other")
    SocialAccountFactory(team=org["north"], handle="@north_region")
    social_account_grant_drafting(account=granted, user=outsider, by=None)
    # when they list what they may draft for
    drafting = social_accounts_for(user=outsider, roles=Role.DRAFTER)
    # then their own region's account and that one, nothing else of North
    assert handles(drafting) == {"@south", "@north_granted"}
    assert social_account_get(user=outsider, account_id=granted.pk) == granted
    # and no role on North comes with it
    assert names(selectors.teams_for(user=outsider)) == {"South", "South Centre"}
    assert not selectors.user_has_role(user=outsider, team=org["north_centre"], role=Role.DRAFTER)


def test_a_drafting_grant_does_not_count_for_other_roles(org, outsider):
    granted = SocialAccountFactory(team=org["north_centre"], handle="@north_granted")
    social_account_grant_drafting(account=granted, user=outsider, by=None)
    # when asked as an approver, or without grants
    # then the granted account is not there
    assert not social_accounts_for(user=outsider, roles=Role.APPROVER).exists()
    assert granted not in social_accounts_for(user=outsider, include_grants=False)


def test_revoking_a_drafting_grant_removes_the_account(org, outsider, south_account):
    # given a granted account
    granted = SocialAccountFactory(team=org["north_centre"], handle="@north_granted")
    social_account_grant_drafting(account=granted, user=outsider, by=None)
    # when the grant is revoked
    social_account_revoke_drafting(account=granted, user=outsider, by=None)
    # then it is gone again
    assert handles(social_accounts_for(user=outsider)) == {"@south"}
    assert social_account_get(user=outsider, account_id=granted.pk) is None


def test_a_grant_of_another_permission_gives_nothing(org, outsider):
    # given a per-object permission that is not drafting
    account = SocialAccountFactory(team=org["north_centre"], handle="@north_viewable")
    assign_perm("networks.view_socialaccount", outsider, account)
    # then it does not open the account
    assert account not in social_accounts_for(user=outsider)


# Query counts: fixed whatever the size of the tree ------------------------------------------------
def build_tree(*, regions: int, centres: int, programmes: int, desks: int = 0) -> Team:
    """HQ → `regions` → `centres` each → `programmes` each, plus `desks` directly under HQ."""

    def node(name: str, children: list | None = None) -> dict:
        entry = {"data": {"name": name, "slug": name.lower().replace(" ", "-")}}
        if children:
            entry["children"] = children
        return entry

    tree = node(
        "HQ",
        [
            node(
                f"Region {r}",
                [
                    node(
                        f"Centre {r}-{c}",
                        [node(f"Programme {r}-{c}-{p}") for p in range(programmes)],
                    )
                    for c in range(centres)
                ],
            )
            for r in range(regions)
        ]
        + [node(f"Desk {d}") for d in range(desks)],
    )
    Team.objects.load_bulk([tree])
    return Team.objects.get(slug="hq")


def in_region_0(name: str) -> bool:
    return name == "Region 0" or name.startswith(("Centre 0-", "Programme 0-"))


# 10 teams: HQ + 3 regions + 6 centres. 500: HQ + 4 regions + 20 centres + 460 programmes + 15
# desks. The user is a drafter of Region 0 (3 teams, or 1 + 5 + 115 = 121).
SIZES = [
    pytest.param({"regions": 3, "centres": 2, "programmes": 0}, 10, 3, id="10-teams"),
    pytest.param({"regions": 4, "centres": 5, "programmes": 23, "desks": 15}, 500, 121, id="500"),
]


@pytest.mark.parametrize(("shape", "total", "in_region"), SIZES)
def test_teams_for_costs_one_query_whatever_the_size(
    db, django_assert_num_queries, shape, total, in_region
):
    # given a tree of `total` teams and a drafter of one region
    build_tree(**shape)
    assert Team.objects.count() == total
    user = UserFactory()
    grant(user, Team.objects.get(slug="region-0"), Role.DRAFTER)
    # when we list their teams
    with django_assert_num_queries(1):
        teams = list(selectors.teams_for(user=user))
    # then it took one query and gave exactly the region's subtree
    assert len(teams) == in_region
    assert all(in_region_0(team.name) for team in teams)


@pytest.mark.parametrize(("shape", "total", "in_region"), SIZES)
def test_social_accounts_for_costs_one_query_whatever_the_size(
    db, django_assert_num_queries, shape, total, in_region
):
    # given one account per team, a drafter of one region and one granted account elsewhere
    build_tree(**shape)
    SocialAccount.objects.bulk_create(
        SocialAccount(team=team, channel="mastodon", handle=f"@{team.slug}")
        for team in Team.objects.all()
    )
    user = UserFactory()
    grant(user, Team.objects.get(slug="region-0"), Role.DRAFTER)
    assign_perm("networks.draft_socialaccount", user, SocialAccount.objects.get(handle="@hq"))
    # when we list their accounts, reading each one's team
    with django_assert_num_queries(1):
        rows = [(account.handle, account.team.name) for account in social_accounts_for(user=user)]
    # then one query, and exactly the region's accounts plus the granted one
    assert len(rows) == in_region + 1
    assert sorted(team_name for _, team_name in rows if not in_region_0(team_name)) == ["HQ"]
