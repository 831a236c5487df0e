"""cxhub.outputs.FastOutput gives DRF's own answer, key for key: held against DRF's generic
`Serializer.to_representation` on the serializers that use it (posts with their targets, the
approvals inbox) and on a serializer with a field of every kind it knows or hands back."""

import datetime
import json
from types import SimpleNamespace

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from accounts.models import Role, User
from approvals import selectors as approval_selectors
from approvals.api.serializers import InboxItemOutput
from approvals.models import ApprovalPolicy, ApprovalStage, ApprovalStep
from cxhub.outputs import FastOutput
from networks.models import Channel
from publishing import selectors, services
from publishing.api.serializers import PostOutput
from publishing.models import Media, Post, PostTarget, TargetStatus

from ..factories import SocialAccountFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def drf_only(monkeypatch):
    """Within it, every FastOutput writes as plain DRF does (the reference)."""

    def reference():
        drf = serializers.Serializer.to_representation
        monkeypatch.setattr(FastOutput, "to_representation", drf)

    return reference


def _json(data) -> dict:
    return json.loads(JSONRenderer().render(data))


@pytest.fixture
def posts(org, author):
    """Posts in many shapes: drafts and scheduled, a time zone, tags, an urgent one, media, and
    targets published, failed, held and waiting on a reconcile."""
    north = org["north"]
    mastodon = SocialAccountFactory(team=north, channel=Channel.MASTODON, handle="@north")
    bluesky = SocialAccountFactory(team=north, channel=Channel.BLUESKY, handle="n.bsky.social")
    media = Media(
        team=north,
        uploaded_by=author,
        alt_text="A rocket at dawn",
        format="PNG",
        mime="image/png",
        width=1,
        height=1,
        bytes=1,
        sha256="a" * 64,
    )
    media.file.save("m.png", ContentFile(b"x"), save=False)
    media.save()
    both = [
        services.TargetInput(social_account_id=mastodon.pk),
        services.TargetInput(social_account_id=bluesky.pk, body="Own text for Bluesky"),
    ]
    made = [
        services.post_create(by=author, team_id=north.pk, body="Plain draft", targets=both[:1]),
        services.post_create(
            by=author,
            team_id=north.pk,
            body="Scheduled, with everything",
            link="https://example.org/launch",
            targets=both,
            media_ids=[media.pk],
            scheduled_at=timezone.now() + datetime.timedelta(days=2),
            timezone_name="Europe/Paris",
            tags=["launch", "dawn"],
            campaign="Artemis",
            urgent=True,
        ),
        services.post_create(by=author, team_id=north.pk, body="Published", targets=both),
    ]
    published = made[2].targets.order_by("id")
    PostTarget.objects.filter(pk=published[0].pk).update(
        status=TargetStatus.PUBLISHED,
        external_id="110",
        external_url="https://mastodon.example/@north/110",
        attempt_count=1,
        published_at=timezone.now(),
    )
    PostTarget.objects.filter(pk=published[1].pk).update(
        status=TargetStatus.FAILED,
        attempt_count=3,
        last_error="HTTP 503 from the network",
        held_reason="freeze",
        reconcile_candidates=[{"id": "at://x", "text": "Published"}],
    )
    return made


def _both_ways(drf_only, write) -> tuple[list, list]:
    fast = _json(write())
    drf_only()
    return fast, _json(write())


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/St_Johns"])
def test_a_page_of_posts_is_what_drf_writes(posts, author, drf_only, zone):
    ids = [post.pk for post in posts]
    page = selectors.for_listing(Post.objects.filter(pk__in=ids)).order_by("id")
    listed = selectors.fill_listing(list(page))
    detailed = list(selectors.with_details(Post.objects.filter(pk__in=ids)).order_by("id"))
    with timezone.override(zone):
        fast = _json(PostOutput(listed, many=True).data)
        detail_fast = _json(PostOutput(detailed, many=True).data)
        drf_only()
        reference = _json(PostOutput(detailed, many=True).data)
    assert fast == reference
    assert detail_fast == reference
    # every shape was there to compare
    targets = [target for post in reference for target in post["targets"]]
    assert {target["status"] for target in targets} >= {"published", "failed"}
    assert any(target["published_at"] for target in targets)
    assert any(post["media"] and post["tags"] and post["scheduled_at"] for post in reference)
    if zone != "UTC":
        assert not reference[0]["created_at"].endswith("Z")


def _pages(client, url: str) -> list[dict]:
    listed = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        listed.extend(response.json()["results"])
        url = response.json()["next"]
    return listed


@pytest.mark.parametrize("zone", ["UTC", "America/St_Johns"])
def test_the_api_pages_posts_read_as_rows_as_drf_writes_each_post(
    posts, org, author, lead, outsider, drf_only, settings, zone
):
    """The posts list reads its pages as rows (publishing.selectors.post_listing): every post
    anyone may see comes once, newest first, as DRF writes it with the ORM's models, whatever
    the page size, the filters, the person asking and the time zone."""
    settings.TIME_ZONE = zone
    mastodon = posts[0].targets.get().social_account_id
    more = services.post_create(
        by=author,
        team_id=org["north"].pk,
        body="Another",
        targets=[services.TargetInput(social_account_id=mastodon)],
        tags=["x"],
    )
    admin = User.objects.create(username="root", is_superuser=True)
    south_account = SocialAccountFactory(team=org["south"], handle="@south")
    south = services.post_create(
        by=outsider,
        team_id=org["south"].pk,
        body="South",
        targets=[services.TargetInput(social_account_id=south_account.pk)],
    )
    account = posts[1].targets.order_by("id").last().social_account_id
    asks = [
        (author, "", [more, *reversed(posts)]),
        (author, "status=draft,in_review", [more, *reversed(posts)]),
        (author, "status=published", []),
        (author, f"account={account}", [posts[2], posts[1]]),
        (lead, "", [south, more, *reversed(posts)]),  # HQ is above South too
        (outsider, "", [south]),
        (admin, "", [south, more, *reversed(posts)]),
    ]
    fast = {}
    for user, query, _ in asks:
        client = APIClient()
        client.force_authenticate(user)
        for size in (1, 2, 50):
            fast[user.username, query, size] = _pages(
                client, f"/api/v1/posts/?page_size={size}&{query}"
            )
    drf_only()
    for user, query, expected in asks:
        ordered = [Post.objects.get(pk=post.pk) for post in expected]
        reference = _json(
            PostOutput(
                selectors.with_details(
                    Post.objects.filter(pk__in=[p.pk for p in ordered])
                ).order_by("-id"),
                many=True,
            ).data
        )
        assert [item["id"] for item in reference] == [p.pk for p in ordered]
        for size in (1, 2, 50):
            assert fast[user.username, query, size] == reference, (user, query, size)


@pytest.mark.parametrize("ties", [False, True])
def test_the_inbox_pages_read_as_rows_are_what_drf_writes(org, author, approver, drf_only, ties):
    """The approvals inbox reads its pages as rows (approvals.selectors.inbox_listing): every
    waiting step comes once, oldest first, as DRF writes it with the ORM's models, for any page
    size, and when steps share their time (the cursor then counts past the ties)."""
    policy = ApprovalPolicy.objects.create(name="North", team=org["north"])
    ApprovalStage.objects.create(
        policy=policy, order=1, name="Comms", decider_team=org["north"], decider_role=Role.APPROVER
    )
    account = SocialAccountFactory(team=org["north"], channel=Channel.MASTODON)
    for index in range(5):
        post = services.post_create(
            by=author,
            team_id=org["north"].pk,
            body=f"For approval {index}",
            targets=[services.TargetInput(social_account_id=account.pk)],
        )
        services.post_submit(post=post, by=author)
    steps = approval_selectors.inbox_for(user=approver)
    first = steps.first()
    ApprovalStep.objects.filter(pk=first.pk).update(
        due_at=timezone.now() - datetime.timedelta(hours=1)
    )
    if ties:
        steps.update(activated_at=first.activated_at)
    client = APIClient()
    client.force_authenticate(approver)
    fast = {
        size: _pages(client, f"/api/v1/approvals/inbox/?page_size={size}") for size in (1, 2, 50)
    }
    drf_only()
    waiting = list(approval_selectors.inbox_for(user=approver))
    reference = _json(InboxItemOutput(waiting, many=True, context={"now": timezone.now()}).data)
    assert len(reference) == 5 and [item["overdue"] for item in reference].count(True) == 1
    assert {item["team"] for item in reference} == {"North"}
    for size, listed in fast.items():
        assert listed == reference, size


class Everything(FastOutput, serializers.ModelSerializer):
    """A field of each kind FastOutput reads itself, and some it hands back to DRF."""

    team_name = serializers.CharField(source="team.name")
    # A nullable relation: a row without one makes DRF leave the key out (read-only fields are
    # not required), and FastOutput must too.
    copied_body = serializers.CharField(source="duplicated_from.body", read_only=True)
    naive = serializers.DateTimeField(source="naive_time")  # not a model field: DRF's way
    in_paris = serializers.DateTimeField(source="created_at", default_timezone=datetime.UTC)
    flag = serializers.BooleanField(source="urgent")
    label = serializers.SerializerMethodField()

    class Meta:
        model = Post
        fields = [
            "id",
            "team",
            "duplicated_from",
            "status",
            "version",
            "tags",
            "campaign",
            "link",
            "created_at",
            "team_name",
            "copied_body",
            "naive",
            "in_paris",
            "flag",
            "label",
        ]

    def get_label(self, post) -> str:
        return f"{self.context['prefix']} {post.pk}"


def test_every_kind_of_field_is_written_as_drf_writes_it(posts, drf_only):
    first, second = Post.objects.filter(pk__in=[posts[0].pk, posts[1].pk]).order_by("id")
    second.duplicated_from = first
    second.save()
    rows = list(Post.objects.filter(pk__in=[first.pk, second.pk]).order_by("id"))
    for row in rows:
        row.naive_time = datetime.datetime(2026, 3, 29, 2, 30)  # naive: DRF makes it aware
    rows[0].status = "not-a-choice"  # a value outside the choices is written as it is

    def write():
        return Everything(rows, many=True, context={"prefix": "Post"}).data

    with timezone.override("Europe/Paris"):
        fast, reference = _both_ways(drf_only, write)
    assert fast == reference
    assert "_fast_spec" not in Everything.__dict__  # it has fields DRF must write
    assert "copied_body" not in reference[0] and reference[1]["copied_body"] == "Plain draft"
    assert reference[0]["in_paris"].endswith("Z")
    assert reference[0]["status"] == "not-a-choice"


class Labelled(FastOutput, serializers.ModelSerializer):
    label = serializers.SerializerMethodField()

    class Meta:
        model = Post
        fields = ["id", "created_at", "label"]

    def get_label(self, post) -> str:
        return f"{self.context['prefix']} {post.pk}"


def test_a_class_plan_is_shared_but_methods_see_their_own_context(posts):
    rows = list(Post.objects.order_by("id"))
    first = Labelled(rows, many=True, context={"prefix": "One"}).data
    again = Labelled(rows, many=True, context={"prefix": "Two"}).data
    assert "_fast_spec" in Labelled.__dict__
    assert "_fast_spec" not in Everything.__dict__  # it has fields DRF must write
    assert [row["label"].split()[0] for row in first] == ["One"] * len(rows)
    assert [row["label"].split()[0] for row in again] == ["Two"] * len(rows)


class WithDefault(FastOutput, serializers.ModelSerializer):
    campaign = serializers.CharField(default="none")

    class Meta:
        model = Post
        fields = ["id", "campaign"]


def test_a_serializer_with_a_field_it_cannot_read_keeps_its_plan_to_itself(posts, drf_only):
    rows = list(Post.objects.order_by("id"))
    fast, reference = _both_ways(drf_only, lambda: WithDefault(rows, many=True).data)
    assert fast == reference
    assert "_fast_spec" not in WithDefault.__dict__


def test_a_big_integer_follows_drfs_setting(settings, posts, drf_only):
    class Ids(FastOutput, serializers.ModelSerializer):
        class Meta:
            model = Post
            fields = ["id"]

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "COERCE_BIGINT_TO_STRING": True}
    rows = list(Post.objects.order_by("id"))
    fast, reference = _both_ways(drf_only, lambda: Ids(rows, many=True).data)
    assert fast == reference
    assert all(isinstance(row["id"], str) for row in reference)


def test_a_row_that_is_not_a_model_goes_drfs_way(drf_only):
    class Plain(FastOutput, serializers.Serializer):
        name = serializers.CharField()
        when = serializers.DateTimeField()

    rows = [SimpleNamespace(name="a", when=timezone.now()), {"name": "b", "when": None}]
    fast, reference = _both_ways(drf_only, lambda: Plain(rows, many=True).data)
    assert fast == reference
