"""The shared cast: an agency with two regions, an author, an approver, a lead and an outsider
from a sibling region."""

import os
import shutil
from pathlib import Path

import pytest
from django.db import connection

from accounts.models import Role
from approvals.models import ApprovalPolicy, ApprovalStage, Rule

from .factories import SocialAccountFactory, UserFactory, grant, make_team

# CI (.ci/run) runs the suite twice, on PostgreSQL and then on the embedded defaults; it sets this
# for the second pass, which then leaves out the tests that ran in the first and do not depend on
# the database or the broker: the browser's (`browser`) and those of real peers (`peer`: the
# networks' stand-ins, the API schema). A plain `make test` runs them whatever the database.
PEERS_DONE = os.environ.get("CXHUB_TEST_PEERS_DONE", "") == "1"


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    if PEERS_DONE:
        reason = "ran in this CI's PostgreSQL pass (browser and real peers, whatever the database)"
        for item in items:
            if "peer" in item.keywords or "browser" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" in engine:
        return
    reason = "needs PostgreSQL: runs in CI's PostgreSQL pass (DATABASE_URL=postgres://…)"
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """On PostgreSQL, the app runs as a restricted role once the owner has migrated
    (tests/dbroles.py)."""
    from .dbroles import app_role_start, app_role_stop

    with django_db_blocker.unblock():
        app_role_start()
    yield
    with django_db_blocker.unblock():
        app_role_stop()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache (and no networks' rate limits kept): DRF's throttles
    count in it, and a count left by an earlier test within the same minute (more of them fall in
    one minute on an idle machine, or fewer on a loaded one) must not decide this test's
    answer."""
    from django.conf import settings
    from django.core.cache import cache

    cache.clear()
    # The networks' rate limits an earlier test's answers taught (networks/ratelimits.py: in the
    # cache on Redis, in files on the embedded default) are not this test's.
    shutil.rmtree(Path(settings.VAR_DIR) / "rate-limits", ignore_errors=True)
    yield


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"


@pytest.fixture
def org(db):
    """HQ → North (→ North Centre), South (→ South Centre)."""
    hq = make_team("HQ")
    north = make_team("North", hq)
    south = make_team("South", hq)
    north_centre = make_team("North Centre", north)
    south_centre = make_team("South Centre", south)
    return {
        "hq": hq,
        "north": north,
        "south": south,
        "north_centre": north_centre,
        "south_centre": south_centre,
    }


@pytest.fixture
def author(org):
    user = UserFactory(username="alice")
    grant(user, org["north"], Role.DRAFTER)
    return user


@pytest.fixture
def approver(org):
    user = UserFactory(username="bob")
    grant(user, org["north"], Role.APPROVER)
    return user


@pytest.fixture
def lead(org):
    user = UserFactory(username="lena")
    grant(user, org["hq"], Role.LEAD)
    return user


@pytest.fixture
def outsider(org):
    """A drafter of the sibling region: must never see North's things."""
    user = UserFactory(username="charlie")
    grant(user, org["south"], Role.DRAFTER)
    return user


@pytest.fixture
def north_account(org):
    return SocialAccountFactory(team=org["north_centre"], handle="@north_centre")


@pytest.fixture
def south_account(org):
    return SocialAccountFactory(team=org["south"], handle="@south")


@pytest.fixture
def hq_approver(org):
    user = UserFactory(username="hana")
    grant(user, org["hq"], Role.APPROVER)
    return user


@pytest.fixture
def two_stage_policy(org, approver, hq_approver):
    """Stage 1: any approver of North; stage 2: hana at HQ, who must approve."""
    policy = ApprovalPolicy.objects.create(name="North chain", team=org["north"])
    ApprovalStage.objects.create(
        policy=policy,
        order=1,
        name="Regional check",
        decider_team=org["north"],
        decider_role=Role.APPROVER,
        rule=Rule.ANY,
    )
    stage = ApprovalStage.objects.create(
        policy=policy, order=2, name="HQ sign-off", rule=Rule.ALL, sla_hours=4
    )
    stage.named_users.set([hq_approver])
    return policy
