"""The accounts app: people, teams and their roles, and the doors people sign in through."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "People and accounts"

    def ready(self) -> None:
        # Imported here, not at the top: an AppConfig module is imported before the models.
        from django.contrib.auth.signals import user_logged_in

        # The tasks register with Celery in every process (the web's too), so that services
        # queue them by name (accounts.notifications.notify): tasks imports those services.
        from . import tasks  # noqa: F401
        from .mfa import session

        # Every door that signs a person in by password (this site's, the admin's, SSO) leaves
        # the session owing the second factor the person holds.
        user_logged_in.connect(session.on_user_logged_in, dispatch_uid="accounts.mfa.signed_in")
