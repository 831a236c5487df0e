"""Encryption of OAuth tokens at rest with MultiFernet.

The first key of settings.TOKEN_KEYS encrypts; every key decrypts, so keys rotate by putting a new
one first and running `manage.py rotate_token_keys`. Nothing here logs or prints a token.
"""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class TokenCipherError(Exception):
    """A stored token cannot be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.strip()) for key in keys])


def cipher() -> MultiFernet:
    return _cipher(tuple(settings.TOKEN_KEYS))


def encrypt_token(plaintext: str) -> str:
    return cipher().encrypt(plaintext.encode()).decode("ascii")


def decrypt_token(ciphertext: str) -> str:
    try:
        return cipher().decrypt(ciphertext.encode("ascii")).decode()
    except (InvalidToken, ValueError, UnicodeError):
        raise TokenCipherError(
            "A stored token cannot be decrypted with any key in CXHUB_TOKEN_KEYS: "
            "a key was removed before `manage.py rotate_token_keys` re-encrypted the tokens"
        ) from None


def rotate_token(ciphertext: str) -> str:
    """Re-encrypt under the newest key (the first of CXHUB_TOKEN_KEYS)."""
    try:
        return cipher().rotate(ciphertext.encode("ascii")).decode("ascii")
    except (InvalidToken, ValueError, UnicodeError):
        raise TokenCipherError(
            "A stored token cannot be decrypted with any key in CXHUB_TOKEN_KEYS"
        ) from None
