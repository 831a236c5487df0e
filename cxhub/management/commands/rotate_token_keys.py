"""Re-encrypt every stored OAuth token (and cxhub's client secrets at Mastodon servers, the keys
of people's authenticator apps and the refresh tokens of their single sign-on) under the newest
key of CXHUB_TOKEN_KEYS. It lives in cxhub, the project, as it reaches into accounts, networks
and sso.

Run it after putting a new key first in CXHUB_TOKEN_KEYS; only then may the old key be removed.
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.crypto import TokenCipherError
from accounts.mfa.services import mfa_app_keys_rotate
from networks.tokens import oauth_app_rotate_secrets, social_account_rotate_tokens
from sso.services import sso_refresh_tokens_rotate


class Command(BaseCommand):
    help = "Re-encrypt every stored OAuth token under the newest key of CXHUB_TOKEN_KEYS."

    def handle(self, *args, **options) -> None:
        try:
            rotated = social_account_rotate_tokens()
            # cxhub's client secrets at each Mastodon server are under the same keys.
            secrets = oauth_app_rotate_secrets()
            apps = mfa_app_keys_rotate()
            identities = sso_refresh_tokens_rotate()
        except TokenCipherError as exc:
            # The message names the setting and never holds a token; `from None` keeps the
            # cryptography traceback (and its context) out of the output.
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"re-encrypted tokens of {rotated} accounts, {secrets} server registrations, "
            f"{apps} authenticator apps and {identities} single sign-on identities under the "
            "newest key"
        )
