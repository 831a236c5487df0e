"""Issue 11 through the dispatch engine (in this process, no worker) with the real channels and
the networks' test servers: a post the network made before its answer was lost, or before it
answered 5xx, is looked for on the next try, found in spite of the network's rewriting, and
never sent a second time."""

import pytest
from django.utils import timezone

from publishing.dispatch import claim, send
from publishing.models import PostTarget, TargetStatus

from ...integration.dispatch_support import approved_post

# An unresolved Mastodon mention, a link (t.co on X), an entity (&amp; on X), trailing hashtags
# (links on Mastodon, templates on LinkedIn) and reserved little-format characters.
TEXT = (
    "Launch confirmed (pad 2), cc @mission_control@mastodon.example & the crew:\n\n"
    "https://example.org/launches/2026/pad-2 #Space #LaunchDay"
)
CREATE = {
    "mastodon": "statuses",
    "x": "tweets",
    "facebook": "feed",
    "linkedin": "posts",
    "bluesky": "com.atproto.repo.createRecord",
}
FAILURES = {
    "dropped": ("drop", {}),
    "500": ("500", {"after": True}),
}


def _server(request, network):
    name = "graph_server" if network == "facebook" else f"{network}_server"
    return request.getfixturevalue(name)


def _posts_on(network, server):
    if network == "mastodon":
        return [status["id"] for status in server.statuses]
    if network == "x":
        return [tweet["id"] for tweet in server.tweets_of()]
    if network == "facebook":
        return [post["id"] for post in server.posts]
    if network == "linkedin":
        return [post["id"] for post in server.posts]
    return [record["uri"] for record in server.records.values()]


@pytest.mark.parametrize("failure", list(FAILURES))
@pytest.mark.parametrize("network", list(CREATE))
def test_a_post_made_before_its_answer_was_lost_goes_out_once(
    request, network, failure, author, org
):
    # Given an approved post, due; a network that makes it, then loses the answer or answers
    # 500 (and a Mastodon server that ignores Idempotency-Key)
    server = _server(request, network)
    account = request.getfixturevalue(f"{network}_account")
    if network == "mastodon":
        server.idempotency_supported = False
    post = approved_post(author=author, team=org["north"], accounts=[account], body=TEXT)
    claim.dispatch_due()
    target = PostTarget.objects.get(post=post)
    mode, options = FAILURES[failure]
    server.fail_next(CREATE[network], mode, **options)

    # When dispatch sends it
    first = send.publish_target(target_id=target.pk)

    if network == "bluesky" and failure == "500":
        # Bluesky checks its record key at once after a 5xx: found, done.
        assert first == "published"
    else:
        # Then the outcome is unknown, and the next try looks before it sends
        assert first == "unknown"
        target.refresh_from_db()
        assert (target.status, target.needs_reconcile) == (TargetStatus.WAITING, True)
        PostTarget.objects.filter(pk=target.pk).update(next_attempt_at=timezone.now())
        claim.dispatch_due()
        assert send.publish_target(target_id=target.pk) == "reconciled"

    # And the network holds the post once, recorded on the target
    target.refresh_from_db()
    [external_id] = _posts_on(network, server)
    assert (target.status, target.external_id) == (TargetStatus.PUBLISHED, external_id)
