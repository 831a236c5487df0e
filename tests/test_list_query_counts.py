"""Lists that had no query-count test: the media list, my notifications, approval policies.
Each costs the same number of queries for a few rows or many."""

import pytest
from django.core.files.base import ContentFile
from rest_framework.test import APIClient

from accounts.models import Notification, Role
from approvals.models import ApprovalPolicy, ApprovalStage
from publishing.models import Media, MediaRendition

from .factories import SocialAccountFactory, UserFactory, grant


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.mark.parametrize("count", [2, 40])
def test_the_media_list_costs_the_same_queries(author, org, count, django_assert_num_queries):
    for index in range(count):
        media = Media(
            team=org["north"],
            uploaded_by=author,
            alt_text="alt",
            format="PNG",
            mime="image/png",
            width=1,
            height=1,
            bytes=1,
            sha256=f"{index:064d}",
        )
        media.file.save(f"m{index}.png", ContentFile(b"x"), save=False)
        media.save()
        MediaRendition.objects.create(
            media=media,
            channel="bluesky",
            file=media.file.name,
            format="PNG",
            width=1,
            height=1,
            bytes=1,
            sha256=media.sha256,
        )
    # media (scope inside), renditions
    with django_assert_num_queries(2):
        response = api(author).get("/api/v1/media/?page_size=100")
    assert len(response.json()["results"]) == count


@pytest.mark.parametrize("count", [2, 60])
def test_my_notifications_cost_the_same_queries(author, count, django_assert_num_queries):
    Notification.objects.bulk_create(
        Notification(user=author, kind="k", title=f"n{i}") for i in range(count)
    )
    # the page, the unread count
    with django_assert_num_queries(2):
        response = api(author).get("/api/v1/notifications/?page_size=100")
    assert len(response.json()["results"]) == count
    assert response["X-Unread-Count"] == str(count)


@pytest.mark.parametrize("count", [1, 20])
def test_approval_policies_cost_the_same_queries(org, count, django_assert_num_queries):
    admin = UserFactory(username="adm")
    grant(admin, org["hq"], Role.ADMIN)
    for index in range(count):
        account = SocialAccountFactory(team=org["north"], handle=f"@p{index}")
        policy = ApprovalPolicy.objects.create(name=f"P{index}", social_account=account)
        stage = ApprovalStage.objects.create(
            policy=policy, order=1, name="S", decider_team=org["hq"], decider_role="lead"
        )
        stage.named_users.set([admin])
    # policies (scope inside), stages, their named people
    with django_assert_num_queries(3):
        response = api(admin).get("/api/v1/approval-policies/?page_size=100")
    assert len(response.json()["results"]) == count
