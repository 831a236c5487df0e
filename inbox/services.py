"""Every write of the inbox: storing what a network sent (ingestion and the sandbox both come
here), and the triage of an item (assign, status). One function per use case, each in a
transaction and each recording its audit event."""

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Subquery
from django.utils import timezone

from accounts.models import User
from audit.services import record
from cxhub.errors import ApplicationError, InvalidTransition
from networks.channels import Inbound
from networks.models import SocialAccount
from networks.selectors import social_accounts_for
from publishing.models import PostTarget

from . import analysis, hooks
from .models import (
    ITEM_TRANSITIONS,
    InboundItem,
    IngestState,
    ItemKind,
    ItemNote,
    ItemStatus,
    ItemTag,
    Sentiment,
)

# Longest values kept in the columns of the same length (a network may send longer).
_LIMITS = {"author_handle": 300, "author_name": 300, "author_id": 300, "url": 2000}


@dataclass(frozen=True)
class Stored:
    """What one store did: the ids of the rows it added and of those it marked deleted."""

    added: list[int]
    marked_deleted: list[int]


def items_store(
    *, account: SocialAccount, items: Sequence[Inbound], cursor: str | None = None
) -> Stored:
    """Keep what a network sent for `account`: new items are added with their signals
    (language, sentiment) and linked to our target when they answer one; items already kept are
    left as they are, except that one the network now says was deleted is marked so (never
    removed). With `cursor`, the account's ingestion cursor moves in the same transaction, so a
    run stopped at any point starts again where its last stored page ended. One audit event for
    the store, naming every row it added or marked."""
    fresh = _unique(items)
    # The signals are read before the transaction: they cost CPU, not locks.
    matcher = analysis.term_matcher(_watch_terms(account))
    rows = {item.network_id: _row(account, item, matcher) for item in fresh}
    with transaction.atomic():
        kept = dict(
            InboundItem.objects.filter(account=account, network_id__in=list(rows)).values_list(
                "network_id", "deleted_upstream"
            )
        )
        new = [row for network_id, row in rows.items() if network_id not in kept]
        _link_targets(account, new)
        # No conflict is ignored: one account is read by one run at a time (the dispatcher's
        # lease), so a row kept meanwhile by another writer is an IntegrityError that rolls the
        # page back, and the next run reads it again from the cursor before it.
        added = [row.pk for row in InboundItem.objects.bulk_create(new)]
        gone = [
            item.network_id
            for item in fresh
            if item.deleted and item.network_id in kept and not kept[item.network_id]
        ]
        marked = []
        if gone:
            marked = list(
                InboundItem.objects.filter(account=account, network_id__in=gone).values_list(
                    "pk", flat=True
                )
            )
            InboundItem.objects.filter(pk__in=marked).update(
                deleted_upstream=True, updated_at=timezone.now()
            )
        if cursor is not None:
            IngestState.objects.filter(account=account).update(cursor=cursor)
        if added or marked:
            record(
                actor=None,
                action="inbox.items_received",
                obj=account,
                team=account.team,
                data={"items": sorted(added), "marked_deleted": sorted(marked)},
            )
    return Stored(added=sorted(added), marked_deleted=sorted(marked))


@transaction.atomic
def items_mark_gone(*, account: SocialAccount, item_ids: Sequence[int]) -> list[int]:
    """The network no longer has or shows these items of `account` (inbox/recheck.py): they are
    marked deleted upstream, never removed; one audit event naming them. Returns the ids it
    marked (those not marked before)."""
    marked = list(
        InboundItem.objects.filter(
            account=account, pk__in=list(item_ids), deleted_upstream=False
        ).values_list("pk", flat=True)
    )
    if not marked:
        return []
    InboundItem.objects.filter(pk__in=marked).update(
        deleted_upstream=True, updated_at=timezone.now()
    )
    record(
        actor=None,
        action="inbox.items_gone",
        obj=account,
        team=account.team,
        data={"items": sorted(marked)},
    )
    return sorted(marked)


def _unique(items: Sequence[Inbound]) -> list[Inbound]:
    """One per network id (a page edge may repeat one): the last word wins (deleted or not)."""
    return list({item.network_id: item for item in items if item.network_id}.values())


def _watch_terms(account: SocialAccount) -> tuple[str, ...]:
    """The watch terms covering the account's team, from the apps above (hooks.watch_terms)."""
    terms: list[str] = []
    for found in hooks.watch_terms.send(team=account.team):
        terms.extend(found or ())
    return tuple(dict.fromkeys(terms))


def _row(account: SocialAccount, item: Inbound, matcher: analysis.TermMatcher) -> InboundItem:
    language = analysis.detect_language(item.text, declared=item.language)
    sentiment = analysis.score_sentiment(item.text, language)
    return InboundItem(
        account=account,
        network_id=item.network_id[:500],
        kind=item.kind if item.kind in ItemKind.values else ItemKind.MENTION,
        author_handle=(item.author_handle or "unknown")[: _LIMITS["author_handle"]],
        author_name=item.author_name[: _LIMITS["author_name"]],
        author_id=item.author_id[: _LIMITS["author_id"]],
        text=item.text,
        url=_web_url(item.url),
        posted_at=item.created_at,
        thread_id=item.thread_id[:500],
        in_reply_to_id=item.in_reply_to_id[:500],
        language=language,
        declared_language=item.language[:16],
        sentiment=sentiment.label if sentiment.label in Sentiment.values else Sentiment.NOT_SCORED,
        sentiment_score=sentiment.score,
        raw=dict(item.raw),
        deleted_upstream=item.deleted,
        watch_terms=matcher.match(item.text) if matcher.terms else [],
    )


def _web_url(url: str) -> str:
    """A link a person may open: a web address from the network, anything else dropped."""
    url = (url or "").strip()
    if len(url) > _LIMITS["url"] or not url.lower().startswith(("https://", "http://")):
        return ""
    return url


def _link_targets(account: SocialAccount, rows: list[InboundItem]) -> None:
    """Each new row that answers one of our published targets on the account (or sits in its
    conversation) points at it; a "mention" that answers ours is a reply. One query."""
    ids = {row.in_reply_to_id for row in rows if row.in_reply_to_id}
    # A thread that is the item itself (a mention that answers nothing) is never ours.
    ids |= {row.thread_id for row in rows if row.thread_id and row.thread_id != row.network_id}
    if not ids:
        return
    ours = dict(
        PostTarget.objects.filter(social_account=account, external_id__in=list(ids))
        .exclude(external_id="")
        .values_list("external_id", "pk")
    )
    for row in rows:
        target_id = ours.get(row.in_reply_to_id) or ours.get(row.thread_id)
        if target_id is None:
            continue
        row.target_id = target_id
        if row.kind == ItemKind.MENTION and row.in_reply_to_id in ours:
            row.kind = ItemKind.REPLY


# Triage ---------------------------------------------------------------------------------------
def _locked(item: InboundItem) -> InboundItem:
    return InboundItem.objects.select_for_update().select_related("account__team").get(pk=item.pk)


@transaction.atomic
def item_assign(*, item: InboundItem, assignee: User | None, by: User) -> InboundItem:
    """Give the item to a person who may see its account (or to nobody: None)."""
    item = _locked(item)
    if assignee is not None and not (
        assignee.is_active
        and social_accounts_for(user=assignee).filter(pk=item.account_id).exists()
    ):
        raise ApplicationError(
            f"{assignee.get_username()} cannot see {item.account.handle}'s inbox.",
            {"fields": {"assignee": ["Someone with a role over the item's account."]}},
        )
    before = item.assignee_id
    new = assignee.pk if assignee is not None else None
    if before == new:
        return item
    item.assignee = assignee
    item.save(update_fields=["assignee", "updated_at"])
    record(
        actor=by,
        action="inbox.item_assigned",
        obj=item,
        team=item.account.team,
        data={"from": before, "to": new},
    )
    return item


@transaction.atomic
def item_set_status(*, item: InboundItem, status: str, by: User | None) -> InboundItem:
    """Move the item to `status` (models.ITEM_TRANSITIONS): closing keeps the time, reopening
    clears it. The same status again changes nothing and records nothing."""
    if status not in ItemStatus.values:
        raise ApplicationError(
            f"Unknown status {status!r}.",
            {"fields": {"status": [f"One of {', '.join(ItemStatus.values)}."]}},
        )
    item = _locked(item)
    if item.status == status:
        return item
    if status not in ITEM_TRANSITIONS[item.status]:
        raise InvalidTransition(f"A {item.status} item cannot become {status}.")
    before = item.status
    item.status = status
    item.closed_at = timezone.now() if status == ItemStatus.CLOSED else None
    item.save(update_fields=["status", "closed_at", "updated_at"])
    record(
        actor=by,
        action="inbox.item_status_changed",
        obj=item,
        team=item.account.team,
        data={"from": before, "to": status},
    )
    return item


def item_close(*, item: InboundItem, by: User | None) -> InboundItem:
    return item_set_status(item=item, status=ItemStatus.CLOSED, by=by)


# Tags and notes -------------------------------------------------------------------------------
TAG_MAX_LENGTH = 50
NOTE_MAX_LENGTH = 5000


def tag_name(raw: str) -> str:
    """A tag as it is kept: trimmed and lower-case, so "Press " and "press" are one tag; 1 to 50
    characters, no control characters. Anything else is an ApplicationError naming the field."""
    name = (raw or "").strip().lower()
    if not name:
        problem = "Give the tag a name."
    elif len(name) > TAG_MAX_LENGTH:
        problem = f"A tag has at most {TAG_MAX_LENGTH} characters ({len(name)} given)."
    elif any(unicodedata.category(char) == "Cc" for char in name):
        problem = "A tag cannot hold control characters (tabs, line breaks)."
    else:
        return name
    raise ApplicationError(problem, {"fields": {"name": [problem]}})


@transaction.atomic
def item_tag(*, item: InboundItem, name: str, by: User) -> InboundItem:
    """Put the tag `name` (tag_name) on the item; a tag it already has changes nothing and
    records nothing."""
    name = tag_name(name)
    item = _locked(item)
    _, created = ItemTag.objects.get_or_create(item=item, name=name)
    if created:
        record(
            actor=by,
            action="inbox.item_tagged",
            obj=item,
            team=item.account.team,
            data={"tag": name},
        )
    return item


@transaction.atomic
def item_untag(*, item: InboundItem, name: str, by: User) -> InboundItem:
    """Take the tag `name` off the item; a tag it does not have changes nothing."""
    name = tag_name(name)
    item = _locked(item)
    removed, _ = ItemTag.objects.filter(item=item, name=name).delete()
    if removed:
        record(
            actor=by,
            action="inbox.item_untagged",
            obj=item,
            team=item.account.team,
            data={"tag": name},
        )
    return item


@transaction.atomic
def item_note_add(*, item: InboundItem, text: str, by: User) -> ItemNote:
    """Add an internal note to the item (seen by the team, never sent to the network)."""
    text = (text or "").strip()
    if not text:
        problem = "Write the note first."
    elif len(text) > NOTE_MAX_LENGTH:
        problem = f"A note has at most {NOTE_MAX_LENGTH:,} characters ({len(text):,} given)."
    elif "\x00" in text:
        problem = "The note contains a NUL character."
    else:
        problem = ""
    if problem:
        raise ApplicationError(problem, {"fields": {"text": [problem]}})
    item = _locked(item)
    note = ItemNote.objects.create(item=item, author=by, text=text)
    record(
        actor=by,
        action="inbox.item_note_added",
        obj=item,
        team=item.account.team,
        data={"note": note.pk},
    )
    return note


# Bulk triage ----------------------------------------------------------------------------------
# At most this many items in one bulk action: a page of the inbox is 50.
BULK_MAX_ITEMS = 200


class ItemsNotFound(ApplicationError):
    """Some of the items asked for do not exist or are not the person's to see: a 404, naming
    nothing (what one may not see, one may not learn exists)."""

    status = 404


def _visible_locked(*, item_ids: Sequence[int], by: User) -> list[InboundItem]:
    """The items `by` may see, locked in id order (two bulk actions on overlapping items wait for
    each other instead of deadlocking). All or nothing: one id they may not see refuses all."""
    ids = list(dict.fromkeys(item_ids))
    if not ids:
        problem = "Choose at least one item."
        raise ApplicationError(problem, {"fields": {"items": [problem]}})
    if len(ids) > BULK_MAX_ITEMS:
        problem = f"Choose at most {BULK_MAX_ITEMS} items at a time."
        raise ApplicationError(problem, {"fields": {"items": [problem]}})
    visible = social_accounts_for(user=by).values("pk")
    items = list(
        InboundItem.objects.select_for_update(of=("self",))
        .select_related("account__team")
        .filter(pk__in=ids, account__in=Subquery(visible))
        .order_by("pk")
    )
    if len(items) != len(ids):
        raise ItemsNotFound("Some of these items are not in your inbox.")
    return items


# Each bulk action applies the single item's service to every item, in one transaction: the same
# rules by construction, and one refusal (an assignee who cannot see one of the accounts) leaves
# every item as it was. Each item gets its own audit event, the one the single action records:
# the trail is read per object (an item's history) and per team (a lead sees the events of their
# subtree), and one bulk may span accounts of several teams, which one event could not name.
@transaction.atomic
def items_bulk_assign(
    *, item_ids: Sequence[int], assignee: User | None, by: User
) -> list[InboundItem]:
    """Give every item to `assignee` (None: to nobody); see item_assign."""
    items = _visible_locked(item_ids=item_ids, by=by)
    return [item_assign(item=item, assignee=assignee, by=by) for item in items]


@transaction.atomic
def items_bulk_tag(*, item_ids: Sequence[int], name: str, by: User) -> list[InboundItem]:
    """Put the tag `name` on every item; see item_tag."""
    name = tag_name(name)
    items = _visible_locked(item_ids=item_ids, by=by)
    return [item_tag(item=item, name=name, by=by) for item in items]


@transaction.atomic
def items_bulk_close(*, item_ids: Sequence[int], by: User) -> list[InboundItem]:
    """Close every item (those already closed stay as they are); see item_set_status."""
    items = _visible_locked(item_ids=item_ids, by=by)
    return [item_close(item=item, by=by) for item in items]
