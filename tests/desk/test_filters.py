"""Reading the filters from a query string: each bad value is named with its field."""

from datetime import UTC, datetime

import pytest

from cxhub.errors import ApplicationError
from desk.filters import parse_event_filters, parse_format


def refused(params) -> dict:
    with pytest.raises(ApplicationError) as error:
        parse_event_filters(params)
    assert error.value.status == 400
    return error.value.extra["fields"]


def test_nothing_given_is_no_filter():
    filters = parse_event_filters({})

    assert filters.given == {}
    assert filters.team_id is None
    assert filters.selector_kwargs() == {
        "actor": None,
        "action": "",
        "object_type": "",
        "object_id": "",
        "since": None,
        "until": None,
    }


def test_values_are_read_and_kept_as_given():
    params = {
        "team": "7",
        "actor": "alice",
        "action": " post.* ",
        "object_type": "publishing.post",
        "object_id": "101",
        "since": "2025-03-01T09:00:00+01:00",
        "until": "2025-03-02T00:00:00Z",
        "cursor": "ignored",
    }

    filters = parse_event_filters(params)

    assert filters.team_id == 7
    assert filters.actor == "alice"
    assert filters.action == "post.*"
    assert filters.since == datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    assert filters.until == datetime(2025, 3, 2, 0, 0, tzinfo=UTC)
    assert "cursor" not in filters.given
    assert filters.given["action"] == "post.*"


def test_an_all_digit_actor_is_a_user_id():
    assert parse_event_filters({"actor": "42"}).actor == 42


def test_a_date_alone_means_the_whole_day():
    filters = parse_event_filters({"since": "2025-03-01", "until": "2025-03-01"})

    assert filters.since == datetime(2025, 3, 1, tzinfo=UTC)
    assert filters.until == datetime(2025, 3, 2, tzinfo=UTC)


def test_a_plus_turned_into_a_space_by_the_query_string_still_reads_as_an_offset():
    filters = parse_event_filters({"since": "2025-03-01T09:00:00 01:00"})

    assert filters.since == datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"team": "north"}, "team", "Not a team id"),
        ({"team": "0"}, "team", "Not a team id"),
        ({"team": "99999999999999999999"}, "team", "Not a team id"),
        ({"team": "１２"}, "team", "Not a team id"),
        ({"actor": "99999999999999999999"}, "actor", "Not a user id"),
        ({"since": "yesterday"}, "since", "Not an ISO 8601 date"),
        ({"since": "2025-03-01T09:00:00"}, "since", "Give a UTC offset"),
        ({"until": "2025-02-30"}, "until", "Not an ISO 8601 date"),
        ({"until": "9999-12-31"}, "until", "Out of range"),
        ({"since": "0001-01-01T00:00:00+01:00"}, "since", "Out of range"),
        ({"since": "2025-03-02", "until": "2025-03-01"}, "until", "Must be after since"),
        ({"object_id": "101"}, "object_id", "Give object_type too"),
        ({"action": "post\x00"}, "action", "NUL"),
    ],
)
def test_a_bad_value_is_named_with_its_field(params, field, message):
    fields = refused(params)

    assert list(fields) == [field]
    assert fields[field][0].startswith(message) or message in fields[field][0]


def test_every_bad_field_is_named_at_once():
    fields = refused({"team": "x", "since": "nope", "until": "2025-01-01T00:00"})

    assert set(fields) == {"team", "since", "until"}


def test_the_message_names_the_first_bad_field():
    with pytest.raises(ApplicationError) as error:
        parse_event_filters({"since": "nope"})

    assert error.value.message.startswith("since: Not an ISO 8601 date")


@pytest.mark.parametrize(("given", "expected"), [("", "json"), ("json", "json"), ("csv", "csv")])
def test_the_format_defaults_to_a_json_page(given, expected):
    assert parse_format({"format": given}) == expected


def test_an_unknown_format_is_named():
    with pytest.raises(ApplicationError) as error:
        parse_format({"format": "xlsx"})

    assert error.value.extra == {"fields": {"format": ["One of json, csv, jsonl."]}}
