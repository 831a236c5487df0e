"""The rows of approvals that must each have their event in the audit trail: audit_verify
checks them (audit.verify, through audit.hooks.event_rules, connected in ApprovalsConfig)."""

from audit.verify import EventRule

EVENT_RULES = (
    EventRule(
        label="decisions",
        model="approvals.Decision",
        object_type="approvals.approvalrequest",
        object_id_field="request_id",
        action="approval.{verdict}",
        actor_field="user_id",
    ),
)


def event_rules() -> tuple[EventRule, ...]:
    return EVENT_RULES
