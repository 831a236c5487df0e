"""Recompute the closed audit chain (the events before the Merkle tree took over) and name its
first broken link: an altered payload, a removed or reordered row, or a chain head that disagrees
with the last chained event (a removed tail). Then check
the trail is complete: every published target, decision and freeze has the event that proves
it (EVENT_RULES)."""

import string
import time
from dataclasses import dataclass, field

from django.apps import apps

from .hashing import EVENT_FIELDS, event_hash
from .models import GENESIS_HASH, AuditChainHead, AuditEvent

_FIELDS = (*EVENT_FIELDS, "prev_hash", "hash")


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int  # events verified before the first broken link (all of them when ok)
    seconds: float
    broken_seq: int | None = None
    reason: str = ""

    @property
    def events_per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float(self.count)


class _Broken(Exception):
    def __init__(self, seq: int, reason: str):
        super().__init__(reason)
        self.seq = seq
        self.reason = reason


class _Walker:
    """Walks events in seq order, remembering the last good link."""

    def __init__(self) -> None:
        self.count = 0
        self.last_seq = 0
        self.last_hash = GENESIS_HASH

    def walk(self, *, batch_size: int, up_to: int | None = None) -> None:
        # Keyset pagination on the unique seq: each batch is one indexed range scan and memory
        # stays constant however long the chain is.
        while True:
            rows = AuditEvent.objects.filter(seq__gt=self.last_seq)
            if up_to is not None:
                rows = rows.filter(seq__lte=up_to)
            batch = list(rows.order_by("seq").values_list(*_FIELDS)[:batch_size])
            for row in batch:
                self.check(dict(zip(_FIELDS, row, strict=True)))
            if len(batch) < batch_size:
                return

    def check(self, event: dict) -> None:
        seq = event["seq"]
        expected = self.last_seq + 1
        if seq > expected:
            missing = f"seq {expected}" if seq == expected + 1 else f"seqs {expected}–{seq - 1}"
            raise _Broken(expected, f"gap: {missing} missing (row removed)")
        if event["prev_hash"] != self.last_hash:
            raise _Broken(seq, "prev_hash does not match the previous event")
        computed = event_hash(
            prev_hash=event["prev_hash"],
            seq=seq,
            at=event["at"],
            actor_id=event["actor_id"],
            actor_name=event["actor_name"],
            action=event["action"],
            object_type=event["object_type"],
            object_id=event["object_id"],
            team_id=event["team_id"],
            data=event["data"],
        )
        if computed != event["hash"]:
            raise _Broken(seq, "hash mismatch: payload altered")
        self.count += 1
        self.last_seq = seq
        self.last_hash = event["hash"]


def verify_chain(*, batch_size: int = 2000) -> VerifyResult:
    """Check the closed hash chain: every event up to the chain head against its predecessor,
    and the last of them against the head (a removed tail). Events after the head are not
    chained (the Merkle tree covers every event: audit.verify_tree)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    started = time.perf_counter()
    walker = _Walker()
    try:
        # The walk starts at seq 1; a row moved below it would otherwise go unseen.
        stray = AuditEvent.objects.filter(seq__lt=1).order_by("seq").values_list("seq", flat=True)
        stray_seq = stray.first()
        if stray_seq is not None:
            raise _Broken(stray_seq, f"seq {stray_seq} is outside the chain (it starts at 1)")
        head = AuditChainHead.objects.filter(pk=AuditChainHead.SINGLETON_ID).first()
        # Without a head, walk whatever events carry a chain hash (the head then names them).
        end = head.seq if head is not None else _last_chained_seq()
        if end:
            walker.walk(batch_size=batch_size, up_to=end)
        _check_head(head, walker)
    except _Broken as broken:
        return VerifyResult(
            ok=False,
            count=walker.count,
            seconds=time.perf_counter() - started,
            broken_seq=broken.seq,
            reason=broken.reason,
        )
    return VerifyResult(ok=True, count=walker.count, seconds=time.perf_counter() - started)


def _last_chained_seq() -> int:
    last = AuditEvent.objects.exclude(hash=None).order_by("-seq").values_list("seq", flat=True)
    return last.first() or 0


def _check_head(head: AuditChainHead | None, walker: _Walker) -> None:
    last = (
        f"seq {walker.last_seq} / hash {walker.last_hash}" if walker.last_seq else "no event at all"
    )
    if head is None:
        if walker.last_seq:
            raise _Broken(walker.last_seq, f"chain head is missing but the last event is {last}")
        return
    if head.seq == walker.last_seq and head.hash == walker.last_hash:
        return
    if head.seq > walker.last_seq:
        seq = walker.last_seq + 1  # events removed from the end of the chain
    elif head.seq < walker.last_seq:
        seq = head.seq + 1  # events the head does not vouch for
    else:
        seq = head.seq  # same length, different last event
    raise _Broken(
        seq, f"chain head says seq {head.seq} / hash {head.hash} but the last event is {last}"
    )


# Completeness: the rows that must each have their event ------------------------------------------
@dataclass(frozen=True)
class EventRule:
    """Rows of one kind, each of which must have an event: `object_type` and the row's
    `object_id_field`, an action (`action` formatted with the row's fields, e.g.
    "approval.{verdict}"), and, when `actor_field` is set, that actor."""

    label: str
    model: str  # "app_label.Model"
    object_type: str
    action: str
    object_id_field: str = "pk"
    actor_field: str | None = None
    where: dict = field(default_factory=dict)  # filter on the rows (e.g. status published)

    @property
    def row_fields(self) -> tuple[str, ...]:
        names = ["pk", self.object_id_field, *_format_fields(self.action)]
        if self.actor_field:
            names.append(self.actor_field)
        return tuple(dict.fromkeys(names))


def _format_fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


# What the services record (publishing/dispatch.py, approvals/services.py): the one place to
# extend when another kind of row must be provable from the trail.
# issue 14: upward, to be registered: the trail names publishing's and approvals' models and
# their fields here (by "app_label.Model", resolved by apps.get_model: no import); those apps
# should register their rules with the trail at start-up instead.
EVENT_RULES = (
    EventRule(
        label="published targets",
        model="publishing.PostTarget",
        where={"status": "published"},
        object_type="publishing.posttarget",
        action="target.published",
    ),
    EventRule(
        label="decisions",
        model="approvals.Decision",
        object_type="approvals.approvalrequest",
        object_id_field="request_id",
        action="approval.{verdict}",
        actor_field="user_id",
    ),
    EventRule(
        label="freezes",
        model="publishing.PublishingFreeze",
        object_type="publishing.publishingfreeze",
        action="freeze.created",
        actor_field="created_by_id",
    ),
    EventRule(
        label="lifted freezes",
        model="publishing.PublishingFreeze",
        where={"active": False, "lifted_at__isnull": False},
        object_type="publishing.publishingfreeze",
        action="freeze.lifted",
        actor_field="lifted_by_id",
    ),
)
MISSING_EXAMPLES = 20  # ids of rows without their event, listed per rule


@dataclass(frozen=True)
class RuleResult:
    label: str
    checked: int
    missing: int
    missing_ids: tuple = ()  # the first MISSING_EXAMPLES

    def as_dict(self) -> dict:
        return {
            "label": self.label,
            "checked": self.checked,
            "missing": self.missing,
            "missing_ids": list(self.missing_ids),
        }


def verify_events_present(
    *, rules: tuple[EventRule, ...] = EVENT_RULES, batch_size: int = 2000
) -> list[RuleResult]:
    """For every rule, check that each of its rows has its event. Two queries per batch of rows
    (the rows, then their events), keyset on the primary key: memory stays constant."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    return [_check_rule(rule, batch_size) for rule in rules]


def _check_rule(rule: EventRule, batch_size: int) -> RuleResult:
    model = apps.get_model(rule.model)
    rows = model.objects.filter(**rule.where).order_by("pk").values(*rule.row_fields)
    checked = missing = 0
    examples: list = []
    last = None
    while True:
        page = rows if last is None else rows.filter(pk__gt=last)
        batch = list(page[:batch_size])
        if not batch:
            break
        last = batch[-1]["pk"]
        expected = {}
        for row in batch:
            key = (str(row[rule.object_id_field]), rule.action.format(**row))
            expected[row["pk"]] = (*key, row[rule.actor_field]) if rule.actor_field else key
        events = AuditEvent.objects.filter(
            object_type=rule.object_type,
            object_id__in={key[0] for key in expected.values()},
            action__in={key[1] for key in expected.values()},
        )
        fields = (
            ("object_id", "action", "actor_id") if rule.actor_field else ("object_id", "action")
        )
        found = set(events.values_list(*fields))
        for pk, key in expected.items():
            checked += 1
            if key not in found:
                missing += 1
                if len(examples) < MISSING_EXAMPLES:
                    examples.append(pk)
        if len(batch) < batch_size:
            break
    return RuleResult(rule.label, checked, missing, tuple(examples))
