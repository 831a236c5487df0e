"""Single sign-on configured half-way stops start-up naming what is missing."""

from tests.accounts.test_settings_startup import assert_stops_naming, base_env, manage, production

__all__ = ["base_env"]


def test_an_issuer_without_a_client_secret_names_it(base_env):
    env = {
        **production(base_env),
        "CXHUB_OIDC_ISSUER": "https://idp.example",
        "CXHUB_OIDC_CLIENT_ID": "cx",
    }

    assert_stops_naming(manage(env, "check"), "CXHUB_OIDC_CLIENT_SECRET")


def test_saml_without_the_service_providers_key_names_it(base_env, tmp_path):
    metadata = tmp_path / "idp.xml"
    metadata.write_text("<md/>")
    env = {**production(base_env), "CXHUB_SAML_IDP_METADATA_FILE": str(metadata)}

    assert_stops_naming(manage(env, "check"), "CXHUB_SAML_SP_KEY_FILE")


def test_a_client_secret_can_come_from_a_file(base_env, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    env = {
        **production(base_env),
        "CXHUB_OIDC_ISSUER": "https://idp.example",
        "CXHUB_OIDC_CLIENT_ID": "cx",
        "CXHUB_OIDC_CLIENT_SECRET_FILE": str(secret),
    }

    result = manage(
        env,
        "shell",
        "-c",
        "from django.conf import settings; print(settings.CXHUB_OIDC_CLIENT_SECRET)",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "from-a-file"
