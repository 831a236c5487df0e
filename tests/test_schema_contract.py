"""The API keeps the contract its OpenAPI schema states.

schemathesis reads `/api/schema/` from the app in-process (WSGI) and sends every operation
generated requests, valid and invalid, as a drafter and as a lead of a small organisation with
posts in several states, an approval under way, images, freezes and notifications. A 5xx, a
status code the schema does not list for the operation, or a body that does not match the
schema fails the test. Examples are few per operation and derandomized, so the run is bounded
and repeatable.
"""

import contextlib
import io
import os
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from PIL import Image
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import Role
from accounts.notifications import notifications_mark_read, notify
from accounts.tokens import api_token_create
from approvals import services as approvals
from publishing import freezes, media_services, services

from .factories import SocialAccountFactory, UserFactory, grant

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Per operation and per kind of example (valid, invalid, valid on real objects): small, so the
# whole run stays around a minute on a loaded machine. Raise it to explore.
EXAMPLES = int(os.environ.get("CXHUB_SCHEMA_EXAMPLES", "4"))


# Operations whose generated requests must have had at least one 2xx answer for each role.
REACHED = [
    "GET /api/v1/me/",
    "GET /api/v1/posts/",
    "GET /api/v1/posts/{post_id}/",
    "GET /api/v1/posts/{post_id}/preflight/",
    "GET /api/v1/approvals/{request_id}/",
    "GET /api/v1/media/{media_id}/",
    "GET /api/v1/teams/{team_id}/",
    "GET /api/v1/social-accounts/{account_id}/",
    "GET /api/v1/notifications/",
    "GET /api/v1/freezes/",
]


def auth_headers(user) -> dict[str, str]:
    """How the generated requests sign in: an API token header (one place to change it)."""
    issued = api_token_create(user=user, name="schemathesis", by=user)
    return {"Authorization": f"Token {issued.secret}"}


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (24, 16), (200, 80, 40)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def wsgi_app():
    """Django's WSGI handler inside the test's transaction: it must not close the connection
    between requests, as the test client does not. The throttles' counts (in the cache) are
    emptied after, so the token endpoint's 429s do not reach later tests."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
        cache.clear()


@pytest.fixture
def demo(org, author, approver, lead, hq_approver, two_stage_policy, settings, tmp_path):
    """North's accounts, posts in several states (one unscheduled, one scheduled, one in
    review with a decision, one cancelled), an image, freezes (one lifted) and notifications."""
    settings.MEDIA_ROOT = tmp_path / "media"
    mastodon = SocialAccountFactory(team=org["north"], handle="@north")
    SocialAccountFactory(team=org["south"], handle="@south")
    second_author = UserFactory(username="dora")
    grant(second_author, org["north"], Role.DRAFTER)
    image = media_services.media_upload(
        by=author,
        file=SimpleUploadedFile("a.png", _png()),
        alt_text="A rocket on the pad at dawn",
        original_name="a.png",
    )

    def draft(**kwargs):
        return services.post_create(
            by=kwargs.pop("by", author),
            team_id=org["north"].pk,
            body=kwargs.pop("body", "Launch window opens at dawn."),
            targets=[services.TargetInput(social_account_id=mastodon.pk)],
            **kwargs,
        )

    unscheduled = draft(media_ids=[image.pk], tags=["launch"])
    scheduled = draft(scheduled_at=datetime.now(UTC) + timedelta(days=3), timezone_name="UTC")
    in_review = services.post_submit(post=draft(body="Needs a look."), by=author)
    reviewed = services.post_submit(
        post=draft(body="Will be sent back.", by=second_author), by=second_author
    )
    approvals.decide(
        request=reviewed.approval_requests.get(),
        by=approver,
        verdict="request_changes",
        comment="Say which pad.",
    )
    services.post_cancel(post=draft(body="Not any more."), by=author, reason="Plans changed.")
    lifted = freezes.freeze_create(by=lead, scope="team", reason="Storm", team_id=org["south"].pk)
    freezes.freeze_lift(freeze=lifted, by=lead, reason="Storm over")
    freezes.freeze_create(by=lead, scope="account", reason="Hacked?", social_account_id=mastodon.pk)
    notify(users=[author, lead], kind="info", title="Welcome", body="Hello", url="/")
    notifications_mark_read(user=lead, ids=None)
    return {
        "org": org,
        "account": mastodon,
        "media": image,
        "posts": [unscheduled, scheduled, in_review, reviewed],
        "request": in_review.approval_requests.get(),
        "freeze": lifted,
        "policy": two_stage_policy,
    }


def _savepoint():
    """A savepoint around one request, marked as the test's own (as Django's TestCase marks its
    blocks), so that a durable block inside the request (the audit export's) is still allowed."""
    block = transaction.atomic()
    block._from_testcase = True
    return block


def _real_ids(demo) -> dict[str, int]:
    post = demo["posts"][2]
    return {
        "post_id": post.pk,
        "target_id": post.targets.first().pk,
        "request_id": demo["request"].pk,
        "policy_id": demo["policy"].pk,
        "team_id": demo["org"]["north"].pk,
        "account_id": demo["account"].pk,
        "media_id": demo["media"].pk,
        "freeze_id": demo["freeze"].pk,
    }


def _collect(failures: dict, label: str, case, exc: BaseException) -> None:
    """One line per kind of failure of an operation, with the first request that showed it."""
    for failure in getattr(exc, "exceptions", [exc]):
        title = getattr(failure, "title", type(failure).__name__)
        key = f"{label}: {title}"
        if key not in failures:
            message = str(getattr(failure, "message", failure)).strip()[:600]
            request = case.as_curl_command(headers=None)[:600]
            failures[key] = f"{key}\n  {message}\n  {request}"


def _run(schema, headers: dict, real_ids: dict, seen: dict) -> list[str]:
    failures: dict[str, str] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        path_ids = {
            p.name: real_ids[p.name] for p in operation.path_parameters if p.name in real_ids
        }
        kinds = [
            (GenerationMode.POSITIVE, None),
            (GenerationMode.NEGATIVE, None),
        ]
        if path_ids:
            kinds.append((GenerationMode.POSITIVE, path_ids))
        for mode, path_parameters in kinds:
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

            @settings(
                max_examples=EXAMPLES,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def check(case):
                try:
                    # Each request in a savepoint: a server error cannot poison the next one.
                    with _savepoint():
                        response = case.call(headers=headers)
                        if response.status_code >= 500:
                            transaction.set_rollback(True)
                    seen.setdefault(operation.label, set()).add(response.status_code)
                    case.validate_response(response, checks=CHECKS, headers=headers)
                except (Exception, BaseExceptionGroup) as exc:  # every failure, not just the first
                    _collect(failures, operation.label, case, exc)

            # Unsatisfiable: nothing in this operation can be made invalid (e.g. only a fixed id).
            with contextlib.suppress(Unsatisfiable):
                check()
    return list(failures.values())


def _known_good(demo, role: str) -> list[tuple[str, str, dict, int]]:
    """Requests that must succeed, so the run also checks the 2xx bodies of writes that random
    data rarely reaches: (method, path, Case arguments, expected status)."""
    draft = demo["posts"][0]
    north = demo["org"]["north"].pk
    if role == "drafter":
        return [
            (
                "POST",
                "/api/v1/posts/",
                {
                    "body": {
                        "team": north,
                        "body": "Doors open at nine.",
                        "targets": [{"social_account": demo["account"].pk}],
                        "scheduled_at": None,
                    },
                    "media_type": "application/json",
                },
                201,
            ),
            (
                "POST",
                "/api/v1/media/",
                {
                    "body": {"file": _png(), "alt_text": "A red square"},
                    "media_type": "multipart/form-data",
                },
                201,
            ),
            (
                "GET",
                "/api/v1/posts/",
                {"query": {"status": ["draft", "in_review"], "team": north, "page_size": 2}},
                200,
            ),
            (
                "POST",
                "/api/v1/posts/{post_id}/submit/",
                {"path_parameters": {"post_id": draft.pk}},
                200,
            ),
        ]
    return [
        ("GET", "/api/v1/audit/events/", {"query": {"page_size": 3}}, 200),
        ("GET", "/api/v1/audit/events/", {"query": {"format": "csv"}}, 200),
        ("GET", "/api/v1/reports/sla/", {"query": {"team": north}}, 200),
        (
            "POST",
            "/api/v1/freezes/",
            {
                "body": {"scope": "team", "team": north, "reason": "Election night"},
                "media_type": "application/json",
            },
            201,
        ),
    ]


def _run_known_good(schema, headers: dict, requests) -> list[str]:
    failures = []
    for method, path, arguments, expected in requests:
        case = schema[path][method].Case(**arguments)
        with _savepoint():
            response = case.call(headers=headers)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{method} {path}: {exc}")
        if response.status_code != expected:
            failures.append(f"{method} {path}: {response.status_code} {response.text[:300]}")
    return failures


def _schema(app):
    return schemathesis.openapi.from_wsgi("/api/schema/", app)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("role", ["drafter", "lead"])
def test_every_operation_keeps_the_schema_contract(role, demo, wsgi_app, author, lead):
    user = {"drafter": author, "lead": lead}[role]
    schema, headers = _schema(wsgi_app), auth_headers(user)
    failures = _run_known_good(schema, headers, _known_good(demo, role))
    seen: dict[str, set[int]] = {}
    failures += _run(schema, headers, _real_ids(demo), seen)
    assert not failures, "\n\n".join(failures)
    # The generated requests reached real objects, not only 404s and 400s.
    for label in REACHED:
        assert any(200 <= status < 300 for status in seen[label]), (label, seen[label])
