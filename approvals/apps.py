"""The approvals app: approval chains over posts, above publishing."""

from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"

    def ready(self) -> None:
        # What publishing's changes cause in the approval chain (cxhub.hooks). Imported here,
        # not at the top: an AppConfig module is imported before the models are loaded.
        from audit import hooks as audit_hooks
        from publishing import hooks

        from . import audit_rules, routing, sections, services

        audit_hooks.event_rules.connect(audit_rules.event_rules)

        hooks.post_submitted.connect(services.request_open)
        hooks.approvals_void.connect(services.requests_supersede)
        hooks.schedule_change_needs_approval.connect(routing.schedule_change_needs_approval)
        hooks.post_page_sections.connect(sections.post_page_section)
