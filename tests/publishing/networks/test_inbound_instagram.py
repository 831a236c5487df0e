"""Hearing back from Instagram (issue 17): the comments (and their replies) on the account's
media, read incrementally from the Graph API test server on 127.0.0.1."""

import io
import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from PIL import Image

from networks.channels import get_channel
from networks.channels import instagram as instagram_module
from networks.channels.errors import AuthExpired, PermanentError, RetryableError
from networks.channels.facebook import GRAPH_VERSION

from .conftest import upload
from .graph_server import PERMISSIONS

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

KEY = "3c2b1a09-8f7e-4d6c-b5a4-9382716a5b4c"
IG_ID = "17841400000000001"


@pytest.fixture
def channel():
    return get_channel("instagram")


@pytest.fixture
def media(graph_server):
    """A post of the account (made in the Instagram app an hour ago): its IG media id."""
    return graph_server.add_ig_media(IG_ID, "Spring at the park.", published=time.time() - 3600)[
        "id"
    ]


def _ids(page) -> list[str]:
    return [item.network_id for item in page.items]


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


def _comment_reads(graph_server) -> list[str]:
    return [
        path
        for _, path in graph_server.requests
        if path.endswith("/comments") or path.endswith("/replies")
    ]


def test_the_channel_hears_back(channel):
    assert channel.hears_back is True


def test_the_first_call_takes_the_newest_page_only(channel, instagram_account, graph_server, media):
    start = time.time() - 600
    made = [graph_server.add_ig_comment(media, f"Lovely {n}", created=start + n) for n in range(5)]

    page = channel.fetch_inbound(instagram_account, "", limit=3)

    assert _ids(page) == [c["id"] for c in made[2:]]
    assert page.more is False


def test_a_quiet_second_call_asks_for_no_comments_and_keeps_the_cursor(
    channel, instagram_account, graph_server, media
):
    graph_server.add_ig_comment(media, "First!")
    first = channel.fetch_inbound(instagram_account, "")
    reads = len(_comment_reads(graph_server))

    again = channel.fetch_inbound(instagram_account, first.cursor)

    assert again.items == []
    assert again.cursor == first.cursor
    assert again.more is False
    # comments_count did not change: the medium's comments were not read again.
    assert len(_comment_reads(graph_server)) == reads


def test_a_later_call_returns_only_the_new_comments_and_replies(
    channel, instagram_account, graph_server, media
):
    old = graph_server.add_ig_comment(media, "Seen already.", created=time.time() - 120)
    first = channel.fetch_inbound(instagram_account, "")
    new = graph_server.add_ig_comment(media, "So green!")
    # A new reply under the old comment: found although the comment itself is not new.
    reply = graph_server.add_ig_comment(media, "Agreed.", parent=old["id"])

    later = channel.fetch_inbound(instagram_account, first.cursor)

    assert _ids(first) == [old["id"]]
    assert sorted(_ids(later)) == sorted([new["id"], reply["id"]])
    assert channel.fetch_inbound(instagram_account, later.cursor).items == []


def test_a_first_call_without_comments_makes_every_later_one_new(
    channel, instagram_account, graph_server, media
):
    first = channel.fetch_inbound(instagram_account, "")
    made = [graph_server.add_ig_comment(media, f"Hello {n}") for n in range(3)]

    later = channel.fetch_inbound(instagram_account, first.cursor)

    assert first.items == []
    assert sorted(_ids(later)) == sorted(c["id"] for c in made)


def test_paging_walks_to_the_end_without_losing_comments_at_page_edges(
    channel, instagram_account, graph_server, media, monkeypatch
):
    # Graph pages of 2 comments, each carrying 1 reply (the rest on /replies), calls of 3.
    monkeypatch.setattr(instagram_module, "IG_COMMENTS_PAGE", 2)
    graph_server.ig_reply_page = 1
    other = graph_server.add_ig_media(IG_ID, "Autumn.", published=time.time() - 1800)["id"]
    old = graph_server.add_ig_comment(media, "Before we listened.", created=time.time() - 60)
    cursor = channel.fetch_inbound(instagram_account, "").cursor
    now = time.time()
    made = []
    for n in range(7):
        # Three in each second, across two media: the mark often falls mid-second.
        target = media if n % 2 else other
        made.append(graph_server.add_ig_comment(target, f"Comment {n}", created=now + n // 3))
    for n in range(3):
        parent = old if n < 2 else made[1]
        made.append(
            graph_server.add_ig_comment(
                media, f"Reply {n}", parent=parent["id"], created=now + 2 + n // 2
            )
        )

    heard, pages = [], []
    for _ in range(10):
        page = channel.fetch_inbound(instagram_account, cursor, limit=3)
        heard += _ids(page)
        pages.append(page)
        cursor = page.cursor
        if not page.more:
            break

    assert sorted(heard) == sorted(c["id"] for c in made)  # each exactly once
    assert len(heard) == len(set(heard))
    assert [len(p.items) for p in pages] == [3, 3, 3, 1]
    assert [p.more for p in pages] == [True, True, True, False]
    assert any(path.endswith(f"/{old['id']}/replies") for path in _comment_reads(graph_server))
    assert channel.fetch_inbound(instagram_account, cursor).items == []


def test_comments_and_replies_answer_the_post_as_publish_stored_it(
    channel, instagram_account, graph_server, settings, live_server, author, org, monkeypatch
):
    monkeypatch.setattr(instagram_module, "CONTAINER_POLL_SECONDS", 0.01)
    settings.CXHUB_PUBLIC_URL = live_server.url  # where the server fetches the image from
    picture = upload(author, org, _jpeg(), "A red square.", "red.jpg")
    item = {"position": 0, "sha256": picture.sha256, "alt_text": picture.alt_text}
    published = channel.publish(instagram_account, "Red.", [item], idempotency_key=KEY)
    comment = graph_server.add_ig_comment(published.external_id, "Nice!", username="ann.reader")
    reply = graph_server.add_ig_comment(
        published.external_id, "Indeed.", parent=comment["id"], username="bo.baker"
    )

    page = channel.fetch_inbound(instagram_account, "")

    by_id = {one.network_id: one for one in page.items}
    first, second = by_id[comment["id"]], by_id[reply["id"]]
    assert first.kind == second.kind == "comment"
    assert first.in_reply_to_id == published.external_id
    assert second.in_reply_to_id == comment["id"]
    assert first.thread_id == second.thread_id == published.external_id
    assert first.url == second.url == published.external_url
    assert (first.author_handle, second.author_handle) == ("@ann.reader", "@bo.baker")
    assert first.author_id == comment["author"]["id"]
    assert first.text == "Nice!"
    assert first.created_at.utcoffset() == timedelta(0)
    assert abs(first.created_at.timestamp() - comment["created"]) < 1
    assert first.raw["id"] == comment["id"] and "replies" not in first.raw
    assert second.raw["parent_id"] == comment["id"]
    assert first.deleted is False


def test_the_accounts_own_replies_are_not_items_but_are_passed(
    channel, instagram_account, graph_server, media
):
    cursor = channel.fetch_inbound(instagram_account, "").cursor
    question = graph_server.add_ig_comment(media, "Where is this?")
    graph_server.add_ig_comment(
        media, "Central Park, by the lake.", parent=question["id"], username="north.desk"
    )

    page = channel.fetch_inbound(instagram_account, cursor)

    assert _ids(page) == [question["id"]]
    assert channel.fetch_inbound(instagram_account, page.cursor).items == []


def test_a_hidden_comment_is_marked_deleted(channel, instagram_account, graph_server, media):
    cursor = channel.fetch_inbound(instagram_account, "").cursor
    spam = graph_server.add_ig_comment(media, "Follow me for followers")
    graph_server.hide_comment(spam["id"])
    kept = graph_server.add_ig_comment(media, "Beautiful.")

    page = channel.fetch_inbound(instagram_account, cursor)

    assert {one.network_id: one.deleted for one in page.items} == {
        spam["id"]: True,
        kept["id"]: False,
    }


def test_a_medium_whose_count_fell_is_read_again_and_nothing_is_repeated(
    channel, instagram_account, graph_server, media
):
    graph_server.add_ig_comment(media, "Kept.", created=time.time() - 60)
    gone = graph_server.add_ig_comment(media, "Deleted soon.", created=time.time() - 30)
    cursor = channel.fetch_inbound(instagram_account, "").cursor
    graph_server.delete_comment(gone["id"])

    page = channel.fetch_inbound(instagram_account, cursor)

    assert page.items == []
    assert page.cursor == cursor


def test_the_cursor_is_small_json(channel, instagram_account, graph_server, media):
    graph_server.add_ig_comment(media, "Hi.")

    cursor = channel.fetch_inbound(instagram_account, "").cursor

    data = json.loads(cursor)
    assert data["n"] == {media: 1}
    assert len(cursor) < 200


def test_only_the_newest_media_are_read(channel, instagram_account, graph_server):
    oldest = graph_server.add_ig_media(IG_ID, "Old.", published=time.time() - 86400 * 90)
    for n in range(instagram_module.INBOUND_POSTS):
        graph_server.add_ig_media(IG_ID, f"Post {n}", published=time.time() - 3600 + n)
    graph_server.add_ig_comment(oldest["id"], "Late comment on an old post.")

    page = channel.fetch_inbound(instagram_account, "")

    assert page.items == []
    assert _comment_reads(graph_server) == []


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["ig_media_list", "ig_comments"])
def test_a_rate_limit_is_retryable_after_the_time_meta_estimates(
    channel, instagram_account, graph_server, media, route
):
    graph_server.add_ig_comment(media, "Hi.")
    graph_server.fail_next(route, "429", minutes=3)

    with pytest.raises(RetryableError) as caught:
        channel.fetch_inbound(instagram_account, "")

    assert caught.value.retry_after == 180


def test_an_expired_token_is_auth_expired_without_asking_meta(
    channel, instagram_account, graph_server
):
    instagram_account.expires_at = timezone.now() - timedelta(minutes=1)
    instagram_account.save(update_fields=["expires_at"])

    with pytest.raises(AuthExpired, match="expired"):
        channel.fetch_inbound(instagram_account, "")

    assert graph_server.requests == []


def test_a_token_meta_refuses_is_auth_expired(channel, instagram_account, graph_server):
    graph_server.invalidate(instagram_account.access_token)

    with pytest.raises(AuthExpired, match="190"):
        channel.fetch_inbound(instagram_account, "")


@pytest.mark.parametrize(
    ("route", "mode"),
    [
        ("ig_media_list", "malformed"),
        ("ig_media_list", "not_json"),
        ("ig_comments", "malformed"),
        ("ig_comments", "not_json"),
    ],
)
def test_an_answer_we_cannot_read_is_retryable(
    channel, instagram_account, graph_server, media, route, mode
):
    graph_server.add_ig_comment(media, "Hi.")
    graph_server.fail_next(route, mode)

    with pytest.raises(RetryableError, match="without a list of items"):
        channel.fetch_inbound(instagram_account, "")


def test_replies_in_a_form_we_cannot_read_are_retryable(
    channel, instagram_account, graph_server, media, monkeypatch
):
    parent = graph_server.add_ig_comment(media, "Hi.")
    graph_server.add_ig_comment(media, "Hello.", parent=parent["id"])
    real = graph_server._ig_comment

    def broken(comment, fields):
        answer = real(comment, fields)
        if "replies" in answer:
            answer["replies"] = ["not", "an", "edge"]
        return answer

    monkeypatch.setattr(graph_server, "_ig_comment", broken)

    with pytest.raises(RetryableError, match="replies"):
        channel.fetch_inbound(instagram_account, "")


def test_a_server_error_is_retryable(channel, instagram_account, graph_server, media):
    graph_server.add_ig_comment(media, "Hi.")
    graph_server.fail_next("ig_comments", "500")

    with pytest.raises(RetryableError):
        channel.fetch_inbound(instagram_account, "")


def test_without_the_permission_to_read_comments_it_is_refused_naming_it(
    channel, instagram_account, graph_server, media
):
    graph_server.add_ig_comment(media, "Hi.")
    token = graph_server.tokens[instagram_account.access_token]
    token.scopes = frozenset(PERMISSIONS - {"instagram_manage_comments"})

    with pytest.raises(PermanentError, match="instagram_manage_comments"):
        channel.fetch_inbound(instagram_account, "")


def test_connecting_asks_for_the_permission_to_read_comments(channel):
    assert "instagram_manage_comments" in channel.scopes


def test_it_reads_the_media_list_once_per_call(channel, instagram_account, graph_server, media):
    channel.fetch_inbound(instagram_account, "")

    assert graph_server.requests.count(("GET", f"/{GRAPH_VERSION}/{IG_ID}/media")) == 1
