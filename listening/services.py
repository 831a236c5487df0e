"""Everything that changes listening's records: watches and their false claims (set by a lead,
audited), the sources they read (kept in step with the watch), and what a collection found
(`posts_store`: posts once per network, hits once per watch, figures counted again, the cursor
moved, all in one transaction)."""

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import regex
from django.db import transaction
from django.utils import timezone

from accounts.models import Role, Team, User
from accounts.selectors import teams_for
from audit.services import record
from cxhub.errors import ApplicationError, NotAllowed
from inbox import analysis
from inbox.models import Sentiment
from networks.channels import PublicPost as Found
from networks.channels import all_channels
from networks.models import Channel, SocialAccount

from . import measures
from .models import FalseClaim, Hit, Measure, PublicPost, Resolution, Source, Watch, WatchAuthor
from .rules import Match, Rules, account_key, rules_of

log = logging.getLogger("cxhub.listening")

MAX_TERMS = 1000
_TAG = regex.compile(r"^\w+$")
_LANGUAGE = regex.compile(r"^[a-z]{2,3}$")
_LIMITS = {"author_handle": 300, "author_name": 300, "author_id": 300}
# The fields of a watch a lead sets, with their defaults.
WATCH_FIELDS = (
    "name",
    "terms",
    "exclude",
    "hashtags",
    "accounts",
    "languages",
    "networks",
    "window_minutes",
    "baseline_hours",
    "min_volume",
    "retention_days",
    "active",
    "topic_tags",
    "topic_campaign",
)


def _field_error(name: str, message: str) -> ApplicationError:
    return ApplicationError(message, {"fields": {name: [message]}})


def listening_networks() -> dict[str, frozenset[str]]:
    """The networks that offer public search or timelines, with the kinds of query each answers."""
    return {channel.name: channel.listens for channel in all_channels() if channel.listens}


# Watches ----------------------------------------------------------------------------------------
def _strings(name: str, values: object, *, limit: int = 200, most: int = MAX_TERMS) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise _field_error(name, "A list of strings.")
    out: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise _field_error(name, "A list of strings.")
        value = " ".join(value.split())
        if not value:
            continue
        if len(value) > limit:
            raise _field_error(name, f"Each at most {limit} characters: {value[:40]!r}… is longer.")
        out.append(value)
    out = list(dict.fromkeys(out))
    if len(out) > most:
        raise _field_error(name, f"At most {most:,}; {len(out):,} given.")
    return out


def _clean(values: Mapping[str, object], *, current: Watch | None = None) -> dict[str, object]:
    """The watch's fields from `values` (those not given keep their current value), checked."""
    out: dict[str, object] = {}
    if "name" in values or current is None:
        name = " ".join(str(values.get("name") or "").split())
        if not name:
            raise _field_error("name", "Give the watch a name.")
        if len(name) > 200:
            raise _field_error("name", "At most 200 characters.")
        out["name"] = name
    for name in ("terms", "exclude", "accounts"):
        if name in values:
            out[name] = _strings(name, values[name])
    if "hashtags" in values:
        tags = [tag.lstrip("#") for tag in _strings("hashtags", values["hashtags"], limit=100)]
        for tag in tags:
            if not _TAG.match(tag):
                raise _field_error("hashtags", f"{tag!r} is not a hashtag (letters, digits, _).")
        out["hashtags"] = list(dict.fromkeys(tags))
    if "languages" in values:
        codes = [code.lower() for code in _strings("languages", values["languages"], limit=100)]
        for code in codes:
            if not _LANGUAGE.match(code):
                raise _field_error("languages", f"{code!r} is not a language code (en, fr).")
        out["languages"] = codes
    if "networks" in values:
        offered = listening_networks()
        names = _strings("networks", values["networks"], limit=30)
        for name in names:
            if name not in offered:
                raise _field_error(
                    "networks",
                    f"{name!r} offers no public search; one of {', '.join(sorted(offered))}.",
                )
        out["networks"] = names
    for name, low, high in (
        ("window_minutes", 1, 24 * 60),
        ("baseline_hours", 1, 24 * 28),
        ("min_volume", 1, 1_000_000),
        ("retention_days", 1, 3650),
    ):
        if name in values:
            value = values[name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise _field_error(name, f"A whole number from {low:,} to {high:,}.")
            out[name] = value
    if "topic_tags" in values:
        tags = _strings("topic_tags", values["topic_tags"], limit=50, most=20)
        out["topic_tags"] = list(dict.fromkeys(tag.lstrip("#") for tag in tags))
    if "topic_campaign" in values:
        campaign = " ".join(str(values["topic_campaign"] or "").split())
        if len(campaign) > 100:
            raise _field_error("topic_campaign", "At most 100 characters.")
        out["topic_campaign"] = campaign
    if "active" in values:
        if not isinstance(values["active"], bool):
            raise _field_error("active", "true or false.")
        out["active"] = values["active"]
    merged = (
        {name: getattr(current, name) for name in ("terms", "hashtags", "accounts")}
        if current
        else {}
    )
    merged.update({name: out[name] for name in ("terms", "hashtags", "accounts") if name in out})
    if not any(merged.get(name) for name in ("terms", "hashtags", "accounts")):
        raise _field_error("terms", "Give at least one term, hashtag or account to listen for.")
    return out


def _lead_team(by: User, team_id: object) -> Team:
    team = (
        teams_for(user=by, roles=[Role.LEAD]).filter(pk=team_id).first()
        if isinstance(team_id, int) and not isinstance(team_id, bool)
        else None
    )
    if team is None:
        raise _field_error("team", "No team with this id that you lead.")
    return team


def may_manage(*, user: User, watch: Watch) -> bool:
    return teams_for(user=user, roles=[Role.LEAD]).filter(pk=watch.team_id).exists()


@transaction.atomic
def watch_create(*, by: User, team_id: object, values: Mapping[str, object]) -> Watch:
    """A new watch for a team `by` leads; its sources are made, due now."""
    team = _lead_team(by, team_id)
    fields = _clean(values)
    sandbox = values.get("sandbox", False)
    if not isinstance(sandbox, bool):
        raise _field_error("sandbox", "true or false.")
    watch = Watch.objects.create(team=team, created_by=by, sandbox=sandbox, **fields)
    sources = _sync_sources(watch)
    record(
        actor=by,
        action="listening.watch_created",
        obj=watch,
        team=team,
        data={**_described(watch), "sources": sources},
    )
    return watch


@transaction.atomic
def watch_update(*, by: User, watch: Watch, values: Mapping[str, object]) -> Watch:
    """Change a watch (a lead of its team): sources no longer wanted are dropped with their
    cursors, new ones start from the newest page."""
    if not may_manage(user=by, watch=watch):
        raise NotAllowed("Only a lead of the watch's team can change it.")
    watch = Watch.objects.select_related("team").select_for_update(of=("self",)).get(pk=watch.pk)
    before = _described(watch)
    for name, value in _clean(values, current=watch).items():
        setattr(watch, name, value)
    watch.save(update_fields=[*WATCH_FIELDS, "updated_at"])
    sources = _sync_sources(watch)
    after = _described(watch)
    record(
        actor=by,
        action="listening.watch_changed",
        obj=watch,
        team=watch.team,
        data={
            "changed": {k: [before[k], after[k]] for k in after if before[k] != after[k]},
            "sources": sources,
        },
    )
    return watch


def _described(watch: Watch) -> dict[str, object]:
    return {name: getattr(watch, name) for name in WATCH_FIELDS}


def wanted_sources(watch: Watch) -> set[tuple[str, str, str]]:
    """(network, kind, query) for every query the watch asks of every network it reads."""
    offered = listening_networks()
    wanted: set[tuple[str, str, str]] = set()
    for network in watch.networks or sorted(offered):
        kinds = offered.get(network, frozenset())
        if "search" in kinds:
            wanted |= {(network, "search", term) for term in watch.terms}
        if "hashtag" in kinds:
            wanted |= {(network, "hashtag", tag) for tag in watch.hashtags}
        if "account" in kinds:
            for entry in watch.accounts:
                prefix, _, rest = entry.partition(":")
                if rest and prefix in Channel.values:
                    if prefix == network:
                        wanted.add((network, "account", rest.lstrip("@")))
                else:
                    wanted.add((network, "account", entry.lstrip("@")))
    return wanted


def _sync_sources(watch: Watch) -> dict[str, int]:
    wanted = wanted_sources(watch) if watch.active and not watch.sandbox else set()
    kept = {
        (source.network, source.kind, source.query): source.pk for source in watch.sources.all()
    }
    dropped = [pk for key, pk in kept.items() if key not in wanted]
    Source.objects.filter(pk__in=dropped).delete()
    now = timezone.now()
    added = Source.objects.bulk_create(
        [
            Source(watch=watch, network=network, kind=kind, query=query[:500], next_at=now)
            for network, kind, query in sorted(wanted - set(kept))
        ],
        ignore_conflicts=True,
    )
    return {"added": len(added), "dropped": len(dropped), "kept": len(wanted & set(kept))}


@transaction.atomic
def claim_create(*, by: User, watch: Watch, claim: object, terms: object) -> FalseClaim:
    """A known false claim on a watch (a lead of its team): its matches are flagged from now."""
    if not may_manage(user=by, watch=watch):
        raise NotAllowed("Only a lead of the watch's team can add a false claim.")
    text = " ".join(str(claim or "").split())
    if not text:
        raise _field_error("claim", "Write the false claim.")
    if len(text) > 2000:
        raise _field_error("claim", "At most 2,000 characters.")
    words = _strings("terms", terms, most=200)
    if not words:
        raise _field_error("terms", "Give at least one term the claim's posts use.")
    row = FalseClaim.objects.create(watch=watch, claim=text, terms=words, created_by=by)
    record(
        actor=by,
        action="listening.claim_created",
        obj=row,
        team=watch.team,
        data={"watch": watch.pk, "claim": text, "terms": words},
    )
    return row


@transaction.atomic
def claim_set_active(*, by: User, claim: FalseClaim, active: bool) -> FalseClaim:
    if not may_manage(user=by, watch=claim.watch):
        raise NotAllowed("Only a lead of the watch's team can change its false claims.")
    if claim.active != active:
        claim.active = active
        claim.save(update_fields=["active"])
        record(
            actor=by,
            action="listening.claim_changed",
            obj=claim,
            team=claim.watch.team,
            data={"watch": claim.watch_id, "active": active},
        )
    return claim


def inbox_watch_terms(*, team: Team, **kwargs: object) -> list[str]:
    """The inbox's hook (inbox.hooks.watch_terms): the terms and hashtags (with their #) of the
    active watches of `team` or a team above it, which its inbox items are matched against.
    One query."""
    paths = [team.path[:end] for end in range(team.steplen, len(team.path) + 1, team.steplen)]
    terms: list[str] = []
    for watch_terms, hashtags in Watch.objects.filter(
        team__path__in=paths, active=True
    ).values_list("terms", "hashtags"):
        terms += watch_terms + [f"#{tag}" for tag in hashtags]
    return list(dict.fromkeys(terms))


# What a collection found ------------------------------------------------------------------------
def watch_rules(watch: Watch) -> Rules:
    claims = tuple(
        (claim.pk, tuple(claim.terms))
        for claim in FalseClaim.objects.filter(watch=watch, active=True).order_by("pk")
    )
    return rules_of(
        tuple(watch.terms),
        tuple(watch.hashtags),
        tuple(watch.exclude),
        tuple(watch.languages),
        tuple(watch.accounts),
        claims,
    )


@dataclass(frozen=True)
class Stored:
    """What one store added: posts new to cxhub, hits new to the watch, and the new hits that
    repeat each false claim (claim id → hit ids)."""

    posts: int = 0
    hits: list[int] = field(default_factory=list)
    claims: dict[int, list[int]] = field(default_factory=dict)


def _signals(found: Found) -> tuple[str, analysis.Sentiment]:
    language = analysis.detect_language(found.text, declared=found.language)
    return language, analysis.score_sentiment(found.text, language)


def _count(value: int | None) -> int | None:
    return None if value is None else max(0, int(value))


def posts_store(
    *,
    watch: Watch,
    network: str,
    posts: Sequence[Found],
    source: Source | None = None,
    cursor: str | None = None,
    read_via: SocialAccount | None = None,
) -> Stored:
    """Keep what `network` gave `watch`: each post the watch's rules keep, once per network (a
    post kept already gets its new figures) and once per watch as a hit, the watch's figures
    counted again for the minutes, hours and days touched, and (with `source`) the source's
    cursor moved, in one transaction, so a run stopped anywhere resumes after its last stored
    page and a page stored twice counts once. One audit event names the hits it added. The
    watch's row is locked for the store: two sources of one watch store one after the other."""
    # A post older than the watch's retention is not kept: the watch keeps nothing from then
    # but its hours and days, which were counted and closed when their posts were purged.
    cutoff = retention_cutoff(watch)
    fresh = list(
        {post.network_id[:500]: post for post in posts if post.created_at >= cutoff}.values()
    )
    rules = watch_rules(watch)
    # Signals and matching cost CPU, not locks: worked out before the transaction.
    signals = {post.network_id[:500]: _signals(post) for post in fresh}
    matches: dict[str, Match] = {}
    for post in fresh:
        key = post.network_id[:500]
        found = rules.match(
            network=network,
            text=post.text,
            author_handle=post.author_handle,
            language=signals[key][0] or post.language,
        )
        if found is not None:
            matches[key] = found
    with transaction.atomic():
        Watch.objects.select_for_update().filter(pk=watch.pk).values_list("pk").first()
        ids = list(signals)
        kept = {
            row.network_id: row
            for row in PublicPost.objects.filter(network=network, network_id__in=ids)
        }
        # Only what the watch keeps is stored: another watch's own search brings what it wants.
        new_rows = [
            _row(network, post, signals[post.network_id[:500]], read_via)
            for post in fresh
            if post.network_id[:500] in matches and post.network_id[:500] not in kept
        ]
        PublicPost.objects.bulk_create(new_rows, ignore_conflicts=True)
        _refresh_figures(kept, fresh)
        post_ids = dict(
            PublicPost.objects.filter(network=network, network_id__in=list(matches)).values_list(
                "network_id", "pk"
            )
        )
        had = set(
            Hit.objects.filter(watch=watch, post_id__in=list(post_ids.values())).values_list(
                "post_id", flat=True
            )
        )
        by_id = {post.network_id[:500]: post for post in fresh}
        hits = []
        for network_id, match in matches.items():
            post_id = post_ids.get(network_id)
            if post_id is None or post_id in had:
                continue
            post = by_id[network_id]
            language, sentiment = signals[network_id]
            hits.append(
                Hit(
                    watch=watch,
                    post_id=post_id,
                    at=post.created_at,
                    author_key=account_key(network, post.author_handle or "unknown")[:340],
                    language=language,
                    sentiment=_sentiment(sentiment),
                    terms=list(match.terms)
                    + (["@" + post.author_handle.lstrip("@")] if match.followed else []),
                    claims=list(match.claims),
                )
            )
        created = Hit.objects.bulk_create(hits)
        firsts = _authors_seen(watch, created)
        measures.add(watch, created, firsts)
        if source is not None and cursor is not None:
            Source.objects.filter(pk=source.pk).update(cursor=cursor)
        if created:
            record(
                actor=None,
                action="listening.posts_found",
                obj=watch,
                team=watch.team,
                data={
                    "network": network,
                    "hits": sorted(hit.pk for hit in created),
                    "posts": sorted(hit.post_id for hit in created),
                },
            )
        if created and watch.listening_since is None:
            Watch.objects.filter(pk=watch.pk, listening_since__isnull=True).update(
                listening_since=timezone.now()
            )
    claims: dict[int, list[int]] = {}
    for hit in created:
        for claim_id in hit.claims:
            claims.setdefault(claim_id, []).append(hit.pk)
    return Stored(posts=len(new_rows), hits=[hit.pk for hit in created], claims=claims)


def _sentiment(sentiment: analysis.Sentiment) -> str:
    return sentiment.label if sentiment.label in Sentiment.values else Sentiment.NOT_SCORED


def _row(
    network: str,
    post: Found,
    signals: tuple[str, analysis.Sentiment],
    read_via: SocialAccount | None,
) -> PublicPost:
    language, sentiment = signals
    return PublicPost(
        network=network,
        network_id=post.network_id[:500],
        author_handle=(post.author_handle or "unknown")[: _LIMITS["author_handle"]],
        author_name=post.author_name[: _LIMITS["author_name"]],
        author_id=post.author_id[: _LIMITS["author_id"]],
        text=post.text,
        url=post.url[:1000] if post.url.startswith(("https://", "http://")) else "",
        posted_at=post.created_at,
        language=language,
        declared_language=post.language[:16],
        sentiment=_sentiment(sentiment),
        sentiment_score=sentiment.score,
        likes=_count(post.likes),
        reposts=_count(post.reposts),
        replies=_count(post.replies),
        quotes=_count(post.quotes),
        raw=dict(post.raw),
        read_via=read_via,
    )


_FIGURES = ("likes", "reposts", "replies", "quotes")


def _refresh_figures(kept: dict[str, PublicPost], fresh: Sequence[Found]) -> None:
    """A post read again shows its figures now: top posts rank by what they reached."""
    changed = []
    for post in fresh:
        row = kept.get(post.network_id[:500])
        if row is None:
            continue
        new = {name: _count(getattr(post, name)) for name in _FIGURES}
        if any(new[name] is not None and new[name] != getattr(row, name) for name in _FIGURES):
            for name, value in new.items():
                if value is not None:
                    setattr(row, name, value)
            changed.append(row)
    if changed:
        PublicPost.objects.bulk_update(changed, list(_FIGURES))


def _authors_seen(watch: Watch, hits: Sequence[Hit]) -> list[tuple[datetime | None, datetime]]:
    """Note when the watch first saw each author of `hits`: for each author whose first moment
    changed, (the moment before, None for a new author; the moment now)."""
    first: dict[str, datetime] = {}
    for hit in hits:
        if hit.author_key not in first or hit.at < first[hit.author_key]:
            first[hit.author_key] = hit.at
    if not first:
        return []
    known = dict(
        WatchAuthor.objects.filter(watch=watch, author_key__in=list(first)).values_list(
            "author_key", "first_at"
        )
    )
    WatchAuthor.objects.bulk_create(
        [
            WatchAuthor(watch=watch, author_key=key, first_at=at)
            for key, at in first.items()
            if key not in known
        ]
    )
    changed: list[tuple[datetime | None, datetime]] = [
        (None, at) for key, at in first.items() if key not in known
    ]
    for key, at in first.items():
        if key in known and at < known[key]:
            WatchAuthor.objects.filter(watch=watch, author_key=key).update(first_at=at)
            changed.append((known[key], at))
    return changed


# Retention --------------------------------------------------------------------------------------
def retention_cutoff(watch: Watch, *, now: datetime | None = None) -> datetime:
    """The moment before which the watch keeps no post, no hit and no minute's figures."""
    return (now or timezone.now()) - timedelta(days=watch.retention_days)


@transaction.atomic
def watch_purge(*, watch: Watch, now: datetime | None = None) -> dict[str, int]:
    """Purge what the watch keeps past its retention: its hits (the posts no watch still holds
    go with them) and its figures per minute; its figures per hour and per day stay, counted
    when the hits were there. One audit event says what went, when anything did."""
    cutoff = retention_cutoff(watch, now=now)
    hit_count = Hit.objects.filter(watch=watch, at__lt=cutoff).delete()[0]
    post_count = (
        PublicPost.objects.filter(posted_at__lt=cutoff, hits__isnull=True).delete()[0]
        if hit_count
        else 0
    )
    minutes = Measure.objects.filter(
        watch=watch, resolution=Resolution.MINUTE, start__lt=cutoff
    ).delete()[0]
    purged = {"hits": hit_count, "posts": post_count, "minutes": minutes}
    if any(purged.values()):
        record(
            actor=None,
            action="listening.purged",
            obj=watch,
            team=watch.team,
            data={"before": cutoff.isoformat(), **purged},
        )
    return purged
