"""The move of the social accounts from accounts to networks (accounts/0009, networks/0001,
publishing/0003, approvals/0002, accounts/0010) keeps every row: the accounts and their tokens,
cxhub's server registrations, the permissions on them (auth's and django-guardian's per-account
grants, through their content types), the admin's log entries, and the posts' targets, freezes,
sandbox feed and approval policies that point at them; their audit events stay findable.

Migrations run as the tables' owner (tests/dbroles.py: on PostgreSQL the suite is the app role).
"""

import uuid
from collections import defaultdict
from datetime import UTC, datetime

import pytest
from django.apps import apps as current_apps
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from guardian.shortcuts import assign_perm, get_perms

from accounts.crypto import encrypt_token
from accounts.models import Role, User
from approvals.models import ApprovalPolicy
from audit.services import record
from cxhub import demo
from desk.selectors import events_for
from networks.models import OAuthApp, SocialAccount
from networks.selectors import social_accounts_for
from publishing import services as publishing
from publishing.models import PostTarget, PublishingFreeze, SandboxPublication

from ..dbroles import as_owner
from ..factories import SocialAccountFactory, UserFactory

# The last migration before the move: migrating accounts back to it undoes the move and every
# migration that depends on it.
BEFORE_THE_MOVE = [("accounts", "0008_mfa")]
MOVED = ("socialaccount", "oauthapp", "socialaccountuserobjectpermission")
MOVED += ("socialaccountgroupobjectpermission",)


def _migrate(targets=None):
    """Migrate to `targets` (the newest migrations when None) as the tables' owner; returns the
    historical apps of the state reached."""
    with as_owner():
        executor = MigrationExecutor(connection)
        executor.migrate(targets or executor.loader.graph.leaf_nodes())
    ContentType.objects.clear_cache()
    loader = MigrationLoader(connection)
    applied = [node for node in loader.applied_migrations if node in loader.graph.nodes]
    return loader.project_state(applied).apps


@pytest.fixture
def before_the_move(transactional_db):
    """The database as it was before the move, brought back to the newest state afterwards
    whatever the test did."""
    old_apps = _migrate(BEFORE_THE_MOVE)
    yield old_apps
    _migrate()


def _step(index: int) -> str:
    return f"{index:>04}" if index < 10 else "000" + "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[index]


def _demo_teams(Team) -> dict:
    """The demo's team tree with the historical model (no treebeard there): siblings by name."""
    children = defaultdict(list)
    for slug, name, parent in demo.TEAMS:
        children[parent].append((name, slug))
    teams = {}

    def add(parent, path, depth):
        for index, (name, slug) in enumerate(sorted(children[parent]), start=1):
            teams[slug] = Team.objects.create(
                name=name,
                slug=slug,
                path=path + _step(index),
                depth=depth,
                numchild=len(children[slug]),
            )
            add(slug, teams[slug].path, depth + 1)

    add(None, "", 1)
    return teams


def _fill_before_the_move(old) -> dict:
    """The demo organisation and the suite's kinds of rows, made with the historical models:
    what a database migrated by an older cxhub holds."""
    model = old.get_model
    Team, Membership = model("accounts", "Team"), model("accounts", "Membership")
    OldUser, OldGroup = model("accounts", "User"), model("auth", "Group")
    OldAccount, OldApp = model("accounts", "SocialAccount"), model("accounts", "OAuthApp")
    UserGrant = model("accounts", "SocialAccountUserObjectPermission")
    GroupGrant = model("accounts", "SocialAccountGroupObjectPermission")
    OldType, OldPermission = model("contenttypes", "ContentType"), model("auth", "Permission")

    teams = _demo_teams(Team)
    people = {}
    for username, display, team, roles, staff in demo.PEOPLE:
        people[username] = OldUser.objects.create(
            username=username, display_name=display, is_staff=staff, password="!"
        )
        for role in roles:
            Membership.objects.create(user=people[username], team=teams[team], role=role)
    tokens = {}
    accounts = {}
    for team, channel, handle in demo.ACCOUNTS:
        access, refresh = f"demo-access-{channel}-{handle}", f"demo-refresh-{handle}"
        account = OldAccount.objects.create(
            team=teams[team],
            channel=channel,
            handle=handle,
            base_url=demo._HOSTS[channel],
            access_token_encrypted=encrypt_token(access),
            refresh_token_encrypted=encrypt_token(refresh),
            expires_at=datetime(2027, 1, 1, tzinfo=UTC),
            sandbox=channel == "sandbox",
            network_settings={"oauth_client_id": "cxhub-on-mastodon"},
        )
        accounts[(channel, handle)] = account
        tokens[account.pk] = (access, refresh)
    app = OldApp.objects.create(
        channel="mastodon",
        base_url="https://mastodon.example",
        redirect_uri="https://cxhub.example/accounts/connect/callback/",
        client_id="cxhub-on-mastodon",
        client_secret_encrypted=encrypt_token("the-client-secret"),
    )

    # Grants, as an older cxhub made them: content types and permissions under accounts.
    account_type, _ = OldType.objects.get_or_create(app_label="accounts", model="socialaccount")
    permission = {
        codename: OldPermission.objects.get_or_create(
            codename=codename, content_type=account_type, defaults={"name": codename}
        )[0]
        for codename in ("draft_socialaccount", "change_socialaccount")
    }
    desk_account = accounts[("mastodon", "@agency_north")]
    UserGrant.objects.create(
        user=people["desk"],
        permission=permission["draft_socialaccount"],
        content_object=desk_account,
    )
    visitors = OldGroup.objects.create(name="Visitor centre volunteers")
    people["drafter.south"].groups.add(visitors)
    coast_account = accounts[("bluesky", "agencycoast.bsky.social")]
    GroupGrant.objects.create(
        group=visitors, permission=permission["draft_socialaccount"], content_object=coast_account
    )
    people["admin.coast"].user_permissions.add(permission["change_socialaccount"])
    model("admin", "LogEntry").objects.create(
        action_time=datetime(2026, 1, 5, tzinfo=UTC),
        user=people["admin"],
        content_type=account_type,
        object_id=str(desk_account.pk),
        object_repr=desk_account.handle,
        action_flag=2,
        change_message="[]",
    )

    # What points at the accounts from above.
    post = model("publishing", "Post").objects.create(
        team=teams["north"],
        author=people["drafter.north"],
        body="Launch at dawn.",
        content_hash="0" * 64,
    )
    targets = {
        account.pk: model("publishing", "PostTarget").objects.create(
            post=post, social_account=account, idempotency_key=uuid.uuid4()
        )
        for key, account in accounts.items()
        if key[1] in ("@agency_north", "@AgencyNorth", "visitor centre (sandbox)")
    }
    sandbox = accounts[("sandbox", "visitor centre (sandbox)")]
    model("publishing", "SandboxPublication").objects.create(
        social_account=sandbox,
        target=targets[sandbox.pk],
        idempotency_key=targets[sandbox.pk].idempotency_key,
        text="Launch at dawn.",
    )
    model("publishing", "PublishingFreeze").objects.create(
        scope="account", social_account=desk_account, reason="Storm", created_by=people["lead"]
    )
    model("approvals", "ApprovalPolicy").objects.create(
        name="HQ X", social_account=accounts[("x", "@Agency")]
    )
    # Its events, as the trail holds them: under the model's name of the time.
    events = [
        record(
            actor=None,
            action="social_account.created",
            object_type="accounts.socialaccount",
            object_id=str(account.pk),
        ).seq
        for account in (desk_account, coast_account)
    ]
    return {
        "tokens": tokens,
        "app": app.pk,
        "account_type": account_type.pk,
        "desk_account": desk_account.pk,
        "coast_account": coast_account.pk,
        "targets": {target.pk: account_pk for account_pk, target in targets.items()},
        "events": events,
    }


def test_rows_made_before_the_move_are_all_there_after_it(before_the_move):
    # Given a database of an older cxhub, filled with the demo organisation and the suite's
    # kinds of rows
    with transaction.atomic():
        made = _fill_before_the_move(before_the_move)

    # When it migrates
    _migrate()

    # Then every account is there with its tokens, under networks' content type of the same id
    accounts = {account.pk: account for account in SocialAccount.objects.all()}
    assert {pk: (a.access_token, a.refresh_token) for pk, a in accounts.items()} == made["tokens"]
    assert len(accounts) == len(demo.ACCOUNTS)
    app = OAuthApp.objects.get(pk=made["app"])
    assert app.client_secret == "the-client-secret"
    account_type = ContentType.objects.get_for_model(SocialAccount)
    assert account_type.pk == made["account_type"]
    assert not ContentType.objects.filter(app_label="accounts", model__in=MOVED).exists()
    assert set(
        ContentType.objects.filter(app_label="networks").values_list("model", flat=True)
    ) == set(MOVED)
    # and the permissions granted on them hold: a person's, a group's, and a model-wide one
    desk_account = accounts[made["desk_account"]]
    coast_account = accounts[made["coast_account"]]
    desk, volunteer, coast_admin = (
        User.objects.get(username=name) for name in ("desk", "drafter.south", "admin.coast")
    )
    assert desk.has_perm("networks.draft_socialaccount", desk_account)
    assert not desk.has_perm("networks.draft_socialaccount", coast_account)
    assert volunteer.has_perm("networks.draft_socialaccount", coast_account)
    assert get_perms(Group.objects.get(), coast_account) == ["draft_socialaccount"]
    assert coast_admin.has_perm("networks.change_socialaccount")
    drafting = social_accounts_for(user=desk, roles=[Role.DRAFTER])
    assert desk_account in drafting
    # and what points at them from above is where it was
    assert dict(PostTarget.objects.values_list("pk", "social_account_id")) == made["targets"]
    assert SandboxPublication.objects.get().social_account.channel == "sandbox"
    assert PublishingFreeze.objects.get().social_account == desk_account
    assert ApprovalPolicy.objects.get().social_account.handle == "@Agency"
    assert LogEntry.objects.get().get_edited_object() == desk_account
    # and the account's history is found under its model's new name
    admin = UserFactory(username="root", is_superuser=True)
    history = events_for(
        user=admin, object_type="networks.socialaccount", object_id=str(desk_account.pk)
    )
    assert [event.seq for event in history] == made["events"][:1]
    # and new accounts and grants go on from there
    new = SocialAccountFactory(team=desk_account.team)
    assert new.pk > max(accounts)
    assign_perm("networks.draft_socialaccount", desk, new)
    assert desk.has_perm("networks.draft_socialaccount", new)


def _rows(apps, app_label: str) -> dict:
    """Everything the move must keep, read through `apps` with the models under `app_label`."""
    model = apps.get_model
    accounts = model(app_label, "SocialAccount").objects.order_by("pk")
    types = model("contenttypes", "ContentType").objects.filter(model__in=MOVED)
    return {
        "accounts": list(accounts.values()),
        "apps": list(model(app_label, "OAuthApp").objects.order_by("pk").values()),
        "user_grants": list(
            model(app_label, "SocialAccountUserObjectPermission").objects.order_by("pk").values()
        ),
        "group_grants": list(
            model(app_label, "SocialAccountGroupObjectPermission").objects.order_by("pk").values()
        ),
        "types": sorted(types.values_list("pk", "app_label", "model")),
        "permissions": sorted(
            model("auth", "Permission")
            .objects.filter(content_type__in=types)
            .values_list("pk", "codename", "content_type_id")
        ),
        "targets": sorted(
            model("publishing", "PostTarget").objects.values_list("pk", "social_account_id")
        ),
        "policies": sorted(
            model("approvals", "ApprovalPolicy").objects.values_list("pk", "social_account_id")
        ),
    }


def test_the_demo_and_the_factories_rows_survive_the_move_both_ways(
    transactional_db, org, author, north_account, south_account
):
    # Given the demo organisation and the suite's rows, made by the services of today
    demo.seed_demo()
    desk = User.objects.get(username="desk")
    publishing.post_create(
        by=author,
        team_id=org["north"].pk,
        body="Launch window opens at dawn.",
        targets=[publishing.TargetInput(social_account_id=north_account.pk)],
    )
    assign_perm("networks.draft_socialaccount", Group.objects.create(name="Desk"), south_account)
    desk.user_permissions.add(Permission.objects.get(codename="view_socialaccount"))
    ApprovalPolicy.objects.create(name="South account", social_account=south_account)
    OAuthApp.objects.create(
        channel="mastodon",
        base_url="https://social.example",
        redirect_uri="https://cxhub.example/cb/",
    )
    now = _rows(current_apps, "networks")
    assert now["accounts"] and now["user_grants"] and now["group_grants"] and now["targets"]

    # When the database goes back to before the move, then forward again
    try:
        old_apps = _migrate(BEFORE_THE_MOVE)
        then = _rows(old_apps, "accounts")
    finally:
        _migrate()

    # Then nothing was lost either way: the same rows, the content types re-labelled in place
    relabelled = [(pk, "accounts", name) for pk, _, name in now["types"]]
    assert then == {**now, "types": relabelled}
    assert _rows(current_apps, "networks") == now
    assert desk.has_perm(
        "networks.draft_socialaccount", SocialAccount.objects.get(handle="@agency_north")
    )
