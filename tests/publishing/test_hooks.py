"""cxhub.hooks: how a lower app lets the apps above it act (issue 14, item 3)."""

import pytest

from approvals import routing, sections
from approvals import services as approvals
from approvals.models import ApprovalRequest
from audit.models import AuditEvent
from cxhub.hooks import Hook, HookNotConnected
from publishing import hooks
from publishing import services as publishing
from publishing.models import PostStatus


def test_handlers_run_in_order_with_the_arguments_and_give_their_answers():
    hook = Hook("test.asked")
    calls = []
    hook.connect(lambda *, n: calls.append(("first", n)) or n + 1)
    second = hook.connect(lambda *, n: calls.append(("second", n)) or n * 10)
    hook.connect(second)  # connecting again changes nothing (ready() may run twice)

    assert hook.send(n=4) == [5, 40]
    assert calls == [("first", 4), ("second", 4)]


def test_a_hook_with_no_handler_answers_nothing_unless_it_is_required():
    assert Hook("test.optional").send(team=None) == []
    with pytest.raises(HookNotConnected, match="test.required has no handler"):
        Hook("test.required", required=True).send(post=None)


def test_approvals_connects_its_handlers_to_publishing_at_start_up():
    assert hooks.post_submitted.handlers == (approvals.request_open,)
    assert hooks.approvals_void.handlers == (approvals.requests_supersede,)
    assert hooks.schedule_change_needs_approval.handlers == (
        routing.schedule_change_needs_approval,
    )
    assert hooks.post_page_sections.handlers == (sections.post_page_section,)


def test_a_failing_handler_fails_the_service_and_rolls_back_its_change(
    make_post, author, monkeypatch
):
    post = make_post()

    def broken(*, post, by):
        approvals.request_open(post=post, by=by)  # writes, then fails
        raise RuntimeError("approvals are down")

    monkeypatch.setattr(hooks.post_submitted, "_handlers", [broken])
    with pytest.raises(RuntimeError, match="approvals are down"):
        publishing.post_submit(post=post, by=author)

    post.refresh_from_db()
    assert post.status == PostStatus.DRAFT
    assert not ApprovalRequest.objects.filter(post=post).exists()
    assert not AuditEvent.objects.filter(action="post.submitted").exists()


def test_a_post_submitted_with_nobody_to_open_its_request_stays_a_draft(
    make_post, author, monkeypatch
):
    post = make_post()
    monkeypatch.setattr(hooks.post_submitted, "_handlers", [])

    with pytest.raises(HookNotConnected):
        publishing.post_submit(post=post, by=author)

    post.refresh_from_db()
    assert post.status == PostStatus.DRAFT
