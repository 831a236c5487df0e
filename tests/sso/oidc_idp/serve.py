"""The provider process: `python -m tests.sso.oidc_idp.serve` migrates its own SQLite database,
makes its signing key and cxhub's client registration (OIDC_IDP_CLIENT_ID / _SECRET /
_REDIRECT_URIS), listens on a free port of 127.0.0.1 and prints "READY <url>"."""

import os

from tests.sso.wsgi import serve


def setup() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from django.core.management import call_command
    from oidc_provider.models import Client, ResponseType, RSAKey

    call_command("migrate", verbosity=0, interactive=False)
    if not RSAKey.objects.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        RSAKey.objects.create(key=pem.decode())
    client, _ = Client.objects.update_or_create(
        client_id=os.environ["OIDC_IDP_CLIENT_ID"],
        defaults={
            "name": "cxhub",
            "client_type": "confidential",
            "client_secret": os.environ["OIDC_IDP_CLIENT_SECRET"],
            "jwt_alg": "RS256",
            "require_consent": False,
            "reuse_consent": True,
            "_redirect_uris": os.environ["OIDC_IDP_REDIRECT_URIS"].replace(" ", "\n"),
        },
    )
    client.response_types.set([ResponseType.objects.get(value="code")])


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.sso.oidc_idp.settings")
    serve(setup)
