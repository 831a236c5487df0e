"""Which kept Instagram comments are gone (issue 17): the comments on the account's media, as
fetch_inbound read them, checked fifty a call with Graph's multiple-id read against the Graph API
test server on 127.0.0.1; deleted and hidden ones are gone."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from networks.channels import facebook as facebook_module
from networks.channels import get_channel
from networks.channels.errors import AuthExpired, PermanentError, RetryableError
from networks.channels.facebook import GRAPH_VERSION

from .graph_server import PERMISSIONS

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

IG_ID = "17841400000000001"


@pytest.fixture
def channel():
    return get_channel("instagram")


@pytest.fixture
def media(graph_server):
    """A post of the account, made in the Instagram app an hour ago: its IG media id."""
    return graph_server.add_ig_media(IG_ID, "Spring at the park.", published=time.time() - 3600)[
        "id"
    ]


def items(channel, account, server, media: str, count: int) -> list[str]:
    """`count` comments on `media`, read as the inbox reads them; their network ids, oldest
    first."""
    for n in range(count):
        server.add_ig_comment(media, f"Lovely {n}", created=1_800_000_000 + n)
    page = channel.fetch_inbound(account, "", limit=count)
    assert len(page.items) == count
    server.requests.clear()
    return [item.network_id for item in page.items]


def reads(server) -> int:
    return sum(1 for request in server.requests if request == ("GET", f"/{GRAPH_VERSION}/"))


@pytest.mark.parametrize("missing_ids", ["refuse", "error", "omit"])
def test_it_names_exactly_the_deleted_and_hidden_comments(
    channel, instagram_account, graph_server, media, missing_ids
):
    # Given five comments: one deleted by its author, one hidden by the account
    ids = items(channel, instagram_account, graph_server, media, 5)
    graph_server.delete_comment(ids[0])
    graph_server.hide_comment(ids[2])
    graph_server.missing_ids = missing_ids

    # When the inbox asks which are gone
    gone = channel.items_gone(instagram_account, ids)

    # Then those two
    assert gone == {ids[0], ids[2]}
    assert reads(graph_server) == (2 if missing_ids == "refuse" else 1)


def test_a_reply_is_checked_like_a_comment(channel, instagram_account, graph_server, media):
    question = graph_server.add_ig_comment(media, "Where is this?", created=1_800_000_000)
    graph_server.add_ig_comment(media, "Riverside.", parent=question["id"], created=1_800_000_001)
    page = channel.fetch_inbound(instagram_account, "")
    first, reply = (item.network_id for item in page.items)
    graph_server.delete_comment(reply)

    assert channel.items_gone(instagram_account, [first, reply]) == {reply}


def test_nothing_gone_names_nothing(channel, instagram_account, graph_server, media):
    ids = items(channel, instagram_account, graph_server, media, 3)

    assert channel.items_gone(instagram_account, ids) == set()
    assert reads(graph_server) == 1


def test_comments_of_a_deleted_medium_are_gone(channel, instagram_account, graph_server, media):
    ids = items(channel, instagram_account, graph_server, media, 2)
    graph_server.delete_ig_media(media)

    assert channel.items_gone(instagram_account, ids) == set(ids)


def test_fifty_one_comments_take_two_reads(channel, instagram_account, graph_server, media):
    # Given 51 comments (Meta reads 50 ids a call), on two media: the inbox reads 50 of a
    # medium at first
    other = graph_server.add_ig_media(IG_ID, "Autumn.", published=time.time() - 7200)["id"]
    graph_server.add_ig_comment(other, "Golden!", created=1_799_999_999)
    for n in range(50):
        graph_server.add_ig_comment(media, f"Lovely {n}", created=1_800_000_000 + n)
    ids = [item.network_id for item in channel.fetch_inbound(instagram_account, "", limit=51).items]
    assert len(ids) == 51
    graph_server.requests.clear()
    graph_server.hide_comment(ids[0])
    graph_server.delete_comment(ids[50])

    gone = channel.items_gone(instagram_account, ids)

    assert gone == {ids[0], ids[50]}
    assert reads(graph_server) == 2


def test_the_batch_size_is_the_channels_maximum(
    channel, instagram_account, graph_server, media, monkeypatch
):
    monkeypatch.setattr(facebook_module, "IDS_PER_CALL", 2)
    ids = items(channel, instagram_account, graph_server, media, 5)
    graph_server.hide_comment(ids[3])

    assert channel.items_gone(instagram_account, ids) == {ids[3]}
    assert reads(graph_server) == 3


@pytest.mark.parametrize("ids", [[], [""]])
def test_nothing_to_check_calls_nothing(channel, instagram_account, graph_server, ids):
    # Even a token close to its end is not renewed for nothing.
    instagram_account.expires_at = timezone.now() + timedelta(days=1)
    instagram_account.save(update_fields=["expires_at"])

    assert channel.items_gone(instagram_account, ids) == set()
    assert graph_server.requests == []


# --- errors ---------------------------------------------------------------------------------------


def test_a_rate_limit_is_retryable_and_names_nothing(
    channel, instagram_account, graph_server, media
):
    ids = items(channel, instagram_account, graph_server, media, 2)
    graph_server.delete_comment(ids[0])
    graph_server.fail_next("ids", "429", minutes=4)

    with pytest.raises(RetryableError) as caught:
        channel.items_gone(instagram_account, ids)

    assert caught.value.http_status == 429
    assert caught.value.retry_after == 240


@pytest.mark.parametrize("mode", ["500", "transient"])
def test_a_server_error_is_retryable(channel, instagram_account, graph_server, media, mode):
    ids = items(channel, instagram_account, graph_server, media, 2)
    graph_server.delete_comment(ids[0])
    graph_server.fail_next("ids", mode)

    with pytest.raises(RetryableError):
        channel.items_gone(instagram_account, ids)


@pytest.mark.parametrize(
    ("mode", "words"), [("malformed", "did not ask for"), ("not_json", "none of the 2")]
)
def test_an_answer_we_cannot_read_is_retryable_and_names_nothing(
    channel, instagram_account, graph_server, media, mode, words
):
    ids = items(channel, instagram_account, graph_server, media, 2)
    graph_server.fail_next("ids", mode)

    with pytest.raises(RetryableError, match=words):
        channel.items_gone(instagram_account, ids)


def test_an_expired_token_is_auth_expired_without_asking_meta(
    channel, instagram_account, graph_server, media
):
    ids = items(channel, instagram_account, graph_server, media, 1)
    instagram_account.expires_at = timezone.now() - timedelta(minutes=1)
    instagram_account.save(update_fields=["expires_at"])

    with pytest.raises(AuthExpired, match="expired"):
        channel.items_gone(instagram_account, ids)

    assert graph_server.requests == []


def test_a_token_meta_refuses_is_auth_expired(channel, instagram_account, graph_server, media):
    ids = items(channel, instagram_account, graph_server, media, 1)
    graph_server.invalidate(instagram_account.access_token)

    with pytest.raises(AuthExpired, match="190"):
        channel.items_gone(instagram_account, ids)


def test_without_instagram_manage_comments_it_is_refused_in_metas_words(
    channel, instagram_account, graph_server, media
):
    ids = items(channel, instagram_account, graph_server, media, 1)
    token = graph_server.tokens[instagram_account.access_token]
    token.scopes = frozenset(PERMISSIONS - {"instagram_manage_comments"})

    with pytest.raises(PermanentError, match="instagram_manage_comments"):
        channel.items_gone(instagram_account, ids)


def test_checking_changes_nothing(channel, instagram_account, graph_server, media):
    ids = items(channel, instagram_account, graph_server, media, 3)
    graph_server.hide_comment(ids[1])
    before = [dict(c) for c in graph_server.comments]

    channel.items_gone(instagram_account, ids)

    assert [dict(c) for c in graph_server.comments] == before
    assert {method for method, _ in graph_server.requests} == {"GET"}
