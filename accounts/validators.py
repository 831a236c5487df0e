"""Password rules beyond Django's own: refuse passwords known from data breaches.

The list is a file, never a network call: SHA-1 digests in hex, one a line, sorted, each line
optionally followed by ":count" (the format of Have I Been Pwned's "ordered by hash" download).
A gzip file (the small list shipped in accounts/data/, see make_breached_list.py there) is read
into memory once; a plain file, however large, is binary-searched on disk at each check.
CXHUB_BREACHED_PASSWORDS_FILE points to another list.
"""

import gzip
import hashlib
import os
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError

DIGEST_LENGTH = 40


def _key(line: bytes) -> bytes:
    return line[:DIGEST_LENGTH].upper()


@lru_cache(maxsize=2)
def _loaded(path: str, mtime: float) -> frozenset[bytes]:
    with gzip.open(path, "rb") as lines:
        return frozenset(_key(line) for line in lines if len(line.strip()) >= DIGEST_LENGTH)


def _line_from(file, position: int) -> bytes:
    """The first whole line that starts at `position` or after it (b"" at the end)."""
    if position == 0:
        file.seek(0)
    else:
        file.seek(position - 1)
        file.readline()
    return file.readline()


def _in_sorted_file(path: str, digest: bytes) -> bool:
    with open(path, "rb") as file:
        low, high = 0, os.fstat(file.fileno()).st_size
        # The key of the first line starting at or after p never decreases with p: find the
        # smallest p whose line is not below the digest.
        while low < high:
            middle = (low + high) // 2
            line = _line_from(file, middle)
            if line and _key(line) < digest:
                low = middle + 1
            else:
                high = middle
        return _key(_line_from(file, low)) == digest


def is_breached(password: str, path: str | None = None) -> bool:
    path = path or settings.CXHUB_BREACHED_PASSWORDS_FILE
    try:
        mtime = os.stat(path).st_mtime
    except OSError as exc:
        raise ImproperlyConfigured(
            f"CXHUB_BREACHED_PASSWORDS_FILE={path!r} cannot be read: {exc}"
        ) from exc
    digest = hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper().encode()
    if path.endswith(".gz"):
        return digest in _loaded(path, mtime)
    return _in_sorted_file(path, digest)


class BreachedPasswordValidator:
    """Refuses a password found in the list of breached passwords."""

    def validate(self, password: str, user=None) -> None:
        if is_breached(password):
            raise ValidationError(
                "This password is known from data breaches, so attackers try it first. "
                "Choose another.",
                code="password_breached",
            )

    def get_help_text(self) -> str:
        return "Your password can’t be one known from data breaches."
