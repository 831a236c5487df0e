"""What comes back on Mastodon (issue 17): mentions, replies, quotes and direct messages read
from the notifications of a Mastodon test server on 127.0.0.1."""

import json
from datetime import UTC, datetime

import pytest

from networks.channels import get_channel
from networks.channels import mastodon as mastodon_module
from networks.channels.errors import AuthExpired, PermanentError, RetryableError

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

KEY = "0b6f7f5e-7c1d-4d0e-9a55-2a9f3c7e1d42"


@pytest.fixture
def channel():
    return get_channel("mastodon")


def mentions(server, count: int) -> list[str]:
    """`count` mentions by one person; their status ids, oldest first."""
    return [server.add_mention(f"@north Question {n}?")["id"] for n in range(count)]


def walk(channel, account, cursor: str, *, limit: int = 40) -> tuple[list, str, int]:
    """Every page until none is waiting: the items, the last cursor, and how many calls."""
    items, calls = [], 0
    while True:
        page = channel.fetch_inbound(account, cursor, limit=limit)
        calls += 1
        items += page.items
        cursor = page.cursor
        if not page.more:
            return items, cursor, calls
        assert calls < 50, "paging never ended"


def test_mastodon_hears_back(channel):
    assert channel.hears_back is True


def test_the_first_call_reads_the_newest_page_only(channel, mastodon_account, mastodon_server):
    ids = mentions(mastodon_server, 50)

    page = channel.fetch_inbound(mastodon_account, "")

    assert sorted(item.network_id for item in page.items) == sorted(ids[-40:])
    assert page.more is False
    assert page.cursor == mastodon_server.notifications[-1]["id"]
    [query] = mastodon_server.notification_queries
    assert "min_id" not in query
    assert query["types[]"] == ["mention", "quote"]


def test_a_first_call_on_a_quiet_account_keeps_the_empty_cursor(
    channel, mastodon_account, mastodon_server
):
    page = channel.fetch_inbound(mastodon_account, "")

    assert (list(page.items), page.cursor, page.more) == ([], "", False)


def test_a_quiet_second_call_returns_nothing_and_the_same_cursor(
    channel, mastodon_account, mastodon_server
):
    mentions(mastodon_server, 3)
    first = channel.fetch_inbound(mastodon_account, "")

    second = channel.fetch_inbound(mastodon_account, first.cursor)

    assert (list(second.items), second.cursor, second.more) == ([], first.cursor, False)
    assert mastodon_server.notification_queries[-1]["min_id"] == [first.cursor]


def test_a_second_call_returns_only_what_is_new(channel, mastodon_account, mastodon_server):
    mentions(mastodon_server, 3)
    first = channel.fetch_inbound(mastodon_account, "")
    new = mentions(mastodon_server, 2)

    second = channel.fetch_inbound(mastodon_account, first.cursor)

    assert sorted(item.network_id for item in second.items) == sorted(new)
    assert second.cursor == mastodon_server.notifications[-1]["id"]


def test_it_asks_for_at_most_40_a_page(channel, mastodon_account, mastodon_server):
    channel.fetch_inbound(mastodon_account, "", limit=500)
    channel.fetch_inbound(mastodon_account, "", limit=5)

    assert [q["limit"] for q in mastodon_server.notification_queries] == [["40"], ["5"]]


def test_paging_walks_forward_without_losing_items_at_page_edges(
    channel, mastodon_account, mastodon_server
):
    # Notification ids run 998, 999, 1000 …: a cursor compared as a string stops at "999".
    mentions(mastodon_server, 1)
    start = channel.fetch_inbound(mastodon_account, "")
    new = mentions(mastodon_server, 25)

    first = channel.fetch_inbound(mastodon_account, start.cursor, limit=10)
    items, cursor, calls = walk(channel, mastodon_account, first.cursor, limit=10)

    assert first.more is True
    assert len(first.items) == 10
    assert sorted(i.network_id for i in [*first.items, *items]) == sorted(new)
    assert cursor == mastodon_server.notifications[-1]["id"]
    # 10 + 10 + 5: the short page ends the walk.
    assert calls == 2


def test_a_page_full_to_an_older_servers_maximum_has_more(
    channel, mastodon_account, mastodon_server
):
    mastodon_server.max_limit = 30  # Mastodon before 4.1
    mentions(mastodon_server, 1)
    start = channel.fetch_inbound(mastodon_account, "")
    new = mentions(mastodon_server, 35)

    items, _, calls = walk(channel, mastodon_account, start.cursor)

    assert sorted(item.network_id for item in items) == sorted(new)
    assert calls == 2


def test_ids_compare_as_numbers_never_as_strings():
    key = mastodon_module._id_key

    assert key("999") < key("1000") < key("10000")
    assert key("0999") == key("999")
    assert key("9" * 5000) > key("1" * 4999)  # beyond int()'s digit limit, still ordered
    assert key("01HZY3V7K8J2M4N6P8Q0R2S4T6") < key("01HZY3V7K8J2M4N6P8Q0R2S4T7")


def test_a_server_that_ignores_min_id_repeats_nothing(
    channel, mastodon_account, mastodon_server, monkeypatch
):
    mentions(mastodon_server, 3)
    first = channel.fetch_inbound(mastodon_account, "")
    # A fork that answers the newest page whatever the cursor.
    listing = mastodon_server.list_notifications

    def ignoring_min_id(request):
        request.query.pop("min_id", None)
        return listing(request)

    monkeypatch.setattr(mastodon_server, "list_notifications", ignoring_min_id)

    second = channel.fetch_inbound(mastodon_account, first.cursor)

    assert (list(second.items), second.cursor, second.more) == ([], first.cursor, False)


def test_a_reply_to_our_post_answers_what_publish_stored(
    channel, mastodon_account, mastodon_server
):
    published = channel.publish(mastodon_account, "Roadworks on Main St.", [], idempotency_key=KEY)
    reply = mastodon_server.add_reply(published.external_id, "How long will it take?")

    [item] = channel.fetch_inbound(mastodon_account, "").items

    assert item.kind == "reply"
    assert item.network_id == reply["id"]
    assert item.in_reply_to_id == published.external_id
    assert item.thread_id == published.external_id


def test_a_reply_in_someone_elses_thread_that_names_us_is_a_mention(
    channel, mastodon_account, mastodon_server
):
    theirs = mastodon_server.add_mention("@north Bins?", by="ann@other.example")
    start = channel.fetch_inbound(mastodon_account, "")
    mastodon_server.add_reply(theirs["id"], "may know.", by="bob@third.example")

    [item] = channel.fetch_inbound(mastodon_account, start.cursor).items

    assert item.kind == "mention"
    assert item.in_reply_to_id == theirs["id"]
    assert item.thread_id == theirs["id"]


def test_a_mention_outside_any_thread_is_its_own_thread(channel, mastodon_account, mastodon_server):
    status = mastodon_server.add_mention("@north Is the library open today?")

    [item] = channel.fetch_inbound(mastodon_account, "").items

    assert (item.kind, item.in_reply_to_id, item.thread_id) == ("mention", "", status["id"])


def test_a_direct_status_is_a_message(channel, mastodon_account, mastodon_server):
    mastodon_server.add_mention("@north My address is private.", visibility="direct")

    [item] = channel.fetch_inbound(mastodon_account, "").items

    assert item.kind == "message"


def test_a_quote_of_our_post_is_a_mention(channel, mastodon_account, mastodon_server):
    published = channel.publish(mastodon_account, "New opening hours.", [], idempotency_key=KEY)
    quote = mastodon_server.add_quote(published.external_id, "Finally, later hours!")

    [item] = channel.fetch_inbound(mastodon_account, "").items

    assert (item.kind, item.network_id) == ("mention", quote["id"])


def test_an_item_carries_its_author_text_language_time_link_and_payload(
    channel, mastodon_account, mastodon_server
):
    when = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    mastodon_server.person("friend@other.example", "Friendly Neighbour")
    status = mastodon_server.add_mention(
        "@north Merci pour la mise à jour !\n\nSee https://example.org/a-very-long-path/to-the-page",
        language="fr",
        created_at=when,
    )

    [item] = channel.fetch_inbound(mastodon_account, "").items

    assert item.text == (
        "@north Merci pour la mise à jour !\n\nSee https://example.org/a-very-long-path/to-the-page"
    )
    assert item.language == "fr"
    assert item.created_at == when
    assert item.author_handle == "friend@other.example"
    assert item.author_name == "Friendly Neighbour"
    assert item.author_id == status["account"]["id"]
    assert item.url == status["url"]
    assert item.raw == mastodon_server.notifications[-1]
    assert item.deleted is False


def test_a_status_without_a_language_has_none(channel, mastodon_account, mastodon_server):
    mastodon_server.add_mention("@north 👍", language=None)

    [item] = channel.fetch_inbound(mastodon_account, "").items

    assert item.language == ""


def test_other_notification_types_are_passed_over_and_the_cursor_moves_past_them(
    channel, mastodon_account, mastodon_server
):
    mastodon_server.types_supported = False  # a server before 3.5 sends every type
    published = channel.publish(mastodon_account, "Hello.", [], idempotency_key=KEY)
    mastodon_server.add_mention("@north First.")
    start = channel.fetch_inbound(mastodon_account, "")
    mastodon_server.add_notification("favourite", status=published.external_id)
    mastodon_server.add_notification("follow")
    later = mastodon_server.add_mention("@north Second.")

    page = channel.fetch_inbound(mastodon_account, start.cursor)

    assert [item.network_id for item in page.items] == [later["id"]]
    assert page.cursor == mastodon_server.notifications[-1]["id"]


def test_a_deleted_status_is_not_an_item(channel, mastodon_account, mastodon_server):
    mastodon_server.add_mention("@north Before.")
    start = channel.fetch_inbound(mastodon_account, "")
    gone = mastodon_server.add_mention("@north Oops, wrong account.")
    listed_gone = mastodon_server.add_mention("@north Deleting this too.")
    kept = mastodon_server.add_mention("@north This one stays.")
    mastodon_server.delete_status(gone["id"])  # Mastodon removes its notification
    mastodon_server.delete_status(listed_gone["id"], keep_notification=True)  # status: null

    page = channel.fetch_inbound(mastodon_account, start.cursor)

    assert [item.network_id for item in page.items] == [kept["id"]]
    assert page.cursor == mastodon_server.notifications[-1]["id"]


def test_a_rate_limit_answer_is_retryable_after_its_reset(
    channel, mastodon_account, mastodon_server
):
    mastodon_server.fail_next("notifications", "429", reset_in=90)

    with pytest.raises(RetryableError) as caught:
        channel.fetch_inbound(mastodon_account, "")

    assert caught.value.http_status == 429
    assert 80 <= caught.value.retry_after <= 90


def test_a_refused_token_is_auth_expired(channel, mastodon_account, mastodon_server):
    mastodon_account.set_tokens(access_token="revoked-token")
    mastodon_account.save()

    with pytest.raises(AuthExpired) as caught:
        channel.fetch_inbound(mastodon_account, "")

    assert caught.value.http_status == 401


def test_a_server_error_is_retryable(channel, mastodon_account, mastodon_server):
    mastodon_server.fail_next("notifications", "503")

    with pytest.raises(RetryableError):
        channel.fetch_inbound(mastodon_account, "")


def test_a_missing_endpoint_is_permanent(channel, mastodon_account, mastodon_server):
    mastodon_server.fail_next("notifications", "404")

    with pytest.raises(PermanentError):
        channel.fetch_inbound(mastodon_account, "")


@pytest.mark.parametrize(
    "body",
    [
        b"<!doctype html><p>Maintenance</p>",
        b'{"error": "not a list"}',
        b"[1, 2]",
        b'[{"type": "mention", "status": null}]',
        b'[{"id": true, "type": "mention"}]',
        b"null",
    ],
)
def test_a_malformed_answer_is_retryable(channel, mastodon_account, mastodon_server, body):
    mastodon_server.fail_next("notifications", "malformed", body=body)

    with pytest.raises(RetryableError, match="notification"):
        channel.fetch_inbound(mastodon_account, "")


def test_an_unreadable_status_is_passed_over_without_stopping_the_page(
    channel, mastodon_account, mastodon_server
):
    listed = [
        # No time anywhere: it cannot be an item.
        {"id": "6", "type": "mention", "status": {"id": "60", "content": "<p>Hi</p>"}},
        {"id": "7", "type": "mention", "status": {"content": "no id"}},
        {"id": "8", "type": "mention", "status": {"id": ["x"]}},
        {"id": "9", "type": "mention", "status": "gone"},
        {
            "id": "10",
            "type": "mention",
            "created_at": "2026-01-05T10:00:00.000Z",
            "status": {
                "id": "100",
                "content": 42,
                "in_reply_to_id": {"x": 1},
                "language": 5,
                "account": {"acct": None, "display_name": []},
                "url": None,
            },
        },
    ]
    mastodon_server.fail_next("notifications", "malformed", body=json.dumps(listed).encode())

    page = channel.fetch_inbound(mastodon_account, "5")

    [item] = page.items
    assert (item.network_id, item.text, item.in_reply_to_id, item.language) == ("100", "", "", "")
    assert item.created_at == datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert item.author_handle == ""
    assert page.cursor == "10"
