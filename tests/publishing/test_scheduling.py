"""Times in the author's zone, stored in UTC, across daylight-saving changes."""

from datetime import UTC, date, datetime, time

import pytest

from cxhub.errors import ApplicationError
from publishing.scheduling import is_ambiguous, local_to_utc, utc_to_local


@pytest.mark.parametrize(
    ("zone", "day", "clock", "expected"),
    [
        # London: GMT in winter, BST (UTC+1) in summer
        ("Europe/London", date(2026, 3, 28), time(9, 0), datetime(2026, 3, 28, 9, 0, tzinfo=UTC)),
        ("Europe/London", date(2026, 3, 29), time(9, 0), datetime(2026, 3, 29, 8, 0, tzinfo=UTC)),
        # New York: EST (UTC−5) until 8 March 2026, then EDT (UTC−4)
        ("America/New_York", date(2026, 3, 7), time(9, 0), datetime(2026, 3, 7, 14, 0, tzinfo=UTC)),
        ("America/New_York", date(2026, 3, 8), time(9, 0), datetime(2026, 3, 8, 13, 0, tzinfo=UTC)),
        # Sydney goes the other way: AEDT (UTC+11) until 5 April 2026, then AEST (UTC+10)
        ("Australia/Sydney", date(2026, 4, 4), time(9, 0), datetime(2026, 4, 3, 22, 0, tzinfo=UTC)),
        ("Australia/Sydney", date(2026, 4, 5), time(9, 0), datetime(2026, 4, 4, 23, 0, tzinfo=UTC)),
    ],
)
def test_nine_in_the_morning_stays_nine_across_a_change(zone, day, clock, expected):
    moment = local_to_utc(day, clock, zone)
    assert moment == expected
    assert utc_to_local(moment, zone).time() == clock


@pytest.mark.parametrize(
    ("zone", "day", "clock"),
    [
        ("Europe/London", date(2026, 3, 29), time(1, 30)),
        ("America/New_York", date(2026, 3, 8), time(2, 30)),
    ],
)
def test_a_skipped_local_time_is_refused_with_a_message(zone, day, clock):
    with pytest.raises(ApplicationError) as caught:
        local_to_utc(day, clock, zone)
    assert "does not exist" in caught.value.message
    assert "scheduled_at" in caught.value.extra["fields"]


@pytest.mark.parametrize(
    ("zone", "day", "clock", "first"),
    [
        (
            "Europe/London",
            date(2026, 10, 25),
            time(1, 30),
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        ),
        (
            "America/New_York",
            date(2026, 11, 1),
            time(1, 30),
            datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
        ),
    ],
)
def test_a_repeated_local_time_means_the_first_occurrence(zone, day, clock, first):
    assert is_ambiguous(day, clock, zone)
    assert local_to_utc(day, clock, zone) == first


def test_an_unknown_zone_names_the_field():
    with pytest.raises(ApplicationError) as caught:
        local_to_utc(date(2026, 1, 1), time(9), "Narnia/Cair_Paravel")
    assert "timezone" in caught.value.extra["fields"]
