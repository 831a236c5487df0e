"""Which posts a watch keeps: its own rules applied to every post a network's search gave (a
network's search is a first sieve, with its own stemming and fuzziness; these rules are the
watch's word). Pure Python over the watch's fields, built once per set of rules."""

from dataclasses import dataclass
from functools import lru_cache

from inbox.analysis import TermMatcher, fold, term_matcher
from networks.models import Channel


@dataclass(frozen=True)
class Match:
    """Why a post is kept: the terms and hashtags it mentions (as the watch wrote them, hashtags
    with their #), whether its author is followed, and the false claims it repeats (ids)."""

    terms: tuple[str, ...]
    followed: bool
    claims: tuple[int, ...]


def account_key(network: str, handle: str) -> str:
    return f"{network}:{fold(handle.lstrip('@'))}"


@lru_cache(maxsize=1024)
def followed_on(accounts: tuple[str, ...], network: str) -> frozenset[str]:
    """The handles a watch follows on `network`: "handle" follows it on every network,
    "network:handle" on that one only."""
    keys = set()
    for entry in accounts:
        prefix, _, rest = entry.partition(":")
        if rest and prefix in Channel.values:
            if prefix == network:
                keys.add(account_key(network, rest))
        else:
            keys.add(account_key(network, entry))
    return frozenset(keys)


@dataclass(frozen=True)
class Rules:
    terms: TermMatcher
    exclude: TermMatcher
    languages: frozenset[str]
    claims: tuple[tuple[int, TermMatcher], ...]
    accounts: tuple[str, ...]

    def match(self, *, network: str, text: str, author_handle: str, language: str) -> Match | None:
        """Why the watch keeps this post, or None when it does not: in another language than the
        watch's (a post whose language is not known is kept), mentioning an excluded term, or
        neither mentioning a term or hashtag nor written by a followed account."""
        if self.languages and language and language not in self.languages:
            return None
        if self.exclude.terms and self.exclude.match(text):
            return None
        terms = tuple(self.terms.match(text)) if self.terms.terms else ()
        followed = account_key(network, author_handle) in followed_on(self.accounts, network)
        if not terms and not followed:
            return None
        claims = tuple(claim_id for claim_id, matcher in self.claims if matcher.match(text))
        return Match(terms=terms, followed=followed, claims=claims)


@lru_cache(maxsize=256)
def rules_of(
    terms: tuple[str, ...],
    hashtags: tuple[str, ...],
    exclude: tuple[str, ...],
    languages: tuple[str, ...],
    accounts: tuple[str, ...],
    claims: tuple[tuple[int, tuple[str, ...]], ...],
) -> Rules:
    return Rules(
        terms=term_matcher(terms + tuple(f"#{tag}" for tag in hashtags)),
        exclude=term_matcher(exclude),
        languages=frozenset(languages),
        claims=tuple((claim_id, term_matcher(claim_terms)) for claim_id, claim_terms in claims),
        accounts=accounts,
    )
