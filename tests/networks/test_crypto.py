"""OAuth tokens at rest: encrypted in the database, readable back, rotated to a new key without
loss, and refused with a clear message (never a token, never a traceback) under a wrong key."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from accounts import crypto
from accounts.crypto import TokenCipherError
from networks.models import SocialAccount
from networks.tokens import social_account_rotate_tokens
from tests.factories import SocialAccountFactory

ACCESS = "access-PLAINTEXT-a1b2c3d4e5"
REFRESH = "refresh-PLAINTEXT-f6g7h8i9j0"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def keys(settings):
    """Sets settings.TOKEN_KEYS (newest first) with a fresh cipher cache each time."""

    def use(*token_keys: str) -> None:
        settings.TOKEN_KEYS = list(token_keys)
        crypto._cipher.cache_clear()

    yield use
    crypto._cipher.cache_clear()


def new_key() -> str:
    return Fernet.generate_key().decode()


def raw_tokens(account: SocialAccount) -> tuple[str, str]:
    """The columns as stored, read past the ORM."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT access_token_encrypted, refresh_token_encrypted "
            "FROM networks_socialaccount WHERE id = %s",
            [account.pk],
        )
        return cursor.fetchone()


def account_with_tokens(org, **kwargs) -> SocialAccount:
    account = SocialAccountFactory.build(team=org["north_centre"], **kwargs)
    account.set_tokens(access_token=ACCESS, refresh_token=REFRESH)
    account.save()
    return account


def test_the_database_holds_no_plaintext_token(org):
    # given an account whose tokens were set
    account = account_with_tokens(org)
    # when we read the raw columns
    access_raw, refresh_raw = raw_tokens(account)
    # then they are Fernet tokens holding neither plaintext
    for raw in (access_raw, refresh_raw):
        assert raw.startswith("gAAAAA")
        assert "PLAINTEXT" not in raw
        assert ACCESS not in raw and REFRESH not in raw
    assert access_raw != refresh_raw


def test_tokens_read_back_as_they_were_set(org):
    # given an account saved with tokens
    account = account_with_tokens(org)
    # when it is loaded afresh
    loaded = SocialAccount.objects.get(pk=account.pk)
    # then the tokens read back
    assert loaded.access_token == ACCESS
    assert loaded.refresh_token == REFRESH
    assert loaded.has_tokens


def test_an_account_without_tokens_reads_empty_tokens(org):
    account = SocialAccountFactory(team=org["north"])
    assert account.access_token == ""
    assert account.refresh_token == ""
    assert not account.has_tokens


def test_rotating_keys_keeps_every_token_readable_under_the_new_key_alone(org, keys):
    # given tokens stored under the old key
    old, new = new_key(), new_key()
    keys(old)
    account = account_with_tokens(org)
    before = raw_tokens(account)
    # when a new key goes first and the tokens are re-encrypted
    keys(new, old)
    out = io.StringIO()
    call_command("rotate_token_keys", stdout=out)
    # then the command says how many accounts it rewrote
    assert out.getvalue().strip() == (
        "re-encrypted tokens of 1 accounts, 0 server registrations, 0 authenticator apps and "
        "0 single sign-on identities under the newest key"
    )
    # and with the old key removed, every token still reads back, from a changed ciphertext
    keys(new)
    after = raw_tokens(account)
    assert after[0] != before[0] and after[1] != before[1]
    loaded = SocialAccount.objects.get(pk=account.pk)
    assert loaded.access_token == ACCESS
    assert loaded.refresh_token == REFRESH


def test_before_rotation_the_new_key_alone_cannot_read_old_tokens(org, keys):
    # given tokens under the old key
    old, new = new_key(), new_key()
    keys(old)
    account = account_with_tokens(org)
    # when the old key is dropped without running the rotation
    keys(new)
    # then reading fails loudly rather than giving garbage
    with pytest.raises(TokenCipherError):
        SocialAccount.objects.get(pk=account.pk).access_token  # noqa: B018


def test_rotation_works_in_batches_and_skips_accounts_without_tokens(org, keys):
    # given five accounts with tokens and one without, under the old key
    old, new = new_key(), new_key()
    keys(old)
    accounts = [account_with_tokens(org, handle=f"@many{i}") for i in range(5)]
    SocialAccountFactory(team=org["north"], handle="@tokenless")
    # when rotated two at a time
    keys(new, old)
    rotated = social_account_rotate_tokens(batch_size=2)
    # then the five were rewritten and read under the new key alone
    assert rotated == 5
    keys(new)
    for account in accounts:
        assert SocialAccount.objects.get(pk=account.pk).refresh_token == REFRESH


def test_a_wrong_key_raises_a_clear_error_without_the_token(org, keys):
    # given tokens stored under one key
    keys(new_key())
    account = account_with_tokens(org)
    # when only an unrelated key is configured
    keys(new_key())
    loaded = SocialAccount.objects.get(pk=account.pk)
    # then reading names the setting and the way out, and holds no token
    with pytest.raises(TokenCipherError) as excinfo:
        loaded.access_token  # noqa: B018
    message = str(excinfo.value)
    assert "CXHUB_TOKEN_KEYS" in message
    assert "rotate_token_keys" in message
    assert ACCESS not in message and raw_tokens(account)[0] not in message
    assert excinfo.value.__cause__ is None and excinfo.value.__suppress_context__


def test_rotate_token_keys_under_a_wrong_key_stops_with_a_command_error(org, keys):
    # given tokens stored under one key
    keys(new_key())
    account = account_with_tokens(org)
    before = raw_tokens(account)
    # when the rotation runs with only an unrelated key
    keys(new_key())
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("rotate_token_keys", stdout=out, stderr=err)
    # then it names CXHUB_TOKEN_KEYS, prints nothing else, and leaves the tokens as they were
    assert "CXHUB_TOKEN_KEYS" in str(excinfo.value)
    assert ACCESS not in str(excinfo.value)
    assert out.getvalue() == ""
    assert raw_tokens(account) == before


def _database_url() -> str:
    """The test database, as a URL a subprocess can open."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def test_manage_py_rotate_token_keys_under_a_wrong_key_exits_non_zero_without_traceback(
    transactional_db, org, keys, tmp_path
):
    # given tokens committed under one key
    stored_under = new_key()
    keys(stored_under)
    account = account_with_tokens(org)
    raw_access, raw_refresh = raw_tokens(account)
    # when the real command runs with only an unrelated key
    env = {
        k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "CXHUB_HTTPS"}
    }
    env.update(
        DEBUG="0",
        SECRET_KEY="test-" + "k" * 60,
        CXHUB_TOKEN_KEYS=new_key(),
        CXHUB_HTTPS="0",
        CXHUB_VAR_DIR=str(tmp_path),
        DATABASE_URL=_database_url(),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "rotate_token_keys"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # then it fails with the message alone: no traceback, no token, no ciphertext
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "CXHUB_TOKEN_KEYS" in result.stderr
    assert "Traceback" not in output
    for secret in (ACCESS, REFRESH, raw_access, raw_refresh, stored_under):
        assert secret not in output


def test_a_rotation_that_fails_part_way_still_records_what_it_rewrote(org, keys):
    # given two accounts under the old key, then one under a key since lost
    from audit.models import AuditEvent

    old, lost, new = new_key(), new_key(), new_key()
    keys(old)
    account_with_tokens(org, handle="@first")
    account_with_tokens(org, handle="@second")
    keys(lost)
    account_with_tokens(org, handle="@orphan")
    # when the rotation runs two at a time without the lost key
    keys(new, old)
    with pytest.raises(TokenCipherError):
        social_account_rotate_tokens(batch_size=2)
    # then the first batch was rewritten under the new key...
    keys(new)
    assert SocialAccount.objects.get(handle="@first").access_token == ACCESS
    # ...and the audit trail says so
    assert AuditEvent.objects.filter(action__startswith="social_account.tokens_rotat").exists()
