"""Build accounts/data/breached-sha1.txt.gz, the breached-password list cxhub ships.

    python accounts/data/make_breached_list.py

Made offline from Django's own list of 20,000 common passwords (django/contrib/auth/
common-passwords.txt.gz, itself drawn from passwords exposed in breaches) and from the variants
people make of them when a rule asks for a capital, a digit or a symbol: the 300 most common
all-letter entries and a few stems of our own (seasons, months, the networks and words of a
public agency), each lower-case and Capitalised, followed by the usual suffixes (1, 123, !,
years 2010-2029, …), kept when 8 characters or longer (shorter ones fail Django's length rule
anyway). The file holds SHA-1 digests, sorted, one a line: the format of Have I Been Pwned's
"ordered by hash" list, which CXHUB_BREACHED_PASSWORDS_FILE may point to instead.
"""

import gzip
import hashlib
from pathlib import Path

import django

COMMON = Path(django.__file__).parent / "contrib" / "auth" / "common-passwords.txt.gz"
OUT = Path(__file__).with_name("breached-sha1.txt.gz")
TOP_WORDS = 300
STEMS = [
    "spring", "summer", "autumn", "winter", "january", "february", "march", "april", "may",
    "june", "july", "august", "september", "october", "november", "december", "monday",
    "friday", "welcome", "password", "passw0rd", "letmein", "changeme", "qwerty", "qwertz",
    "azerty", "admin", "administrator", "agency", "government", "council", "ministry",
    "office", "press", "comms", "communications", "media", "social", "socialmedia", "cxhub",
    "twitter", "facebook", "instagram", "linkedin", "mastodon", "bluesky", "publish",
    "approve", "secret", "default", "company", "service", "support", "helpdesk", "london",
    "paris", "berlin",
]  # fmt: skip
SUFFIXES = (
    ["", "1", "12", "123", "1234", "12345", "!", "1!", "123!", "!!", "01", "007", "69", "99"]
    + [str(year) for year in range(2010, 2030)]
    + [f"{year}!" for year in range(2018, 2030)]
)


def candidates() -> set[str]:
    with gzip.open(COMMON, "rt", encoding="utf-8") as lines:
        common = [line.strip() for line in lines if line.strip()]
    words = [word for word in common if word.isalpha() and word.isascii()][:TOP_WORDS]
    found = set(common)
    for stem in {*words, *STEMS}:
        for form in {stem, stem.capitalize()}:
            found.update(
                form + suffix for suffix in SUFFIXES if len(form + suffix) >= 8 or not suffix
            )
    return found


def main() -> None:
    digests = sorted(
        hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper()
        for password in candidates()
    )
    # mtime=0: the same input gives the same bytes.
    with open(OUT, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write("".join(f"{digest}\n" for digest in digests).encode())
    print(f"{OUT}: {len(digests)} digests")


if __name__ == "__main__":
    main()
