"""The publishing app: posts, their targets and media, and their dispatch to the networks."""

from django.apps import AppConfig


class PublishingConfig(AppConfig):
    name = "publishing"

    def ready(self) -> None:
        # What publishing tells the apps below it (cxhub.hooks). Imported here, not at the top:
        # an AppConfig module is imported before the models are loaded.
        from audit import hooks as audit_hooks

        # The tasks register with Celery in every process (the web's too), so that the
        # dispatcher queues them by name (publishing.dispatch.claim): tasks imports it.
        from . import audit_rules, tasks  # noqa: F401

        audit_hooks.event_rules.connect(audit_rules.event_rules)
