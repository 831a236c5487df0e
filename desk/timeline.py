"""A post's whole story on one page: every audit event about it in chain order, its versions with
what changed between them, the approval chain with who decided what on which version, and where
each target went out.

Read with the post's own scope (whoever may see the post sees its story; anyone else gets None,
which the page turns into a 404) in a fixed number of queries whatever the number of events,
versions, steps or attempts.
"""

import json
from dataclasses import dataclass, field

from django.db.models import Prefetch, Q

from accounts.models import User
from approvals.models import ApprovalRequest, ApprovalStep, Decision
from audit.models import AuditEvent
from publishing.models import Post, PostTarget, PostVersion, PublishAttempt, TargetStatus
from publishing.selectors import posts_for
from publishing.versions import line_diff, version_notes

# How many queries `post_timeline` makes for a post the user may see (tests hold it to this).
QUERIES = 8


@dataclass
class VersionRow:
    version: PostVersion
    previous: PostVersion | None = None
    # (kind, line), kind "added", "removed" or "same": the main text against the version before.
    diff: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what else changed, in words

    @property
    def body_changed(self) -> bool:
        return any(kind != "same" for kind, _ in self.diff)


@dataclass
class EventRow:
    event: AuditEvent
    data_json: str
    verify_url: str = ""  # set by the page for those who may read the event in the audit trail


@dataclass
class Timeline:
    post: Post
    events: list[EventRow]
    versions: list[VersionRow]  # oldest first
    # Oldest first; steps and decisions prefetched, each decision with `on_version`: the version
    # whose content it was made on.
    requests: list[ApprovalRequest]
    # With social_account and attempts prefetched, and `link`: where it can be seen, once published.
    targets: list[PostTarget]


def _events_of(post: Post, requests: list, targets: list) -> Q:
    """Events whose object is the post, one of its approval requests, targets or attempts, and
    events of the post's team whose data names the post (`"post": id`)."""
    which = Q(object_type="publishing.post", object_id=str(post.pk))
    related = {
        "approvals.approvalrequest": [request.pk for request in requests],
        "publishing.posttarget": [target.pk for target in targets],
        "publishing.publishattempt": [
            attempt.pk for target in targets for attempt in target.attempts.all()
        ],
    }
    for object_type, ids in related.items():
        if ids:
            which |= Q(object_type=object_type, object_id__in=[str(pk) for pk in ids])
    # The team narrows the JSON lookup to one team's events (the (team, -seq) index).
    which |= Q(team_id=post.team_id, data__post=post.pk)
    return which


def post_timeline(*, user: User, post_id: int) -> Timeline | None:
    """The post's timeline, or None when `user` may not see the post (or it does not exist).

    QUERIES queries: the post (team and author joined); its versions (with their authors); its
    requests, their steps and the steps' decisions (with the deciders) in three; its targets
    (with their accounts) and their attempts in two; the events in one.
    """
    post = posts_for(user=user).filter(pk=post_id).first()
    if post is None:
        return None
    versions = list(
        PostVersion.objects.filter(post=post).select_related("created_by").order_by("version")
    )
    decisions = Decision.objects.select_related("user").order_by("created_at", "id")
    steps = ApprovalStep.objects.order_by("order").prefetch_related(
        Prefetch("decisions", queryset=decisions)
    )
    requests = list(
        ApprovalRequest.objects.filter(post=post)
        .order_by("created_at", "id")
        .prefetch_related(Prefetch("steps", queryset=steps))
    )
    targets = list(
        PostTarget.objects.filter(post=post)
        .select_related("social_account")
        .order_by("id")
        .prefetch_related(
            Prefetch("attempts", queryset=PublishAttempt.objects.order_by("number", "id"))
        )
    )
    events = AuditEvent.objects.filter(_events_of(post, requests, targets)).order_by("seq")

    version_of_hash = {version.content_hash: version.version for version in versions}
    for request in requests:
        for step in request.steps.all():
            for decision in step.decisions.all():
                decision.on_version = version_of_hash.get(decision.content_hash, request.version)
    for target in targets:
        target.link = published_link(target)
    handles = {target.social_account_id: target.social_account.handle for target in targets}
    rows = []
    for index, version in enumerate(versions):
        row = VersionRow(version=version)
        if index:
            row.previous = versions[index - 1]
            row.diff = line_diff(
                row.previous.content.get("body", ""), version.content.get("body", "")
            )
            row.notes = version_notes(row.previous.content, version.content, handles)
        rows.append(row)
    return Timeline(
        post=post,
        events=[
            EventRow(event, json.dumps(event.data, ensure_ascii=False, sort_keys=True))
            for event in events
        ],
        versions=rows,
        requests=requests,
        targets=targets,
    )


def published_link(target: PostTarget) -> str:
    """Where a published target can be seen ("" until it is published, and for an address that
    is not a web address: the network or a webhook receiver gave it)."""
    return target.web_url if target.status == TargetStatus.PUBLISHED else ""
