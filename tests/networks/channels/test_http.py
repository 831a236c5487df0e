"""What an answer other than success means (http.error_for_status), for a read and for a call
that creates a post."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from networks.channels.errors import (
    AuthExpired,
    PermanentError,
    RetryableError,
    UnknownOutcome,
)
from networks.channels.http import error_for_status


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_to_a_create_is_an_unknown_outcome_with_the_wait_asked_for(status):
    error = error_for_status(status, "Bad gateway", retry_after=30, changes=True)

    assert type(error) is UnknownOutcome
    assert (error.http_status, error.retry_after, str(error)) == (status, 30, "Bad gateway")


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_a_success_the_channel_cannot_read_is_an_unknown_outcome_for_a_create(status):
    assert type(error_for_status(status, "no id", changes=True)) is UnknownOutcome


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_to_a_read_is_retryable(status):
    error = error_for_status(status, "Bad gateway", retry_after=30)

    assert type(error) is RetryableError
    assert (error.http_status, error.retry_after) == (status, 30)


@pytest.mark.parametrize("changes", [False, True])
@pytest.mark.parametrize("status", [408, 425, 429])
def test_answers_that_say_the_request_was_not_taken_are_retryable(status, changes):
    error = error_for_status(status, "Slow down", retry_after=120, changes=changes)

    assert type(error) is RetryableError
    assert error.retry_after == 120


@pytest.mark.parametrize("changes", [False, True])
def test_a_refused_token_is_auth_expired(changes):
    assert type(error_for_status(401, "invalid token", changes=changes)) is AuthExpired
    assert type(error_for_status(400, "ExpiredToken", expired=True, changes=changes)) is (
        AuthExpired
    )


@pytest.mark.parametrize("changes", [False, True])
@pytest.mark.parametrize("status", [301, 400, 403, 404, 409, 413, 422])
def test_a_refusal_in_the_networks_words_is_permanent(status, changes):
    assert type(error_for_status(status, "Validation failed", changes=changes)) is PermanentError


@given(st.integers(min_value=200, max_value=599))
def test_a_create_is_retried_blind_only_when_the_answer_proves_refusal(status):
    error = error_for_status(status, "", changes=True)

    if isinstance(error, RetryableError):
        assert status in (408, 425, 429)
    if status >= 500 or status < 300:
        assert isinstance(error, UnknownOutcome)
