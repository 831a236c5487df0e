"""Benchmark of listening (issue 18): how fast public posts are classified and stored, against a
bare insert of the same rows in the same run; and how long a surge takes to raise its alert.

(a) Classification: --posts public posts (short texts in eight languages; --match-share of them
    mention some of a watch's 1,000 terms: words, phrases, prefixes and hashtags; a few mention
    an exclusion or repeat the watch's false claim) are given to that watch's
    listening.services.posts_store page by page as collection gives them
    (CXHUB_LISTENING_PAGE_SIZE, each page with its cursor, and the false-claim alert raised as
    collection raises it), in this one process: every post's language, sentiment and matches
    are worked out, and the posts the watch keeps are stored with their hits. Against it, the
    baseline: the very posts and hits it stored, bulk_create'd again once they are deleted, in
    a transaction per page given. The tables hold PRIOR_POSTS posts of another watch all along,
    analysed, as a running deployment's hold many. Printed: posts/s for both (of the posts
    given: both end with the same rows), their ratio, the CPU per post, and where the time
    goes, measured by timers around the parts (language, sentiment, the watch's rules with the
    term matching, the figures counted again, the database's statements by kind and commits,
    the rest); then term matching alone, per post: the watch's TermMatcher against trying every
    term's pattern (inbox.analysis._term_pattern), on --match-sample of the posts, with their
    answers compared.
    --profile adds a cProfile of one more store.
(b) Alert latency: --surges watches, each of one hashtag, read by
    listening.collection.source_collect from a stand-in Mastodon server on 127.0.0.1
    (bench/servers.py's MastodonTagsStandIn: GET /api/v1/timelines/tag/:hashtag with min_id, in a
    process of its own) where each tag has a steady stream (--steady-per-minute, with
    --history-minutes of it behind it, read first and the watch's listening_since set back to
    its start); then each tag gets a surge (--surge-posts over --surge-seconds) from a known
    moment, the surges staggered so that they meet the collection loop at every phase. The loop
    collects every source every --interval seconds (5 s: production's shortest interval, 60 s,
    scaled down twelve times; the detectors' windows are not scaled, and `now` is real time),
    in this one process, source after source, calling source_collect itself (not through
    claim_due and its beat, whose own 15 s production adds). Per surge: the wall time from the
    moment its first post was listed to the commit of the transaction that inserted its Alert
    row (the connection's commit, wrapped); printed as p50/p99, in seconds and in collection
    intervals, with the watches' window and minimum volume, and what a run's time goes to.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/listening.py \\
        [--posts 10000] [--rounds 1] [--surges 20] [--interval 5] [--profile]

The server in DATABASE_URL is used only for a scratch database, cxhub_bench_listening, created at
the start and dropped at the end. Nothing else should run against that PostgreSQL server
meanwhile: the figures of (a) are a ratio of two runs on it, and (b)'s are wall times.
"""

import argparse
import contextlib
import cProfile
import io
import logging
import math
import os
import pstats
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

try:
    from bench import ingest, rows, servers
except ImportError:  # run as a script: bench/ itself is first on sys.path
    import ingest
    import rows
    import servers

SCRATCH_DB = "cxhub_bench_listening"
NETWORK = "mastodon"
TERMS = 1000  # the "term matching against 1,000 watch terms"
HASHTAGS = 100  # of them, hashtags; the rest words, phrases and prefixes
PREFIXES = 150
# What the tables hold before (a), as a running deployment's do: another watch's posts and hits,
# analysed (a table grown from empty in the run would be planned as the empty table it was).
PRIOR_POSTS = 50_000
# The surges start this far apart: a golden-ratio fraction of the interval, so that their
# phases against the collection loop spread evenly over it.
SPACING = (3 - math.sqrt(5)) / 2


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        with (
            servers.scratch_database(
                os.environ.get("DATABASE_URL", ""),
                SCRATCH_DB,
                why="the bare insert it compares with is PostgreSQL's",
            ) as scratch_url,
            tempfile.TemporaryDirectory(prefix="cxhub-bench-listening-") as var_dir,
        ):
            # Started before Django connects: the stand-in is a fork of this process.
            stand_in = servers.MastodonTagsStandIn(
                tags=_tags(args.surges),
                per_minute=args.steady_per_minute,
                history_seconds=60 * args.history_minutes,
            ).start()
            try:
                return _run(args, scratch_url, var_dir, stand_in)
            finally:
                stand_in.stop()
    except servers.Refused as refused:
        print(f"bench/listening.py: {refused}", file=sys.stderr)
        return 2


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=10_000, help="(a) posts stored (10000)")
    parser.add_argument("--rounds", type=int, default=1, help="(a) runs of each, alternated (1)")
    parser.add_argument(
        "--match-share", type=float, default=0.3, help="(a) share of posts mentioning terms (0.3)"
    )
    parser.add_argument(
        "--match-sample", type=int, default=2000, help="(a) posts of term matching alone (2000)"
    )
    parser.add_argument("--profile", action="store_true", help="(a) cProfile one more store")
    parser.add_argument("--surges", type=int, default=20, help="(b) surges, a watch each (20)")
    parser.add_argument(
        "--interval", type=float, default=5.0, help="(b) seconds between collections (5)"
    )
    parser.add_argument(
        "--steady-per-minute", type=float, default=2.0, help="(b) steady posts a minute (2)"
    )
    parser.add_argument(
        "--history-minutes", type=int, default=120, help="(b) steady stream read first (120)"
    )
    parser.add_argument("--surge-posts", type=int, default=150, help="(b) posts a surge (150)")
    parser.add_argument(
        "--surge-seconds", type=float, default=30.0, help="(b) seconds a surge lasts (30)"
    )
    parser.add_argument("--window-minutes", type=int, default=15, help="(b) the watches' (15)")
    parser.add_argument("--baseline-hours", type=int, default=24, help="(b) the watches' (24)")
    parser.add_argument("--min-volume", type=int, default=10, help="(b) the watches' (10)")
    parser.add_argument("--no-classify", action="store_true", help="skip (a)")
    parser.add_argument("--no-latency", action="store_true", help="skip (b)")
    args = parser.parse_args(argv)
    if min(args.posts, args.rounds, args.match_sample, args.surges, args.surge_posts) < 1:
        parser.error(
            "--posts, --rounds, --match-sample, --surges and --surge-posts must be at least 1"
        )
    if not 0 <= args.match_share <= 1:
        parser.error("--match-share goes from 0 to 1")
    if min(args.interval, args.steady_per_minute, args.surge_seconds) <= 0:
        parser.error("--interval, --steady-per-minute and --surge-seconds must be above 0")
    if args.history_minutes < 5 * args.window_minutes:
        parser.error(
            "--history-minutes must be at least five windows: the spike test wants a baseline "
            "of four windows before the current one"
        )
    return args


def _run(args, scratch_url: str, var_dir: str, stand_in) -> int:
    os.environ.update(
        {
            "DATABASE_URL": scratch_url,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DEBUG": "0",  # DEBUG would keep every query in memory
            "CXHUB_VAR_DIR": var_dir,
            "CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "127.0.0.1/32",  # the stand-in
        }
    )
    sys.path.insert(0, str(servers.ROOT))
    import django
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    django.setup()
    call_command("migrate", verbosity=0)
    # An alert logs a warning; the bench prints its own account of them.
    logging.getLogger("cxhub.listening").setLevel(logging.ERROR)
    try:
        began = time.perf_counter()
        org = _organisation(stand_in)
        print(
            f"listening bench: PostgreSQL scratch database {SCRATCH_DB}; one process; "
            f"pages of {settings.CXHUB_LISTENING_PAGE_SIZE}, "
            f"{settings.CXHUB_LISTENING_PAGES_PER_RUN} a run; {os.cpu_count()} CPU(s), load "
            f"average {os.getloadavg()[0]:.1f}"
        )
        if not args.no_classify:
            _bench_classify(org, args)
        if not args.no_latency:
            _bench_latency(org, stand_in, args)
        print(
            f"bench took {time.perf_counter() - began:.0f} s; load average now "
            f"{os.getloadavg()[0]:.1f} (other work on the machine moves the figures)"
        )
    finally:
        connections.close_all()
    return 0


# The organisation ----------------------------------------------------------------------------


@dataclass
class Org:
    team: object
    lead: object
    account: object  # the Mastodon account (b)'s watches read through


def _organisation(stand_in) -> Org:
    from accounts.models import Membership, Role, Team, User
    from networks.models import Channel, SocialAccount

    team = Team.objects.add_root(create_kwargs={"name": "Statistics Office", "slug": "stats"})
    lead = User.objects.create(username="lead")
    Membership.objects.create(user=lead, team=team, role=Role.LEAD)
    account = SocialAccount(
        team=team,
        channel=Channel.MASTODON,
        handle="@listener",
        base_url=stand_in.url,
        external_id="1",
    )
    account.set_tokens(access_token=stand_in.token)
    account.save()
    return Org(team=team, lead=lead, account=account)


# (a) What a watch of 1,000 terms hears --------------------------------------------------------

# Twelve topics a public body is watched on, in the eight languages of the posts (en, fr, de,
# es, nl, it, pl, pt): the watch's words.
_TOPICS = [
    "census recensement Volkszählung censo volkstelling censimento spis recenseamento",
    "passport passeport Reisepass pasaporte paspoort passaporto paszport passaporte",
    "pension retraite Rente jubilación pensioen pensione emerytura reforma",
    "flood inondation Hochwasser inundación overstroming alluvione powódź inundação",
    "vaccine vaccin Impfung vacuna vaccinatie vaccino szczepionka vacina",
    "tax impôts Steuer impuesto belasting tasse podatek imposto",
    "ferry traversée Fähre transbordador veerboot traghetto prom balsa",
    "bins poubelles Müllabfuhr basura afval rifiuti śmieci lixo",
    "heatwave canicule Hitzewelle calorón hittegolf afa upał calor",
    "strike grève Streik huelga staking sciopero strajk greve",
    "benefits allocations Bürgergeld subsidio uitkering sussidio zasiłek subsídio",
    "launch lancement Raketenstart lanzamiento lancering lancio wystrzelenie lançamento",
]
_LANGUAGES = ["en", "fr", "de", "es", "nl", "it", "pl", "pt"]
_LANGUAGE_WEIGHTS = [55, 10, 10, 8, 5, 5, 4, 3]
_ONSETS = "Bren Kel Ash Mor Dun Tal Wes Har Lin Cor Ox Ell Pen Rad Stan Thorn Wick Alder Bel Cal"
_ENDINGS = "ford ham ton by wick stead mouth field bridge dale worth ley bury minster combe"
# (en) "<place> <facility>"; the others "<facility> <place>".
_FACILITIES = {
    "en": "town hall|library|swimming pool|bus station|recycling centre|health centre|"
    "job centre|leisure centre|register office|police station|train station|high street|"
    "market|hospital|tax office",
    "fr": "mairie de|piscine de|gare de|hôpital de",
    "de": "Rathaus|Bahnhof|Bibliothek|Krankenhaus",
    "es": "ayuntamiento de|biblioteca de|estación de",
    "nl": "gemeentehuis|station|bibliotheek",
    "it": "comune di|stazione di|biblioteca di",
    "pl": "urząd miasta|dworzec",
    "pt": "câmara de|estação de",
}
# What the other posts talk about: places and things no term names.
_OTHER_THINGS = "park|museum|zoo|bakery|marathon|concert|farmers market|football club|cinema"
_EXCLUDE = ["job vacancy", "offre d'emploi", "lottery", "giveaway"]
_CLAIM = (
    "The census has been cancelled and the forms must now be paid for",
    ["census cancelled", "recensement annulé", "census fee"],
)
# Short posts as people write them; {x} is what they are about.
_TEMPLATES = {
    "en": [
        "Anyone else still waiting on {x}? Three weeks and nothing.",
        "Thanks to the staff at {x}, sorted in ten minutes!",
        "Is {x} open on Saturday? The website says nothing.",
        "Really disappointed with {x} again, nobody answers the phone.",
        "Just read the update about {x}, sounds sensible to me.",
        "Queue at {x} was out the door this morning 😩",
        "Great news about {x}, well done everyone involved.",
        "Does {x} still need an appointment or can I just turn up?",
        "Why is nobody talking about {x}? This affects all of us.",
        "ok {x} 👍",
    ],
    "fr": [
        "Quelqu'un sait si {x} est ouvert demain ?",
        "Merci à l'équipe pour {x}, très efficace.",
        "Toujours pas de réponse concernant {x}, c'est inadmissible.",
        "Nouvelle info sur {x} ce matin, à suivre.",
    ],
    "de": [
        "Weiß jemand, ob {x} am Samstag geöffnet hat?",
        "Danke an das Team für {x}, alles schnell erledigt.",
        "Schon wieder Ärger mit {x}, niemand geht ans Telefon.",
        "Neue Informationen zu {x} auf der Webseite.",
    ],
    "es": [
        "¿Alguien sabe si {x} abre el sábado?",
        "Gracias al equipo por {x}, todo resuelto en diez minutos.",
        "Otra vez sin respuesta sobre {x}, qué vergüenza.",
    ],
    "nl": ["Weet iemand of {x} zaterdag open is?", "Bedankt voor {x}, snel geholpen."],
    "it": ["Qualcuno sa se {x} è aperto sabato?", "Grazie per {x}, personale gentilissimo."],
    "pl": ["Czy ktoś wie, co z {x} w sobotę?", "Dziękuję za {x}, wszystko załatwione szybko."],
    "pt": ["Alguém sabe se {x} abre no sábado?", "Obrigado pela ajuda com {x}, tudo resolvido."],
}


@dataclass
class WatchTerms:
    terms: list[str]
    hashtags: list[str]
    kinds: dict[str, int]
    places: list[str]  # named by the terms
    other_places: list[str]  # named by none
    topics: dict[str, list[str]]  # language → its topic words
    phrases: dict[str, list[str]]  # language → its phrase terms
    prefixes: list[str]


def _watch_terms() -> WatchTerms:
    """1,000 terms as an agency's watch might have them: the topics' words in eight languages,
    200 place names, phrases naming a place's facility, prefixes of the topics' words and
    places, hashtags of councils and campaigns; 100 more place names are named by none."""
    places = [onset + ending for ending in _ENDINGS.split() for onset in _ONSETS.split()]
    endings = [ending for ending in _ENDINGS.split() for _ in _ONSETS.split()]
    named_endings = list(zip(places[:200], endings[:200], strict=True))[::3]
    named, other = places[:200], places[200:]
    topics = {language: [] for language in _LANGUAGES}
    for row in _TOPICS:
        for language, word in zip(_LANGUAGES, row.split(), strict=True):
            topics[language].append(word)
    topic_words = [word for row in _TOPICS for word in row.split()]
    words = topic_words + named
    prefixes = list(
        dict.fromkeys(
            [word[: max(4, 2 * len(word) // 3)] + "*" for word in topic_words if len(word) >= 6]
            # A place's onset and the first letters of its ending: "Brenfor*".
            + [place[: len(place) - len(ending) + 3] + "*" for place, ending in named_endings]
        )
    )[:PREFIXES]
    hashtags = list(
        dict.fromkeys(
            [f"{place.lower()}council" for place in named[::2]]
            + [f"{row.split()[0]}2026" for row in _TOPICS]
        )
    )[:HASHTAGS]
    phrases: dict[str, list[str]] = {language: [] for language in _LANGUAGES}
    wanted = TERMS - len(hashtags) - len(words) - len(prefixes)
    count, n = 0, 0
    while count < wanted:
        language = _LANGUAGES[0] if n < len(places) else _LANGUAGES[1 + n % 7]
        facilities = _FACILITIES[language].split("|")
        place = places[n % len(places)]
        facility = facilities[(n // len(_LANGUAGES)) % len(facilities)]
        phrase = f"{place} {facility}" if language == "en" else f"{facility} {place}"
        if phrase not in phrases[language]:
            phrases[language].append(phrase)
            count += 1
        n += 1
    all_phrases = [phrase for language in _LANGUAGES for phrase in phrases[language]]
    terms = words + all_phrases + prefixes
    assert len(terms) + len(hashtags) == TERMS and len(set(terms)) == len(terms), len(terms)
    return WatchTerms(
        terms=terms,
        hashtags=hashtags,
        kinds={
            "words": len(words),
            "phrases": len(all_phrases),
            "prefixes": len(prefixes),
            "hashtags": len(hashtags),
        },
        places=named,
        other_places=other,
        topics=topics,
        phrases=phrases,
        prefixes=prefixes,
    )


def _posts(terms: WatchTerms, count: int, share: float) -> list:
    """`count` public posts, oldest first, over six hours of yesterday (whatever the time of
    day the bench runs at, its minutes, hours and day are the same); about `share` of them
    mention a term; one in a hundred an exclusion, one in two hundred the false claim."""
    from networks.channels import PublicPost as Found

    chance = random.Random(18)
    things = _OTHER_THINGS.split("|")
    start = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    start -= timedelta(days=1)
    end = start + timedelta(hours=6)
    posts = []
    for n in range(count):
        language = chance.choices(_LANGUAGES, _LANGUAGE_WEIGHTS)[0]
        tag = ""
        if chance.random() < share:
            kind = chance.randrange(5)
            if kind == 0:
                subject = chance.choice(terms.places)
            elif kind == 1:
                subject = chance.choice(terms.topics[language])
            elif kind == 2:
                subject = chance.choice(terms.phrases[language] or terms.phrases["en"])
            elif kind == 3:  # a word the prefix starts, not a term itself
                subject = chance.choice(terms.prefixes).rstrip("*") + "ers"
            else:
                subject = f"the {chance.choice(terms.other_places)} {chance.choice(things)}"
                tag = " #" + chance.choice(terms.hashtags)
        else:
            subject = f"{chance.choice(terms.other_places)} {chance.choice(things)}"
        text = chance.choice(_TEMPLATES[language]).format(x=subject) + tag
        roll = chance.random()
        if roll < 0.01:
            text += f" {chance.choice(_EXCLUDE)} 🎁"
        elif roll < 0.015:
            text = f"Is the census cancelled? Someone said there is a census fee now. {text}"
        if chance.random() < 0.1:
            text += " https://www.example.gov/news/2026/03/update"
        if chance.random() < 0.1:
            text = f"@citydesk@{servers.MASTODON_DOMAIN} {text}"
        roll = chance.random()
        declared = language if roll < 0.75 else ("en" if roll < 0.9 else "")
        at = start + (end - start) * n / count
        number = (int(at.timestamp() * 1000) << 16) | (n & 0xFFFF)
        author = f"resident_{chance.randrange(3000)}@mastodon.social"
        posts.append(
            Found(
                network_id=str(number),
                text=text,
                created_at=at,
                author_handle=author,
                author_name=author.split("@")[0].replace("_", " ").title(),
                author_id=str(chance.randrange(10**6)),
                url=f"https://mastodon.social/@{author.split('@')[0]}/{number}",
                language=declared,
                likes=chance.randrange(20),
                reposts=chance.randrange(5),
                replies=chance.randrange(3),
                raw={"id": str(number), "language": declared},
            )
        )
    return posts


class Parts(ingest.Parts):
    """ingest.py's timers (HTTP, language, sentiment, the database's statements and commits;
    the store's own with `store=True`) and listening's parts: the network's search, the watch's
    rules with their term matching, the figures counted again, the detectors and the
    false-claim alerts (these three with each call's time kept and their statements' time
    counted apart too), the audit event; and when each transaction that inserted an alert
    committed."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = ""  # the part whose statements are also counted as "db in <part>"
        self.each: dict[str, list[float]] = {}
        # When each transaction that inserted an alert committed (Unix time).
        self.alert_commits: list[float] = []
        self._alert_pending = False

    def apart(self, name: str, function):
        parts = self

        def wrapper(*args, **kwargs):
            outer, parts.inside = parts.inside, name
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent = time.perf_counter() - began
                parts.add(name, spent)
                parts.each.setdefault(name, []).append(spent)
                parts.inside = outer

        return wrapper

    def _statement(self, execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return super()._statement(execute, sql, params, many, context)
        finally:
            if self.inside:
                self.add(f"db in {self.inside}", time.perf_counter() - began)
            if sql.startswith('INSERT INTO "listening_alert"'):
                self._alert_pending = True

    def _committed(self, commit):
        def wrapper():
            try:
                return commit()
            finally:
                if self._alert_pending:
                    self.alert_commits.append(time.time())
                self._alert_pending = False

        return wrapper

    @contextlib.contextmanager
    def installed(self):
        from django.db import connections

        from inbox import analysis
        from listening import alerts, collection, measures, rules, services
        from networks.channels import mastodon

        channel = mastodon.MastodonChannel
        patches = [
            (rules.Rules, "match", self.timed("rules", rules.Rules.match)),
            (analysis.TermMatcher, "match", self.timed("terms", analysis.TermMatcher.match)),
            (measures, "add", self.apart("figures", measures.add)),
            (services, "record", self.timed("listening audit", services.record)),
            (alerts, "claims_matched", self.apart("claims", alerts.claims_matched)),
            (alerts, "evaluate", self.apart("evaluate", alerts.evaluate)),
            (channel, "search_public", self.timed("search", channel.search_public)),
        ]
        store = self.timed("store", services.posts_store, store=True)
        patches += [(services, "posts_store", store), (collection, "posts_store", store)]
        saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
        connection = connections["default"]
        with super().installed():
            timed_commit = connection.commit  # ingest.Parts' own, an instance attribute
            connection.commit = self._committed(timed_commit)
            for owner, name, wrapper in patches:
                setattr(owner, name, wrapper)
            try:
                yield self
            finally:
                for owner, name, original in saved:
                    setattr(owner, name, original)
                connection.commit = timed_commit  # which ingest.Parts then takes away


@dataclass
class Classify:
    watch: object
    source: object
    posts: list
    pages: list = field(default_factory=list)
    prior: int = 0  # the last post the tables held before: the runs' posts come after it


def _bench_classify(org: Org, args) -> None:
    from django.conf import settings
    from django.urls import get_resolver
    from django.utils import timezone

    from inbox import analysis
    from listening import services
    from listening.models import Watch

    terms = _watch_terms()
    watch = services.watch_create(
        by=org.lead,
        team_id=org.team.pk,
        values={
            "name": "Census and services",
            "terms": terms.terms,
            "hashtags": terms.hashtags,
            "exclude": _EXCLUDE,
            "networks": [NETWORK],
        },
    )
    services.claim_create(by=org.lead, watch=watch, claim=_CLAIM[0], terms=_CLAIM[1])
    # A watch that has listened for a while, as collection loads it for each run.
    Watch.objects.filter(pk=watch.pk).update(listening_since=timezone.now() - timedelta(days=2))
    watch = Watch.objects.select_related("team").get(pk=watch.pk)
    source = watch.sources.order_by("pk").first()
    posts = _posts(terms, args.posts, args.match_share)
    page_size = settings.CXHUB_LISTENING_PAGE_SIZE
    job = Classify(
        watch=watch,
        source=source,
        posts=posts,
        pages=[posts[start : start + page_size] for start in range(0, len(posts), page_size)],
        prior=_prior_posts(org, PRIOR_POSTS),
    )
    # What a worker has done before: the language model and VADER built, the URLconf loaded
    # (an alert links to its page), and this watch's matcher (once per process for a set of
    # rules) built, timed.
    analysis.score_sentiment("Thank you, this is great", analysis.detect_language("Thank you"))
    get_resolver().reverse_dict  # noqa: B018 (loads every urls module)
    built = time.perf_counter()
    services.watch_rules(watch)
    built = time.perf_counter() - built
    kinds = ", ".join(f"{count} {kind}" for kind, count in terms.kinds.items())
    languages = sum(1 for post in posts if post.language)
    print(
        f"(a) {len(posts):,} public posts ({', '.join(_LANGUAGES)}; {languages:,} with a declared "
        f"language) stored for one watch of {TERMS:,} terms ({kinds}), {len(_EXCLUDE)} "
        f"exclusions and a false claim of {len(_CLAIM[1])} terms; its matcher built in "
        f"{1000 * built:.0f} ms; the tables already hold {PRIOR_POSTS:,} posts and hits of "
        "another watch, analysed"
    )
    pairs, rows = [], None
    for number in range(args.rounds):
        order = ("ours", "bare") if number % 2 == 0 else ("bare", "ours")
        pair = {}
        for which in order:
            _empty_listening(job)
            if which == "ours":
                pair["ours"] = _store(job)
                if rows is None:
                    rows = _stored_rows(job)
            else:
                pair["bare"] = _bare_insert(*rows, pages=job.pages, prior=job.prior)
        pairs.append((pair["ours"], pair["bare"]))
    _report_classify(pairs, page_size=page_size, kept=len(rows[0]), hits=len(rows[1]))
    if args.profile:
        _profile(job)
    _bench_terms(job, args.match_sample)


def _prior_posts(org: Org, count: int) -> int:
    """`count` posts of a day last week, each a hit of another watch, copied from one in a
    statement; the tables analysed. The id of the last."""
    from listening.models import Hit, PublicPost, Watch

    at = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=6)
    other = Watch.objects.create(
        team=org.team, name="Earlier", terms=["ferry"], created_by=org.lead, active=False
    )
    post = PublicPost.objects.create(
        network=NETWORK,
        network_id="prior",
        author_handle="resident_1@mastodon.social",
        text="Is the ferry running today? Nothing on the website.",
        url="https://mastodon.social/@resident_1/1",
        posted_at=at,
        language="en",
        sentiment="neutral",
        sentiment_score=0.0,
        raw={"id": "1"},
    )
    hit = Hit.objects.create(
        watch=other, post=post, at=at, author_key="mastodon:resident_1@mastodon.social"
    )
    ids = rows.copy_row(
        PublicPost,
        post.pk,
        count=count - 1,
        network_id="t.network_id || '-' || n",
        posted_at="t.posted_at + n * interval '1 second'",
    )
    rows.copy_row(Hit, hit.pk, parents=ids, post_id="parent")
    for table in ("listening_publicpost", "listening_hit"):
        rows.analyse(table)
    return max(ids)


def _empty_listening(job: Classify) -> None:
    """None of the runs' posts, nor the watch's hits, figures, authors or alerts: each run
    stores as the first did; the tables analysed again."""
    from listening.models import Alert, Hit, Measure, PublicPost, WatchAuthor

    Hit.objects.filter(watch=job.watch).delete()
    PublicPost.objects.filter(pk__gt=job.prior).delete()
    Measure.objects.filter(watch=job.watch).delete()
    WatchAuthor.objects.filter(watch=job.watch).delete()
    Alert.objects.filter(watch=job.watch).delete()
    for table in ("listening_publicpost", "listening_hit", "listening_measure"):
        rows.analyse(table)


def _store(job: Classify) -> ingest.Measured:
    """Every page stored as source_collect stores it: posts_store with the page's cursor, then
    the false-claim alerts of what it found."""
    from listening import alerts, services
    from listening.models import Hit, PublicPost

    parts = Parts()
    with parts.installed():
        backend = ingest._backend_cpu_seconds()
        began, cpu = time.perf_counter(), time.process_time()
        for page in job.pages:
            stored = services.posts_store(
                watch=job.watch,
                network=NETWORK,
                posts=page,
                source=job.source,
                cursor=page[-1].network_id,
            )
            if stored.claims:
                alerts.claims_matched(job.watch, stored.claims)
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
        backend = ingest._backend_cpu_seconds() - backend
    # A post is kept for the watch that matched it: one hit each, here.
    stored = PublicPost.objects.filter(pk__gt=job.prior).count()
    hits = Hit.objects.filter(watch=job.watch).count()
    if stored != hits or not stored:
        raise RuntimeError(f"posts_store kept {stored} posts and {hits} hits")
    return ingest.Measured(
        items=len(job.posts),
        seconds=seconds,
        cpu=cpu,
        backend_cpu=backend,
        pages=len(job.pages),
        parts=parts,
    )


def _stored_rows(job: Classify) -> tuple[list, list]:
    """The posts and hits the store made, as new unsaved rows with every value but the ids (a
    hit's post named by its network id until the bare insert gives the post its id)."""
    from listening.models import Hit, PublicPost

    def unsaved(model, rows):
        names = [f.attname for f in model._meta.concrete_fields if not f.primary_key]
        return [model(**values) for values in rows.values(*names)]

    stored = PublicPost.objects.filter(pk__gt=job.prior)
    posts = unsaved(PublicPost, stored.order_by("id"))
    network_ids = dict(stored.values_list("pk", "network_id"))
    hits = unsaved(Hit, Hit.objects.filter(watch=job.watch).order_by("id"))
    for hit in hits:
        hit.post_network_id = network_ids[hit.post_id]
    return posts, hits


def _bare_insert(posts: list, hits: list, *, pages: list, prior: int) -> ingest.Measured:
    """The baseline: the posts kept from each page collection stored bulk_create'd, then their
    hits, a transaction per page (as many as the store's)."""
    from django.db import transaction

    from listening.models import Hit, PublicPost

    page_of = {post.network_id: number for number, page in enumerate(pages) for post in page}
    batches: list[list] = [[] for _ in pages]
    for post in posts:
        batches[page_of[post.network_id]].append(post)
    hits_of: dict[str, list] = {}
    for hit in hits:
        hits_of.setdefault(hit.post_network_id, []).append(hit)
    for row in [*posts, *hits]:
        row.pk, row._state.adding = None, True
    parts = Parts()
    with parts.installed():
        backend = ingest._backend_cpu_seconds()
        began, cpu = time.perf_counter(), time.process_time()
        for batch in batches:
            with transaction.atomic():
                PublicPost.objects.bulk_create(batch)
                page_hits = []
                for post in batch:
                    for hit in hits_of.get(post.network_id, ()):
                        hit.post_id = post.pk
                        page_hits.append(hit)
                Hit.objects.bulk_create(page_hits)
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
        backend = ingest._backend_cpu_seconds() - backend
    assert PublicPost.objects.filter(pk__gt=prior).count() == len(posts)
    assert Hit.objects.filter(post_id__gt=prior).count() == len(hits)
    return ingest.Measured(
        items=len(posts),
        seconds=seconds,
        cpu=cpu,
        backend_cpu=backend,
        pages=len(pages),
        parts=parts,
    )


def _report_classify(pairs: list, *, page_size: int, kept: int, hits: int) -> None:
    # Both runs end with the same rows stored: their rates are of the same posts classified.
    ratios = sorted(bare.seconds / ours.seconds for ours, bare in pairs)
    # The round whose ratio is the median is the one described.
    ours, bare = sorted(pairs, key=lambda pair: pair[1].seconds / pair[0].seconds)[len(pairs) // 2]
    each = f" (rounds: {', '.join(f'{r:.2f}' for r in ratios)})" if len(pairs) > 1 else ""
    parts, n = ours.parts, ours.items
    print(
        f"    classified and stored  {n:,} posts in {ours.seconds:.2f} s = {ours.rate:,.0f} "
        f"posts/s; {kept:,} kept ({kept / n:.0%}: a post and a hit each), {ours.pages} pages, "
        f"{parts.calls.get('db statements', 0)} statements, "
        f"{parts.calls.get('db commits', 0)} commits"
    )
    print(
        f"    bare insert            the same {kept:,} posts and {hits:,} hits in "
        f"{bare.seconds:.2f} s = {n / bare.seconds:,.0f} posts/s of the {n:,} "
        f"({(kept + hits) / bare.seconds:,.0f} rows/s; bulk_create, a transaction per page of "
        f"{page_size} given)"
    )
    print(
        f"    ratio                  {bare.seconds / ours.seconds:.2f}{each} (posts/s classified "
        "and stored over the bare insert's)"
    )
    print(
        f"    CPU per post given     stored {1000 * ours.cpu / n:.2f} ms here + "
        f"{1000 * ours.backend_cpu / n:.2f} ms in its PostgreSQL backend; bare insert "
        f"{1000 * bare.cpu / n:.2f} + {1000 * bare.backend_cpu / n:.2f} ms"
    )
    total = ours.seconds
    language, sentiment = parts.get("language"), parts.get("sentiment")
    matching, database = parts.get("rules"), parts.get("db statements") + parts.get("db commits")
    in_store, claims = parts.get("db in store"), parts.get("claims")
    figures, in_figures = parts.get("figures"), parts.get("db in figures")
    analysed = language + sentiment + matching + (figures - in_figures)
    rows = [
        ("language (detect_language)", language),
        ("sentiment (score_sentiment)", sentiment),
        ("the watch's rules (Rules.match: terms, exclusions, claim)", matching),
        ("figures added (measures.add), its own Python", figures - in_figures),
        ("database: statements", parts.get("db statements")),
        ("database: commits", parts.get("db commits")),
        (
            "posts_store's own Python (rows, ORM, the rest)",
            parts.get("store") - analysed - in_store,
        ),
        ("false-claim alerts (claims_matched), their own Python", claims - (database - in_store)),
        ("the rest (the bench's loop)", total - parts.get("store") - claims),
    ]
    print("    where the time goes (timers; ms per post, share of the wall time):")
    for label, seconds in rows:
        print(f"      {label:<58} {1000 * seconds / n:6.3f} ms  {seconds / total:4.0%}")
    per_page = parts.each.get("figures", [])
    tenth = max(1, len(per_page) // 10)
    print(
        f"      (term matching, TermMatcher.match: {1000 * parts.get('terms') / n:.3f} ms of the "
        f"rules' {1000 * matching / n:.3f} ms, {parts.calls.get('terms', 0):,} calls; the "
        f"database's statements in measures.add {1000 * in_figures / n:.3f} ms, in "
        f"claims_matched {1000 * parts.get('db in claims') / n:.3f} ms, the audit event "
        f"{1000 * parts.get('listening audit') / n:.3f} ms; "
        f"{parts.calls.get('db statements', 0) / ours.pages:.1f} statements a page)"
    )
    if per_page:
        tenths = [
            1000 * sum(per_page[start : start + tenth]) / len(per_page[start : start + tenth])
            for start in range(0, len(per_page), tenth)
        ]
        print(
            "      measures.add a page, ms, by tenth of the pages (the day's hits growing; what "
            "a page costs should not grow with them): "
            f"{', '.join(f'{value:.1f}' for value in tenths)}"
        )
    by_kind = sorted(parts.statements.items(), key=lambda kind: -kind[1][0])
    print(
        "      database statements by kind, ms per post (count): "
        + ", ".join(
            f"{kind} {1000 * seconds / n:.3f} ({count})" for kind, (seconds, count) in by_kind
        )
    )
    statements, commits = bare.parts.get("db statements"), bare.parts.get("db commits")
    print(
        f"      bare insert, for comparison, per post given: database statements "
        f"{1000 * statements / n:.3f} ms, commits {1000 * commits / n:.3f} ms, the rest "
        f"(bulk_create's Python) {1000 * (bare.seconds - statements - commits) / n:.3f} ms"
    )


def _profile(job: Classify) -> None:
    """One more store under cProfile: the functions with the most time of their own, and the
    project's entry points by cumulative time."""
    _empty_listening(job)
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        _store(job)
    finally:
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(r"/(listening|inbox|audit)/", 30)
    print(f"(a) cProfile of one more store of {len(job.posts):,} posts")
    print(out.getvalue())


def _bench_terms(job: Classify, sample: int) -> None:
    """Term matching alone on `sample` of the posts: the watch's matcher, against trying every
    term's pattern on the folded text; their answers must be the same."""
    from inbox.analysis import _term_pattern, fold
    from listening import services

    matcher = services.watch_rules(job.watch).terms
    texts = [post.text for post in job.posts[:sample]]
    patterns = [(term, _term_pattern(term)) for term in matcher.terms]
    began = time.perf_counter()
    indexed = [matcher.match(text) for text in texts]
    indexed_seconds = time.perf_counter() - began
    began = time.perf_counter()
    every = []
    for text in texts:
        folded = fold(text)
        every.append([term for term, pattern in patterns if pattern and pattern.search(folded)])
    every_seconds = time.perf_counter() - began
    differ = sum(1 for one, other in zip(indexed, every, strict=True) if one != other)
    matched = sum(1 for found in indexed if found)
    print(
        f"    term matching alone, {len(texts):,} posts against {len(matcher.terms):,} terms "
        f"(hashtags as #terms; {matched:,} posts mention one): TermMatcher.match "
        f"{1e6 * indexed_seconds / len(texts):.1f} µs a post; every term's pattern "
        f"(_term_pattern, text folded once) {1e6 * every_seconds / len(texts):.1f} µs a post: "
        f"{every_seconds / indexed_seconds:.0f} times as long; answers "
        + ("the same" if not differ else f"DIFFERENT for {differ} posts")
    )


# (b) From a surge's first post to its alert ---------------------------------------------------


def _tags(count: int) -> list[str]:
    onsets = _ONSETS.lower().split()
    return [f"census{onsets[n % len(onsets)]}{n}" for n in range(count)]


@dataclass
class Surge:
    watch_id: int
    source_id: int
    tag: str
    at: float = 0.0  # when its first post was listed (Unix time)
    raised: float = 0.0  # when its alert was committed
    run_began: float = 0.0  # when the collection that raised it began
    kind: str = ""
    early: list = field(default_factory=list)  # alerts before the surge: (kind, Unix time)


def _bench_latency(org: Org, stand_in, args) -> None:
    from django.conf import settings

    from listening import collection, detectors, services
    from listening.models import Alert, Hit, Source, Watch

    interval = args.interval
    surges = []
    for tag in _tags(args.surges):
        watch = services.watch_create(
            by=org.lead,
            team_id=org.team.pk,
            values={
                "name": f"#{tag}",
                "hashtags": [tag],
                "networks": [NETWORK],
                "window_minutes": args.window_minutes,
                "baseline_hours": args.baseline_hours,
                "min_volume": args.min_volume,
            },
        )
        # A watch that has listened since the start of the stand-in's history: its cursor just
        # before the first post, its listening_since at that post's minute.
        first = int(stand_in.first_ids[tag])
        since = datetime.fromtimestamp((first >> 16) / 1000, UTC).replace(second=0, microsecond=0)
        Watch.objects.filter(pk=watch.pk).update(listening_since=since)
        source = Source.objects.get(watch=watch)
        Source.objects.filter(pk=source.pk).update(cursor=str(first - 1))
        surges.append(Surge(watch_id=watch.pk, source_id=source.pk, tag=tag))
    by_watch = {surge.watch_id: surge for surge in surges}

    # The history read first, as the watches' earlier collections would have read it.
    began = time.perf_counter()
    for surge in surges:
        while True:
            run = collection.source_collect(source_id=surge.source_id)
            if run.error or run.skipped:
                raise RuntimeError(f"reading #{surge.tag}'s history: {run}")
            if run.pages < settings.CXHUB_LISTENING_PAGES_PER_RUN:
                break
    seeded = Hit.objects.filter(watch_id__in=list(by_watch)).count()
    seeding = time.perf_counter() - began
    for alert in Alert.objects.filter(watch_id__in=list(by_watch)):
        by_watch[alert.watch_id].early.append((alert.kind, alert.raised_at.timestamp()))

    # The surges, staggered from two intervals on; each watch's steady stream goes on.
    start = time.time()
    for number, surge in enumerate(surges):
        at = start + 2 * interval + number * SPACING * interval
        surge.at = stand_in.surge(
            surge.tag, at=at, posts=args.surge_posts, seconds=args.surge_seconds
        )
    deadline = max(surge.at for surge in surges) + args.surge_seconds + 3 * interval
    ticks, runs, errors = [], [], []
    last_alert = Alert.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    parts = Parts()
    with parts.installed():
        tick = 0
        while time.time() < deadline and not all(surge.raised for surge in surges):
            time.sleep(max(0.0, start + tick * interval - time.time()))
            tick += 1
            tick_began = time.time()
            for surge in surges:
                committed = len(parts.alert_commits)
                run_began = time.time()
                run = collection.source_collect(source_id=surge.source_id)
                runs.append(time.time() - run_began)
                if run.error or run.skipped:
                    errors.append(f"#{surge.tag}: {run.skipped or run.error}")
                if len(parts.alert_commits) == committed:
                    continue
                # The alerts this run raised, with the moments their transactions committed.
                raised = list(Alert.objects.filter(pk__gt=last_alert).order_by("pk"))
                last_alert = raised[-1].pk if raised else last_alert
                moments = parts.alert_commits[committed:]
                for alert, at in zip(raised, moments, strict=False):
                    if at < surge.at:
                        surge.early.append((alert.kind, at))
                    elif not surge.raised:
                        surge.raised, surge.run_began, surge.kind = at, run_began, alert.kind
            ticks.append(time.time() - tick_began)
    _report_latency(
        args,
        surges,
        ticks=ticks,
        runs=runs,
        errors=errors,
        seeded=seeded,
        seeding=seeding,
        needed=_spike_needs(args, detectors),
        parts=parts,
    )


def _spike_needs(args, detectors) -> tuple[int, int, int]:
    """What the spike test needs, worked out from its own function for the steady stream's
    rate: (posts in the window's last third, of them from the steady stream, its minutes)."""
    minutes = max(1, args.window_minutes // 3)
    baseline_minutes = args.history_minutes - args.window_minutes
    baseline = round(args.steady_per_minute * baseline_minutes)
    for observed in range(1, 100_000):
        if detectors.spike(
            observed=observed,
            baseline=baseline,
            baseline_minutes=baseline_minutes,
            window_minutes=minutes,
            min_volume=args.min_volume,
        ):
            return observed, round(args.steady_per_minute * minutes), minutes
    return 0, 0, minutes


def _percentile(values: list[float], percent: float) -> float:
    """Nearest rank: the smallest value with at least `percent` % of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def _report_latency(args, surges, *, ticks, runs, errors, seeded, seeding, needed, parts) -> None:
    from django.conf import settings

    interval = args.interval
    rate = args.surge_posts / args.surge_seconds
    shortest = settings.CXHUB_LISTENING_MIN_INTERVAL_SECONDS
    print(
        f"(b) {len(surges)} watches of one hashtag each on a stand-in Mastodon server on "
        f"127.0.0.1 (bench/servers.py's MastodonTagsStandIn, a process of its own), read through "
        f"one account by collection.source_collect, every {interval:g} s, source after source in "
        f"this one process: production's shortest interval, {shortest} s, scaled down "
        f"{shortest / interval:g} times (production also waits up to "
        f"{settings.CXHUB_LISTENING_MAX_INTERVAL_SECONDS} s after runs that found nothing, and "
        f"for its beat, every {settings.CXHUB_LISTENING_SECONDS} s)"
    )
    print(
        f"    the watches: window {args.window_minutes} min (and its last third, "
        f"{needed[2]} min), baseline up to {args.baseline_hours} h (here the "
        f"{args.history_minutes} min since listening_since, set back), minimum volume "
        f"{args.min_volume}; a steady stream of {args.steady_per_minute:g} posts a minute each "
        f"({seeded:,} posts of history read first in {seeding:.1f} s)"
    )
    print(
        f"    each surge: {args.surge_posts} angry posts about a scam over "
        f"{args.surge_seconds:g} s ({rate:g} a second; English and some French), on its own "
        f"watch, the surges {SPACING * interval:.2f} s apart; the spike test needs about "
        f"{needed[0]} posts in the last {needed[2]} min, some {needed[1]} of them steady: the "
        f"surge's post {needed[0] - needed[1]} comes "
        f"{(needed[0] - needed[1] - 1) / rate:.1f} s after its first"
    )
    done = [surge for surge in surges if surge.raised]
    early = [surge for surge in surges if surge.early]
    if early:
        print(
            f"    FALSE ALARMS before a surge: {sum(len(s.early) for s in early)} on "
            f"{len(early)} watches ({', '.join(k for s in early for k, _ in s.early)})"
        )
    if not done:
        print("    no surge raised an alert before the deadline")
    else:
        latency = [surge.raised - surge.at for surge in done]
        waited = [surge.run_began - surge.at for surge in done]
        ran = [surge.raised - surge.run_began for surge in done]
        p50, p99 = _percentile(latency, 50), _percentile(latency, 99)
        kinds: dict[str, int] = {}
        for surge in done:
            kinds[surge.kind] = kinds.get(surge.kind, 0) + 1
        print(
            f"    alert latency, from the surge's first post listed to its Alert committed: "
            f"p50 {p50:.2f} s, p99 {p99:.2f} s"
            + (f" (of {len(done)}: the largest)" if len(done) < 100 else "")
            + f" = {p50 / interval:.2f} and {p99 / interval:.2f} collection intervals"
        )
        print(
            f"      each, s: {', '.join(f'{value:.1f}' for value in sorted(latency))}; alerts: "
            + ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
        )
        print(
            f"      of which: to the start of the collection that raised it p50 "
            f"{_percentile(waited, 50):.2f} s, p99 {_percentile(waited, 99):.2f} s; that "
            f"collection, to the commit, p50 {1000 * _percentile(ran, 50):.0f} ms, p99 "
            f"{1000 * _percentile(ran, 99):.0f} ms"
        )
    missed = [surge for surge in surges if not surge.raised]
    if missed:
        print(
            f"    NO ALERT for {len(missed)} surge(s) by {args.surge_seconds:g} s + three "
            f"intervals after the last began: {', '.join('#' + s.tag for s in missed)}"
        )
    print(
        f"    collections: {len(ticks)} rounds of {len(surges)} sources; a source's run p50 "
        f"{1000 * _percentile(runs, 50):.0f} ms, p99 {1000 * _percentile(runs, 99):.0f} ms; a "
        f"round's longest {max(ticks):.2f} s"
        + (f"; {len(errors)} runs failed or skipped: {errors[:3]}" if errors else "")
    )
    count = len(runs)

    def each(name: str) -> float:
        return 1000 * parts.get(name) / count

    store = each("store")
    signals = each("language") + each("sentiment")
    print(
        f"    a run, on average (timers): the network call {each('search'):.1f} ms (HTTP "
        f"{each('http'):.1f}), posts_store {store:.1f} ms (language and sentiment "
        f"{signals:.1f}, the rules {each('rules'):.1f}, measures.add {each('figures'):.1f}), "
        f"the detectors (alerts.evaluate) {each('evaluate'):.1f} ms (its statements "
        f"{each('db in evaluate'):.1f}), the rest (the source loaded, the reading account, rate "
        f"limits, the source's next turn) "
        f"{1000 * sum(runs) / count - each('search') - store - each('evaluate'):.1f} ms"
    )


if __name__ == "__main__":
    sys.exit(main())
