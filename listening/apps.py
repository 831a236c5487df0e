"""The listening app's configuration."""

from django.apps import AppConfig


class ListeningConfig(AppConfig):
    name = "listening"
    verbose_name = "Listening"

    def ready(self) -> None:
        # The tasks register with Celery in every process, so that the beat's schedule and the
        # collection dispatcher queue them by name. Imported here: an AppConfig module is
        # imported before the models are loaded.
        from inbox import hooks as inbox_hooks

        from . import services, tasks  # noqa: F401

        inbox_hooks.watch_terms.connect(services.inbox_watch_terms)
