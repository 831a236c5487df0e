"""A missing or malformed setting stops `manage.py` at start-up and names itself; a well-formed
production environment passes `check --deploy` without a warning."""

import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

REPO_ROOT = Path(__file__).resolve().parents[2]
# Set by tests/settings.py or CI for the test run itself; a fresh process must not inherit them.
TEST_ONLY = (
    "SECRET_KEY",
    "CXHUB_TOKEN_KEYS",
    "DEBUG",
    "DJANGO_SETTINGS_MODULE",
    "CXHUB_HTTPS",
    "PGOPTIONS",  # the suite's app role (tests/dbroles.py)
)


def strong_secret_key() -> str:
    alphabet = string.ascii_letters + string.digits + string.punctuation
    return "".join(secrets.choice(alphabet) for _ in range(64))


@pytest.fixture
def base_env(tmp_path):
    env = dict(os.environ)
    for name in TEST_ONLY:
        env.pop(name, None)
    # A fresh var/ (SQLite file, broker folders) so nothing touches the repository's.
    env["CXHUB_VAR_DIR"] = str(tmp_path / "var")
    env["DEBUG"] = "0"
    return env


def manage(env, *args):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def production(env) -> dict:
    return {
        **env,
        "SECRET_KEY": strong_secret_key(),
        "CXHUB_TOKEN_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "cxhub.example",
    }


def assert_stops_naming(result, name: str) -> None:
    assert result.returncode != 0, result.stdout
    assert name in result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_a_missing_secret_key_names_itself(base_env):
    # given DEBUG off and no SECRET_KEY
    # when manage.py starts
    result = manage(base_env, "check")
    # then it stops and says which setting
    assert_stops_naming(result, "SECRET_KEY")


def test_a_weak_secret_key_names_itself(base_env):
    result = manage({**production(base_env), "SECRET_KEY": "short"}, "check")
    assert_stops_naming(result, "SECRET_KEY")


def test_a_malformed_token_key_names_itself(base_env):
    # given a token key that is no Fernet key
    env = {**production(base_env), "CXHUB_TOKEN_KEYS": "not-a-key"}
    # when manage.py starts
    result = manage(env, "check")
    # then it stops naming CXHUB_TOKEN_KEYS, without echoing the value
    assert_stops_naming(result, "CXHUB_TOKEN_KEYS")


def test_a_missing_token_key_names_itself(base_env):
    env = production(base_env)
    del env["CXHUB_TOKEN_KEYS"]
    assert_stops_naming(manage(env, "check"), "CXHUB_TOKEN_KEYS")


def test_a_malformed_debug_names_itself(base_env):
    # given DEBUG=maybe
    env = {**production(base_env), "DEBUG": "maybe"}
    # when manage.py starts
    result = manage(env, "check")
    # then it stops naming DEBUG
    assert_stops_naming(result, "DEBUG")


def test_a_malformed_database_url_names_itself(base_env):
    # given a DATABASE_URL of an unknown scheme
    env = {**production(base_env), "DATABASE_URL": "nonsense://x"}
    # when manage.py starts
    result = manage(env, "check")
    # then it stops naming DATABASE_URL
    assert_stops_naming(result, "DATABASE_URL")


@pytest.mark.parametrize(
    "extra, name",
    [
        (
            {
                "DATABASE_URL": "postgres://app@127.0.0.1:5432/cxhub",
                "CXHUB_MIGRATE_DATABASE_URL": "postgres://owner@127.0.0.1:5432/other",
            },
            "CXHUB_MIGRATE_DATABASE_URL",
        ),
        (
            {"DATABASE_URL": "", "CXHUB_MIGRATE_DATABASE_URL": "postgres://o@127.0.0.1/cxhub"},
            "CXHUB_MIGRATE_DATABASE_URL",
        ),
        ({"CXHUB_DB_APP_ROLE": "app; DROP TABLE x"}, "CXHUB_DB_APP_ROLE"),
    ],
    ids=["another-database", "not-postgresql", "not-a-role-name"],
)
def test_a_wrong_split_of_database_roles_names_itself(base_env, extra, name):
    # given an owner's URL to another database, or to SQLite's, or a role name that is not one
    env = {**production(base_env), **extra}
    # when manage.py starts
    result = manage(env, "check")
    # then it stops naming the setting
    assert_stops_naming(result, name)


def test_a_production_environment_passes_the_deploy_checks(base_env):
    # given DEBUG off, a strong SECRET_KEY, a real token key, a host and HTTPS left at its default
    env = production(base_env)
    env.pop("CXHUB_HTTPS", None)
    # when Django's deployment checks run
    result = manage(env, "check", "--deploy")
    # then they find nothing to warn about
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr
    assert "WARNINGS" not in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CXHUB_TRUSTED_PROXIES", "10.0.0.0/8, not-a-network"),
        ("CXHUB_BREACHED_PASSWORDS_FILE", "/nonexistent/pwned.txt"),
        ("CXHUB_LOGIN_SLOWDOWN_AFTER", "0"),
        ("CXHUB_PASSWORD_RESET_SECONDS", "soon"),
    ],
)
def test_a_malformed_door_setting_names_itself(base_env, name, value):
    assert_stops_naming(manage({**production(base_env), name: value}, "check"), name)
