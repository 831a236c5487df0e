"""The rows of publishing that must each have their event in the audit trail: audit_verify
checks them (audit.verify, through audit.hooks.event_rules, connected in PublishingConfig)."""

from audit.verify import EventRule

EVENT_RULES = (
    EventRule(
        label="published targets",
        model="publishing.PostTarget",
        where={"status": "published"},
        object_type="publishing.posttarget",
        action="target.published",
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


def event_rules() -> tuple[EventRule, ...]:
    return EVENT_RULES
