"""Every write of posts and media: one function per use case, in a transaction, audited.

Content changes (texts, link, targets, media) make a new version with a new content_hash; a
post that was in review, approved or scheduled goes back to draft, so nothing is published that
its approvers did not see. Time, tags and the urgent flag are not content.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from accounts.models import Role, Team, User
from accounts.notifications import notify_many
from accounts.selectors import teams_for, user_has_role
from audit.services import record, record_many
from cxhub.errors import ApplicationError, InvalidTransition, NotAllowed

from . import hooks, scheduling, selectors
from . import preflight as preflight_rules
from .content import canonical_content, hash_content
from .dispatch.common import _settle_posts
from .models import (
    CANCELLABLE_STATUSES,
    EDITABLE_STATUSES,
    POST_TRANSITIONS,
    Media,
    Post,
    PostMedia,
    PostStatus,
    PostTarget,
    PostVersion,
    TargetStatus,
)

MAX_TAGS = 20
MAX_TAG_LENGTH = 50
MAX_MEDIA = 10
MAX_BODY = 100_000


@dataclass(frozen=True)
class TargetInput:
    social_account_id: int
    body: str = ""


def _field_error(field: str, message: str, summary: str | None = None) -> ApplicationError:
    return ApplicationError(summary or f"{field}: {message}", {"fields": {field: [message]}})


def _lock(post: Post) -> Post:
    """The post's row, locked until the transaction ends (the one place posts are locked)."""
    return Post.objects.select_for_update().get(pk=post.pk)


def _transition(post: Post, to: str) -> None:
    if to not in POST_TRANSITIONS[post.status]:
        raise InvalidTransition(
            f"A post that is {post.get_status_display().lower()} cannot become "
            f"{PostStatus(to).label.lower()}.",
            {"status": post.status},
        )
    post.status = to


# Input checks ----------------------------------------------------------------------------------
def _clean_text(value: str, field: str) -> str:
    if not isinstance(value, str):
        raise _field_error(field, "Must be text.")
    if len(value) > MAX_BODY:
        raise _field_error(field, f"At most {MAX_BODY:,} characters.")
    # Normalise line endings only; everything else is the author's.
    return value.replace("\r\n", "\n")


def _clean_link(link: str) -> str:
    link = (link or "").strip()
    if not link:
        return ""
    try:
        URLValidator(schemes=["http", "https"])(link)
    except ValidationError:
        raise _field_error("link", "Give a full web address starting with https://.") from None
    return link


def _clean_tags(tags: Iterable[str]) -> list[str]:
    cleaned: list[str] = []
    for tag in tags or []:
        if not isinstance(tag, str):
            raise _field_error("tags", "Each tag must be text.")
        tag = tag.strip().lstrip("#")
        if not tag:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise _field_error("tags", f"A tag has at most {MAX_TAG_LENGTH} characters.")
        if tag not in cleaned:
            cleaned.append(tag)
    if len(cleaned) > MAX_TAGS:
        raise _field_error("tags", f"At most {MAX_TAGS} tags.")
    return cleaned


def _drafting_team(by: User, team_id: int) -> Team:
    team = teams_for(user=by, roles=[Role.DRAFTER]).filter(pk=team_id).first()
    if team is None:
        # The same answer for a team that does not exist: no leak of other teams.
        raise _field_error("team", "No team with this id that you can draft for.")
    return team


def _resolve_targets(
    by: User, targets: Sequence[TargetInput], *, already: frozenset[int] = frozenset()
) -> dict[int, str]:
    """Account id → variant text. Every account must be one `by` may draft for, except those
    `already` on the post (a colleague's edit keeps an account only the author was granted)."""
    if not targets:
        raise _field_error("targets", "Choose at least one social account.")
    wanted: dict[int, str] = {}
    for index, target in enumerate(targets):
        if target.social_account_id in wanted:
            raise _field_error(f"targets[{index}].social_account", "This account is listed twice.")
        wanted[target.social_account_id] = _clean_text(target.body, f"targets[{index}].body")
    allowed = set(
        selectors.drafting_accounts(user=by).filter(pk__in=wanted).values_list("pk", flat=True)
    )
    allowed |= already
    for index, target in enumerate(targets):
        if target.social_account_id not in allowed:
            raise _field_error(
                f"targets[{index}].social_account",
                "No social account with this id that you can draft for.",
            )
    return wanted


def _resolve_media(by: User, media_ids: Sequence[int]) -> list[Media]:
    media_ids = list(media_ids or [])
    if len(media_ids) > MAX_MEDIA:
        raise _field_error("media", f"At most {MAX_MEDIA} images per post.")
    if len(set(media_ids)) != len(media_ids):
        raise _field_error("media", "An image is attached twice.")
    found = {m.pk: m for m in selectors.media_for(user=by).filter(pk__in=media_ids)}
    for index, media_id in enumerate(media_ids):
        if media_id not in found:
            raise _field_error(f"media[{index}]", "No image with this id that you can use.")
    return [found[media_id] for media_id in media_ids]


def _clean_campaign(campaign: str) -> str:
    return (campaign or "").strip()[:100]


def _check_schedule(scheduled_at: datetime | None, tz_name: str) -> datetime | None:
    scheduling.zone(tz_name)
    if scheduled_at is None:
        return None
    return scheduling.ensure_aware(scheduled_at)


def _check_body(body: str, targets: dict[int, str]) -> None:
    if not body.strip() and not all(text.strip() for text in targets.values()):
        raise _field_error("body", "Write the text, or a text for every account.")


# Writing content -----------------------------------------------------------------------------
def _write_targets(post: Post, targets: dict[int, str]) -> None:
    existing = {t.social_account_id: t for t in post.targets.all()}
    for account_id, target in existing.items():
        if account_id not in targets:
            target.delete()
    for account_id, body in targets.items():
        target = existing.get(account_id)
        if target is None:
            PostTarget.objects.create(post=post, social_account_id=account_id, body=body)
        elif target.body != body:
            target.body = body
            target.save(update_fields=["body"])


def _write_media(post: Post, media: list[Media]) -> None:
    current = [item.media_id for item in post.post_media.order_by("position")]
    if current == [m.pk for m in media]:
        return
    post.post_media.all().delete()
    PostMedia.objects.bulk_create(
        [PostMedia(post=post, media=m, position=index) for index, m in enumerate(media)]
    )


def _snapshot(post: Post, by: User) -> dict:
    """Hash the stored content; when it changed, make the next version. Returns the content."""
    fresh = Post.objects.prefetch_related("targets", "post_media__media").get(pk=post.pk)
    content = canonical_content(fresh)
    new_hash = hash_content(content)
    if new_hash == post.content_hash:
        return content
    if post.content_hash:
        post.version += 1
    post.content_hash = new_hash
    post.save(update_fields=["version", "content_hash", "updated_at"])
    PostVersion.objects.create(
        post=post, version=post.version, content=content, content_hash=new_hash, created_by=by
    )
    return content


@transaction.atomic
def post_create(
    *,
    by: User,
    team_id: int,
    body: str = "",
    link: str = "",
    targets: Sequence[TargetInput],
    media_ids: Sequence[int] = (),
    scheduled_at: datetime | None = None,
    timezone_name: str = "UTC",
    tags: Iterable[str] = (),
    campaign: str = "",
    urgent: bool = False,
) -> Post:
    team = _drafting_team(by, team_id)
    body = _clean_text(body, "body")
    wanted = _resolve_targets(by, targets)
    _check_body(body, wanted)
    media = _resolve_media(by, media_ids)
    post = Post.objects.create(
        team=team,
        author=by,
        body=body,
        link=_clean_link(link),
        scheduled_at=_check_schedule(scheduled_at, timezone_name),
        timezone=timezone_name,
        tags=_clean_tags(tags),
        campaign=_clean_campaign(campaign),
        urgent=bool(urgent),
        content_hash="",
    )
    _write_targets(post, wanted)
    _write_media(post, media)
    _snapshot(post, by)
    record(
        actor=by,
        action="post.created",
        obj=post,
        team=team,
        data={
            "version": post.version,
            "content_hash": post.content_hash,
            "targets": sorted(wanted),
            "scheduled_at": post.scheduled_at,
        },
    )
    return post


@transaction.atomic
def reply_create(
    *,
    by: User,
    team_id: int,
    social_account_id: int,
    body: str,
    in_reply_to: Mapping[str, Any],
    media_ids: Sequence[int] = (),
    campaign: str = "",
) -> Post:
    """A draft that answers an item that came to `social_account_id` (the inbox calls it):
    a post with one target, which carries the item (`in_reply_to`: networks.channels.ReplyTo's
    fields), published as the network's reply to it after the approvals the team's policy sets
    for replies. Submitted, checked, approved and sent like any post."""
    team = _drafting_team(by, team_id)
    body = _clean_text(body, "body")
    if not body.strip():
        raise _field_error("body", "Write the reply.")
    network_id = str(in_reply_to.get("network_id") or "")
    if not network_id:
        raise _field_error("in_reply_to", "The item answered has no id on its network.")
    wanted = _resolve_targets(by, [TargetInput(social_account_id=social_account_id)])
    media = _resolve_media(by, media_ids)
    post = Post.objects.create(
        team=team,
        author=by,
        body=body,
        timezone="UTC",
        campaign=_clean_campaign(campaign),
        is_reply=True,
        content_hash="",
    )
    _write_targets(post, wanted)
    post.targets.update(
        in_reply_to={
            "network_id": network_id,
            "thread_id": str(in_reply_to.get("thread_id") or ""),
            "raw": dict(in_reply_to.get("raw") or {}),
        }
    )
    _write_media(post, media)
    _snapshot(post, by)
    record(
        actor=by,
        action="post.created",
        obj=post,
        team=team,
        data={
            "version": post.version,
            "content_hash": post.content_hash,
            "targets": sorted(wanted),
            "in_reply_to": network_id,
        },
    )
    return post


_UNSET = object()


@transaction.atomic
def post_update(
    *,
    post: Post,
    by: User,
    body=_UNSET,
    link=_UNSET,
    targets=_UNSET,
    media_ids=_UNSET,
    scheduled_at=_UNSET,
    timezone_name=_UNSET,
    tags=_UNSET,
    campaign=_UNSET,
    urgent=_UNSET,
) -> Post:
    """Change what is given. A content change in review, approved or scheduled makes a new version
    and sends the post back to draft (its approvals no longer count)."""
    post = _lock(post)
    if not selectors.can_edit(user=by, post=post):
        raise NotAllowed("Only the author or a drafter of the post's team can edit it.")
    if post.status not in EDITABLE_STATUSES:
        raise InvalidTransition(
            f"A post that is {post.get_status_display().lower()} can no longer be edited; "
            "duplicate it to start a new one.",
            {"status": post.status},
        )
    changed: list[str] = []
    old_hash = post.content_hash
    old_status = post.status
    old_scheduled_at = post.scheduled_at

    if timezone_name is not _UNSET and timezone_name != post.timezone:
        scheduling.zone(timezone_name)
        post.timezone = timezone_name
        changed.append("timezone")
    simple_fields = {
        "body": (body, lambda value: _clean_text(value, "body")),
        "link": (link, _clean_link),
        "scheduled_at": (scheduled_at, lambda value: _check_schedule(value, post.timezone)),
        "tags": (tags, _clean_tags),
        "campaign": (campaign, _clean_campaign),
        "urgent": (urgent, bool),
    }
    for name, (value, clean) in simple_fields.items():
        if value is _UNSET:
            continue
        value = clean(value)
        if value != getattr(post, name):
            setattr(post, name, value)
            changed.append(name)

    if targets is not _UNSET:
        before = {t.social_account_id: t.body for t in post.targets.all()}
        wanted = _resolve_targets(by, targets, already=frozenset(before))
        if post.is_reply and set(wanted) != set(before):
            raise _field_error("targets", "A reply goes to the account whose item it answers.")
        if wanted != before:
            _write_targets(post, wanted)
            changed.append("targets")
    else:
        wanted = {t.social_account_id: t.body for t in post.targets.all()}
    _check_body(post.body, wanted)
    if media_ids is not _UNSET:
        media = _resolve_media(by, media_ids)
        before = list(post.post_media.order_by("position").values_list("media_id", flat=True))
        if before != [m.pk for m in media]:
            _write_media(post, media)
            changed.append("media")

    if not changed:
        return post
    approved_states = (PostStatus.SCHEDULED, PostStatus.NEEDS_RESCHEDULE)
    if (
        "scheduled_at" in changed
        and old_status in approved_states
        and post.scheduled_at is not None
        and post.scheduled_at <= timezone.now()
    ):
        raise _field_error("scheduled_at", "This time has passed; choose one in the future.")
    post.save()
    _snapshot(post, by)
    content_changed = post.content_hash != old_hash
    needs_new_approval = content_changed or (
        "scheduled_at" in changed and _schedule_needs_approval(post)
    )
    if needs_new_approval and old_status in (
        PostStatus.IN_REVIEW,
        PostStatus.APPROVED,
        PostStatus.SCHEDULED,
        PostStatus.NEEDS_RESCHEDULE,
    ):
        hooks.approvals_void.send(
            post=post, by=by, reason="content changed" if content_changed else "time changed"
        )
        _transition(post, PostStatus.DRAFT)
        post.approved_content_hash = ""
        post.save(update_fields=["status", "approved_content_hash", "updated_at"])
        post.targets.update(status=TargetStatus.PENDING, next_attempt_at=None)
    elif "scheduled_at" in changed and old_status in (
        PostStatus.SCHEDULED,
        PostStatus.NEEDS_RESCHEDULE,
    ):
        # A new time keeps the approvals: the targets simply wait for it.
        if post.status == PostStatus.NEEDS_RESCHEDULE:
            _transition(post, PostStatus.SCHEDULED)
            post.save(update_fields=["status", "updated_at"])
        _make_targets_wait(post, post.scheduled_at or timezone.now())
    record(
        actor=by,
        action="post.edited",
        obj=post,
        team=post.team,
        data={
            "fields": changed,
            "version": post.version,
            "content_hash": post.content_hash,
            "content_changed": content_changed,
            "status_before": old_status,
            "status": post.status,
        },
    )
    if "scheduled_at" in changed:
        record(
            actor=by,
            action="post.rescheduled",
            obj=post,
            team=post.team,
            data={"from": old_scheduled_at, "to": post.scheduled_at, "timezone": post.timezone},
        )
    return post


@transaction.atomic
def post_submit(*, post: Post, by: User) -> Post:
    """Hand a draft to its approvers. Preflight errors block it; warnings do not."""
    post = _lock(post)
    if not selectors.can_edit(user=by, post=post):
        raise NotAllowed("Only the author or a drafter of the post's team can submit it.")
    if post.status != PostStatus.DRAFT:
        raise InvalidTransition(
            f"Only a draft can be submitted; this post is {post.get_status_display().lower()}.",
            {"status": post.status},
        )
    problems = preflight_rules.run(post=post)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise ApplicationError(
            f"{len(errors)} problem(s) must be fixed before submitting: "
            + "; ".join(p.message for p in errors[:3]),
            {"problems": [p.as_dict() for p in problems]},
        )
    _transition(post, PostStatus.IN_REVIEW)
    post.submitted_at = timezone.now()
    post.save(update_fields=["status", "submitted_at", "updated_at"])
    record(
        actor=by,
        action="post.submitted",
        obj=post,
        team=post.team,
        data={
            "version": post.version,
            "content_hash": post.content_hash,
            "warnings": [p.code for p in problems],
        },
    )
    # The approvals app opens the request (or, for a reply its policy lets through, approves
    # it at once: the post is then scheduled, read it again).
    hooks.post_submitted.send(post=post, by=by)
    post.refresh_from_db()
    return post


@transaction.atomic
def post_cancel(*, post: Post, by: User, reason: str = "") -> Post:
    post = _lock(post)
    may = selectors.can_edit(user=by, post=post) or _leads(by, post)
    if not may:
        raise NotAllowed("Only the author, a drafter or a lead of the post's team can cancel it.")
    if post.status not in CANCELLABLE_STATUSES:
        raise InvalidTransition(
            f"A post that is {post.get_status_display().lower()} cannot be cancelled.",
            {"status": post.status},
        )
    if post.status == PostStatus.PUBLISHING:
        return _stop_publishing(post=post, by=by, reason=reason)
    old_status = post.status
    _transition(post, PostStatus.CANCELLED)
    post.save(update_fields=["status", "updated_at"])
    hooks.approvals_void.send(post=post, by=by, reason="cancelled")
    post.targets.exclude(status=TargetStatus.PUBLISHED).update(
        status=TargetStatus.CANCELLED, next_attempt_at=None
    )
    record(
        actor=by,
        action="post.cancelled",
        obj=post,
        team=post.team,
        data={"status_before": old_status, "reason": (reason or "")[:1000]},
    )
    return post


def _stop_publishing(*, post: Post, by: User, reason: str) -> Post:
    """Cancel a post part-way through publishing: its targets not sent yet (waiting, queued,
    held) are cancelled; one being sent finishes (its outcome is kept), and what went out stays
    out. With nothing out and nothing being sent the post is cancelled; otherwise it settles as
    its last targets do (partially published, as some accounts were stopped)."""
    targets = list(post.targets.select_for_update().order_by("pk"))
    stopped = [
        t.pk
        for t in targets
        if t.status in (TargetStatus.WAITING, TargetStatus.QUEUED, TargetStatus.HELD)
    ]
    if not stopped:
        raise InvalidTransition(
            "Every account of this post is being sent or done: there is nothing left to stop.",
            {"status": post.status},
        )
    PostTarget.objects.filter(pk__in=stopped).update(
        status=TargetStatus.CANCELLED, next_attempt_at=None, queued_at=None, held_reason=""
    )
    statuses = set(PostTarget.objects.filter(post=post).values_list("status", flat=True))
    nothing_out = statuses <= {TargetStatus.CANCELLED, TargetStatus.FAILED}
    events: list[dict] = []
    messages: list[dict] = []
    if nothing_out:
        _transition(post, PostStatus.CANCELLED)
        post.save(update_fields=["status", "updated_at"])
    else:
        events, messages = _settle_posts([post], timezone.now())
    record(
        actor=by,
        action="post.cancelled" if nothing_out else "post.publishing_stopped",
        obj=post,
        team=post.team,
        data={
            "status_before": PostStatus.PUBLISHING,
            "reason": (reason or "")[:1000],
            "targets_stopped": stopped,
        },
    )
    if events:
        record_many(events)
    if messages:
        notify_many(messages)
    return post


def _leads(user: User, post: Post) -> bool:
    return user_has_role(user=user, team=post.team, role=Role.LEAD)


@transaction.atomic
def post_duplicate(*, post: Post, by: User) -> Post:
    """A new draft with the same content, for accounts the user may draft for; no time."""
    if not selectors.can_draft_for_team(user=by, team=post.team):
        raise NotAllowed("You cannot draft for this post's team.")
    allowed = set(selectors.drafting_accounts(user=by).values_list("pk", flat=True))
    targets = [
        TargetInput(social_account_id=t.social_account_id, body=t.body)
        for t in post.targets.order_by("id")
        if t.social_account_id in allowed
    ]
    if not targets:
        raise ApplicationError("You cannot draft for any of this post's accounts.")
    copy = post_create(
        by=by,
        team_id=post.team_id,
        body=post.body,
        link=post.link,
        targets=targets,
        media_ids=list(post.post_media.order_by("position").values_list("media_id", flat=True)),
        scheduled_at=None,
        timezone_name=post.timezone,
        tags=post.tags,
        campaign=post.campaign,
        urgent=False,
    )
    copy.duplicated_from = post
    copy.save(update_fields=["duplicated_from"])
    record(
        actor=by,
        action="post.duplicated",
        obj=copy,
        team=copy.team,
        data={"from": post.pk},
    )
    return copy


def _make_targets_wait(post: Post, due: datetime) -> int:
    """Targets not yet sent wait for `due`; the dispatcher takes them from then."""
    return post.targets.filter(status__in=[TargetStatus.PENDING, TargetStatus.WAITING]).update(
        status=TargetStatus.WAITING, next_attempt_at=due
    )


@transaction.atomic
def post_approved(
    *, post: Post, content_hash: str, by: User | None, now: datetime | None = None
) -> Post:
    """The approval chain approved `content_hash` (called by the approvals app).

    With no time, or a time still ahead, the post is scheduled and its targets wait for it.
    Approved after its time: within the team's grace window it goes out at once; beyond it,
    it is never published late in silence — it waits as "needs a new time".
    """
    now = now or timezone.now()
    post = _lock(post)
    if post.status != PostStatus.IN_REVIEW:
        raise InvalidTransition(
            f"Only a post in review can be approved; this one is "
            f"{post.get_status_display().lower()}.",
            {"status": post.status},
        )
    if content_hash != post.content_hash:
        raise InvalidTransition(
            "The post changed after this approval was given; it must be approved again.",
            {"approved": content_hash, "current": post.content_hash},
        )
    post.approved_content_hash = content_hash
    post.approved_at = now
    grace_minutes = post.team.late_approval_grace_minutes
    late = post.scheduled_at is not None and post.scheduled_at < now
    too_late = late and (now - post.scheduled_at).total_seconds() > grace_minutes * 60
    if too_late:
        _transition(post, PostStatus.NEEDS_RESCHEDULE)
    else:
        _transition(post, PostStatus.SCHEDULED)
    post.save(update_fields=["status", "approved_content_hash", "approved_at", "updated_at"])
    if not too_late:
        due = post.scheduled_at if post.scheduled_at and post.scheduled_at > now else now
        _make_targets_wait(post, due)
    record(
        actor=by,
        action="post.approved" if not too_late else "post.approved_too_late",
        obj=post,
        team=post.team,
        data={
            "content_hash": content_hash,
            "version": post.version,
            "scheduled_at": post.scheduled_at,
            "late_by_seconds": (now - post.scheduled_at).total_seconds() if late else 0,
            "grace_minutes": grace_minutes,
            "status": post.status,
        },
    )
    return post


def _schedule_needs_approval(post: Post) -> bool:
    return any(hooks.schedule_change_needs_approval.send(team=post.team))


def post_changes_requested(*, post: Post, by: User, comment: str) -> Post:
    """An approver asked for changes: back to draft (called by approvals, in its transaction)."""
    post = _lock(post)
    _transition(post, PostStatus.DRAFT)
    post.save(update_fields=["status", "updated_at"])
    record(
        actor=by,
        action="post.changes_requested",
        obj=post,
        team=post.team,
        data={"version": post.version, "comment": comment[:2000]},
    )
    return post


def post_rejected(*, post: Post, by: User, comment: str) -> Post:
    """An approver rejected the post: terminal (called by approvals, in its transaction)."""
    post = _lock(post)
    _transition(post, PostStatus.REJECTED)
    post.save(update_fields=["status", "updated_at"])
    post.targets.update(status=TargetStatus.CANCELLED, next_attempt_at=None)
    record(
        actor=by,
        action="post.rejected",
        obj=post,
        team=post.team,
        data={"version": post.version, "comment": comment[:2000]},
    )
    return post


def post_submit_for_break_glass(*, post: Post, by: User) -> Post:
    """A draft goes straight to review for a lead's break-glass release (approvals calls it)."""
    post = _lock(post)
    _transition(post, PostStatus.IN_REVIEW)
    post.submitted_at = timezone.now()
    post.save(update_fields=["status", "submitted_at", "updated_at"])
    record(
        actor=by,
        action="post.submitted",
        obj=post,
        team=post.team,
        data={"version": post.version, "content_hash": post.content_hash, "break_glass": True},
    )
    return post


def post_release_now(*, post: Post, by: User) -> Post:
    """An approved post waiting for a new time goes out now (break-glass by a lead)."""
    post = _lock(post)
    _transition(post, PostStatus.SCHEDULED)
    post.scheduled_at = None
    post.save(update_fields=["status", "scheduled_at", "updated_at"])
    _make_targets_wait(post, timezone.now())
    record(
        actor=by,
        action="post.released_now",
        obj=post,
        team=post.team,
        data={"version": post.version, "content_hash": post.content_hash},
    )
    return post
