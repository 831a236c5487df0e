"""cxhub.statements: a queryset compiled once per shape answers as the ORM does, for any
arguments of that shape; an argument the ORM would change is refused when compiling, never put
in the wrong place; and a Page serves DRF's cursor pagination as a queryset would."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from cxhub import statements
from cxhub.api import CursorPagination
from cxhub.statements import Page, Statement
from publishing import services
from publishing.models import Post, PostTarget

from ..factories import SocialAccountFactory

pytestmark = pytest.mark.django_db

COLUMNS = ("id", "post_id", "status", "body", "published_at", "reconcile_candidates")


@pytest.fixture
def targets(org, author):
    """Six posts of two targets each; some published (a time), some with JSON to decode."""
    north = org["north"]
    accounts = [SocialAccountFactory(team=north, handle=f"@n{n}") for n in range(2)]
    for n in range(6):
        services.post_create(
            by=author,
            team_id=north.pk,
            body=f"Post {n}",
            targets=[services.TargetInput(social_account_id=a.pk) for a in accounts],
        )
    moment = timezone.now() - datetime.timedelta(hours=1)
    some = PostTarget.objects.order_by("id")[::3]
    PostTarget.objects.filter(pk__in=[t.pk for t in some]).update(
        status="published", published_at=moment, reconcile_candidates=[{"id": "x", "n": 1}]
    )
    return list(PostTarget.objects.order_by("id"))


def _of_posts(post_ids, status):
    targets = PostTarget.objects.filter(post_id__in=post_ids).order_by("id")
    if status is not None:
        targets = targets.filter(status=status)
    return targets.values_list(*COLUMNS)


def test_the_rows_are_the_orms_for_every_shape_and_argument(targets):
    statement = Statement(_of_posts)
    post_ids = sorted({t.post_id for t in targets})
    cases = [
        (post_ids, None),
        (post_ids[:1], None),
        (post_ids[1:4], "published"),
        (post_ids[2:5], None),  # the shape of the last but one: the SQL kept, other ids
        (post_ids[::-1][:3], "pending"),
        ([post_ids[0], 10**12], None),  # an id of nothing
    ]
    for ids, status in cases:
        expected = list(_of_posts(ids, status))
        assert statement(ids, status) == expected, (ids, status)
    published = statement(post_ids, "published")
    assert published and all(isinstance(row[4], datetime.datetime) for row in published)
    assert published[0][4].tzinfo is not None  # SQLite's text made an aware time, as the ORM
    assert published[0][5] == [{"id": "x", "n": 1}]  # JSON decoded, as the ORM


def test_each_shape_is_compiled_once(targets):
    statement = Statement(_of_posts)
    ids = sorted({t.post_id for t in targets})
    statement(ids[:2], None)
    statement(ids[2:4], None)
    statement(ids[:3], None)
    statement(ids[:2], "published")
    assert len(statement._compiled) == 3  # two ids, three ids, two ids with a status


def test_a_shape_that_matches_nothing_asks_nothing(targets):
    statement = Statement(_of_posts)
    with CaptureQueriesContext(connection) as queries:
        assert statement([], None) == []
        assert statement([], "published") == []
    assert len(queries) == 0


def test_an_argument_the_orm_changes_is_refused_when_compiling(targets):
    starting = Statement(lambda text: PostTarget.objects.filter(body__startswith=text))
    with pytest.raises(ValueError, match="does not reach the SQL as itself"):
        starting("Own")
    unused = Statement(lambda post_id: PostTarget.objects.values_list("id"))
    with pytest.raises(ValueError, match="does not reach the SQL as itself"):
        unused(1)


def test_an_argument_used_twice_is_put_in_both_places(targets):
    first = targets[0]
    statement = Statement(
        lambda post_id: (
            PostTarget.objects.filter(post_id=post_id)
            .exclude(post__id__gt=post_id)
            .values_list("id")
            .order_by("id")
        )
    )
    expected = list(PostTarget.objects.filter(post_id=first.post_id).values_list("id"))
    assert statement(first.post_id) == expected
    assert statement(first.post_id + 1) == list(
        PostTarget.objects.filter(post_id=first.post_id + 1).values_list("id").order_by("id")
    )


@pytest.mark.parametrize("argument", [True, 1.5, datetime.date(2026, 1, 1), [1, "a"]])
def test_only_numbers_strings_times_and_lists_of_them_are_arguments(targets, argument):
    statement = Statement(lambda value: PostTarget.objects.filter(attempt_count=value))
    with pytest.raises(TypeError, match="whole number, a string, a time or a list"):
        statement(argument)


def test_a_time_reaches_the_sql_as_the_backend_adapts_it(targets):
    """On SQLite a time is text in UTC; on PostgreSQL, itself. Either way the rows are the
    ORM's, for any time and offset."""
    statement = Statement(
        lambda since: (
            PostTarget.objects.filter(published_at__gte=since).order_by("id").values_list("id")
        )
    )
    published = min(t.published_at for t in targets if t.published_at)
    paris = datetime.timezone(datetime.timedelta(hours=2))
    for since in (
        published,
        published + datetime.timedelta(microseconds=1),
        published.astimezone(paris),
        published - datetime.timedelta(days=1),
    ):
        expected = list(PostTarget.objects.filter(published_at__gte=since).values_list("id"))
        assert statement(since) == sorted(expected), since
    assert statement(published)
    with pytest.raises(TypeError, match="offset"):
        statement(datetime.datetime(2026, 1, 1))


def test_shapes_past_the_limit_push_out_the_oldest(targets, monkeypatch):
    monkeypatch.setattr(statements, "MAX_SHAPES", 2)
    statement = Statement(_of_posts)
    ids = sorted({t.post_id for t in targets})
    for length in (1, 2, 3):
        assert statement(ids[:length], None) == list(_of_posts(ids[:length], None))
    assert [shape[0][0][1] for shape in statement._compiled] == [2, 3]


def _posts_page(*, ordering, lookup, position, start, stop):
    posts = Post.objects.order_by(*ordering)
    if lookup is not None:
        posts = posts.filter(**{lookup: position})
    return posts.values_list("id", "body")[start:stop]


def test_a_page_serves_the_cursor_pagination_as_a_queryset_would(targets):
    statement = Statement(
        lambda position, **keys: _posts_page(position=position, **keys),
    )
    factory = APIRequestFactory()

    def pages(make_queryset):
        seen, url = [], "/posts/?page_size=4"
        while url:
            request = Request(factory.get(url))
            paginator = CursorPagination()
            seen.append(list(paginator.paginate_queryset(make_queryset(), request)))
            url = paginator.get_next_link()
        return seen

    by_rows = pages(lambda: Page(statement, Post, lambda row: dict(zip(("id", "body"), row))))
    by_orm = pages(lambda: Post.objects.values("id", "body"))
    assert by_rows == by_orm
    assert [len(page) for page in by_rows] == [4, 2]
