"""The inbox app's configuration."""

from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "inbox"
    verbose_name = "Inbox"

    def ready(self) -> None:
        # The tasks register with Celery in every process, so that the beat's schedule and the
        # ingestion dispatcher queue them by name. Imported here: an AppConfig module is
        # imported before the models are loaded.
        from publishing import hooks as publishing_hooks

        from . import replies, sections, tasks  # noqa: F401

        publishing_hooks.replies_published.connect(replies.items_answered)
        publishing_hooks.post_context_sections.connect(sections.post_page_section)
