"""What the networks' answers say of their rate limits (networks/ratelimits.py), read as the
networks publish them, and kept where every worker reads them."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from requests.structures import CaseInsensitiveDict

from networks import ratelimits
from networks.channels.session import http_session

NOW = 1_800_000_000.0  # a Unix time


def waits(status=200, **headers):
    return ratelimits.waits_in(status, CaseInsensitiveDict(headers), now=NOW)


def test_mastodon_headers_wait_for_the_reset_once_nothing_is_left():
    reset = "2027-01-15T08:00:30.000Z"  # Mastodon's ISO time
    at = ratelimits.reset_seconds(reset, now=NOW)
    assert waits(**{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}) == {"account": at}
    assert waits(**{"X-RateLimit-Remaining": "12", "X-RateLimit-Reset": reset}) == {}


def test_x_headers_have_a_unix_reset():
    assert waits(**{"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(NOW) + 90)}) == {
        "account": 90.0
    }


def test_bluesky_headers_are_the_ietf_drafts_names():
    assert waits(**{"RateLimit-Remaining": "0", "RateLimit-Reset": str(int(NOW) + 300)}) == {
        "account": 300.0
    }


def test_reading_stops_while_only_publishings_share_of_the_calls_is_left(settings):
    settings.CXHUB_READ_RESERVE_FRACTION = 0.25
    reset = str(int(NOW) + 120)
    limit = {"x-rate-limit-limit": "300", "x-rate-limit-reset": reset}

    assert waits(**limit, **{"x-rate-limit-remaining": "76"}) == {}
    assert waits(**limit, **{"x-rate-limit-remaining": "75"}) == {"reading": 120.0}
    assert waits(**limit, **{"x-rate-limit-remaining": "0"}) == {
        "account": 120.0,
        "reading": 120.0,
    }


def test_a_reading_wait_holds_reading_only():
    whose = ratelimits.caller(account_id=7, channel="x", host="api.x.com")
    ratelimits.block(whose.reading, 60)

    assert ratelimits.wait_for(whose) == 0
    assert 55 < ratelimits.wait_for(whose, reading=True) <= 60
    ratelimits.block(whose.account, 120)
    assert 115 < ratelimits.wait_for(whose, reading=True) <= 120


def test_a_429_waits_for_retry_after_else_the_reset_else_a_minute():
    assert waits(429, **{"Retry-After": "30"}) == {"account": 30.0}
    assert waits(429, **{"X-RateLimit-Reset": str(int(NOW) + 45)}) == {"account": 45.0}
    assert waits(429) == {"account": ratelimits.DEFAULT_WAIT_SECONDS}


def test_metas_usage_headers_slow_the_account_or_the_whole_app():
    business = {
        "1234": [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 7}]
    }
    assert waits(**{"X-Business-Use-Case-Usage": json.dumps(business)}) == {"account": 420.0}
    busy = {"1234": [{"type": "pages", "call_count": 100, "total_time": 20, "total_cputime": 5}]}
    assert waits(**{"X-Business-Use-Case-Usage": json.dumps(busy)}) == {"account": 60.0}
    calm = {"1234": [{"type": "pages", "call_count": 40, "total_time": 20, "total_cputime": 5}]}
    assert waits(**{"X-Business-Use-Case-Usage": json.dumps(calm)}) == {}
    app = {"call_count": 100, "total_time": 30, "total_cputime": 12}
    assert waits(**{"X-App-Usage": json.dumps(app)}) == {"app": 60.0}


def test_headers_that_cannot_be_read_say_nothing():
    assert waits(**{"X-RateLimit-Remaining": "lots", "X-App-Usage": "{not json"}) == {}
    assert waits(**{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 10**7)}) == {
        "account": ratelimits.LONGEST_WAIT_SECONDS
    }


def test_a_wait_is_kept_for_its_scope_only_and_a_shorter_one_does_not_shorten_it():
    whose = ratelimits.caller(account_id=7, channel="mastodon", host="m.example")
    other = ratelimits.caller(account_id=8, channel="mastodon", host="m.example")
    ratelimits.block(whose.account, 30)
    ratelimits.block(whose.account, 5)
    assert 25 < ratelimits.wait_for(whose) <= 30
    assert ratelimits.wait_for(other) == 0
    ratelimits.block(whose.app, 60)  # the app's wait is every account's at that host
    assert 55 < ratelimits.wait_for(other) <= 60
    ratelimits.forget(whose.app)
    ratelimits.forget(whose.account)
    assert ratelimits.wait_for(whose) == 0


@pytest.fixture
def limited_server():
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("X-RateLimit-Remaining", "0")
            self.send_header("X-RateLimit-Reset", str(int(__import__("time").time()) + 40))
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_every_answer_of_the_channels_session_is_read_for_the_caller(limited_server):
    whose = ratelimits.caller(account_id=9, channel="mastodon", host="127.0.0.1")
    http_session().get(limited_server, timeout=5)  # nobody's call: nothing kept
    assert ratelimits.wait_for(whose) == 0
    with ratelimits.calling(account_id=9, channel="mastodon", host="127.0.0.1"):
        http_session().get(limited_server, timeout=5)
    assert 30 < ratelimits.wait_for(whose) <= 40
