"""Benchmark of the inbox (issue 17): how fast one worker reads what comes back, against a bare
insert of the same rows in the same run; and the inbox's queries at 100 and 100,000 items.

(a) Ingestion: --accounts Mastodon accounts on a stand-in Mastodon server on 127.0.0.1
    (bench/servers.py's MastodonStandIn, in a process of its own: why not the tests' server is
    said there), each with its share of --items new mentions waiting after its cursor, are read
    by inbox.ingestion.account_ingest in this one process, account after account, run after run
    until each is read to the end: the work of one worker process (its network calls, the
    signals, items_store with its audit events; not Celery's own cost per task, which
    bench/dispatch.py measures). Against it, the baseline: the very rows it stored, bulk_create'd
    into the emptied table in transactions of one page each (CXHUB_INBOX_PAGE_SIZE). Printed:
    items/s and rows/s, their ratio (the issue's goal: at least 0.5), the CPU per item (this
    process, its PostgreSQL backend, the stand-in) and the ratio of the CPU, and where
    ingestion's time goes, measured by timers around the parts (the network calls; reading their
    answers; language and sentiment; the database's statements, by kind, and commits; the rest
    of items_store and account_ingest). --profile adds a cProfile of one more ingestion.
(b) Queries: GET /api/v1/inbox/ (and the inbox page /inbox/, once that URL exists) as a lead of
    the team above every account, counted with CaptureQueriesContext at 100 items and at
    100,000 (made by bulk_create in batches), and whether the counts are equal.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/ingest.py \\
        [--accounts 20] [--items 2000,20000] [--rounds 1] [--delay-ms 0] [--profile]

Each account's cursor is set where a previous run would have left it, just before its waiting
items (a first run, with no cursor, reads only the newest page: the channel never back-fills).
The server in DATABASE_URL is used only for a scratch database, cxhub_bench_ingest, created at
the start and dropped at the end. Nothing else should run against that PostgreSQL server
meanwhile: the figures are a ratio of two runs on it.
"""

import argparse
import contextlib
import cProfile
import io
import logging
import os
import pstats
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field

try:
    from bench import servers
except ImportError:  # run as a script: bench/ itself is first on sys.path
    import servers

SCRATCH_DB = "cxhub_bench_ingest"
REGIONS = 4
# The goal: ingestion at least half as fast as the bare insert of the same rows.
RATIO_GOAL = 0.5
QUERY_SIZES = (100, 100_000)
QUERY_BATCH = 10_000


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        with (
            servers.scratch_database(
                os.environ.get("DATABASE_URL", ""),
                SCRATCH_DB,
                why="the bare insert it compares with is PostgreSQL's",
            ) as scratch_url,
            tempfile.TemporaryDirectory(prefix="cxhub-bench-ingest-") as var_dir,
        ):
            # Started before Django connects: the stand-in is a fork of this process.
            stand_in = servers.MastodonStandIn(
                accounts=args.accounts,
                per_account=max(args.items) // args.accounts,
                delay_ms=args.delay_ms,
            ).start()
            try:
                return _run(args, scratch_url, var_dir, stand_in)
            finally:
                stand_in.stop()
    except servers.Refused as refused:
        print(f"bench/ingest.py: {refused}", file=sys.stderr)
        return 2


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=20, help="Mastodon accounts (20)")
    parser.add_argument(
        "--items",
        default="2000,20000",
        help="items waiting in all, shared by the accounts; several sizes comma-separated "
        "(2000,20000)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="runs of each, alternated (1)")
    parser.add_argument(
        "--delay-ms", type=int, default=0, help="how long the stand-in takes to answer (0)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile one more ingestion of the first size"
    )
    parser.add_argument(
        "--no-queries", action="store_true", help="skip (b), the inbox's query counts"
    )
    args = parser.parse_args(argv)
    try:
        args.items = [int(size) for size in args.items.split(",")]
    except ValueError:
        parser.error("--items is a list of numbers: 2000,20000")
    if min(args.accounts, args.rounds) < 1 or args.delay_ms < 0:
        parser.error("--accounts and --rounds must be at least 1, --delay-ms at least 0")
    if min(args.items) < args.accounts:
        parser.error("each --items size must be at least --accounts (one item an account)")
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
    try:
        began = time.perf_counter()
        org = _organisation(stand_in)
        print(
            f"{args.accounts} Mastodon accounts on a stand-in server on 127.0.0.1 "
            f"(bench/servers.py, a process of its own"
            + (f", answering in {args.delay_ms} ms" if args.delay_ms else "")
            + f"); pages of {settings.CXHUB_INBOX_PAGE_SIZE}, "
            f"{settings.CXHUB_INBOX_PAGES_PER_RUN} a run; one worker process; PostgreSQL scratch "
            f"database {SCRATCH_DB}; {os.cpu_count()} CPU(s)"
        )
        _warm_up(org)
        for size in args.items:
            _bench_size(org, stand_in, size=size, rounds=args.rounds)
        if args.profile:
            _profile(org, stand_in, size=args.items[0])
        if not args.no_queries:
            _bench_queries(org)
        print(f"bench took {time.perf_counter() - began:.0f} s")
    finally:
        connections.close_all()
    return 0


# The organisation ----------------------------------------------------------------------------


@dataclass
class Org:
    lead: object
    author: object
    accounts: list  # SocialAccount, in the stand-in's order
    notification_ids: dict[int, list[str]]  # account pk → the stand-in's ids, oldest first
    targets: list[int] = field(default_factory=list)


def _organisation(stand_in) -> Org:
    """HQ with REGIONS regions, the accounts spread over them (HQ's lead sees every one); each
    account's published posts are the stand-in's "our" statuses, so the replies to them are
    linked to our targets as in production."""
    from django.db import transaction

    from accounts.models import Membership, Role, Team, User
    from inbox import ingestion
    from inbox.models import IngestState
    from networks.models import Channel, SocialAccount
    from publishing.models import Post, PostStatus, PostTarget, TargetStatus

    hq = Team.objects.add_root(create_kwargs={"name": "HQ", "slug": "hq"})
    regions = [
        Team.objects.add_child(hq, create_kwargs={"name": f"Region {n}", "slug": f"region-{n}"})
        for n in range(REGIONS)
    ]
    lead = User.objects.create(username="lead")
    author = User.objects.create(username="author")
    Membership.objects.create(user=lead, team=hq, role=Role.LEAD)
    Membership.objects.create(user=author, team=hq, role=Role.DRAFTER)
    accounts, ids, targets = [], {}, []
    with transaction.atomic():
        for number, served in enumerate(stand_in.accounts):
            account = SocialAccount(
                team=regions[number % REGIONS],
                channel=Channel.MASTODON,
                handle=f"@{served['username']}",
                base_url=stand_in.url,
                external_id=served["id"],
            )
            account.set_tokens(access_token=served["token"])
            account.save()
            accounts.append(account)
            ids[account.pk] = served["notification_ids"]
            for status_id in served["our_statuses"]:
                post = Post.objects.create(
                    team=account.team,
                    author=author,
                    body=f"Our post {status_id}",
                    status=PostStatus.PUBLISHED,
                )
                target = PostTarget.objects.create(
                    post=post,
                    social_account=account,
                    status=TargetStatus.PUBLISHED,
                    external_id=status_id,
                )
                targets.append(target.pk)
    # The dispatcher gives each account its ingestion state.
    ingestion.claim_due()
    assert IngestState.objects.filter(account__in=accounts).count() == len(accounts)
    return Org(lead=lead, author=author, accounts=accounts, notification_ids=ids, targets=targets)


def _warm_up(org: Org) -> None:
    """What a worker has done before its first run: the language model and VADER built, the
    HTTP session's connection to the server open (one empty read per account, from its newest
    notification), the database connection made."""
    from inbox import analysis
    from networks.channels import get_channel

    analysis.score_sentiment("Thank you, this is great", analysis.detect_language("Thank you"))
    channel = get_channel("mastodon")
    for account in org.accounts:
        page = channel.fetch_inbound(account, org.notification_ids[account.pk][-1])
        assert not page.items, "the stand-in answered items after the newest"


def _reset(org: Org, per_account: int) -> None:
    """An empty inbox, and each account's cursor just before its last `per_account` items."""
    from django.utils import timezone

    from inbox.models import IngestState

    _truncate()
    for account in org.accounts:
        ids = org.notification_ids[account.pk]
        start = ids[-per_account - 1] if per_account < len(ids) else str(int(ids[0]) - 1)
        IngestState.objects.filter(account=account).update(
            cursor=start, next_at=timezone.now(), last_error="", failures=0
        )


def _truncate() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE inbox_inbounditem CASCADE")


# (a) Ingestion against the bare insert -------------------------------------------------------


class Parts:
    """Timers around the parts of a run (inclusive seconds, and calls), installed by wrapping
    the functions that do each part where their callers find them; and the database's
    statements (an execute wrapper) and commits (the connection's commit)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.in_store = False
        # Statement time by kind ("INSERT inbox_inbounditem"): seconds, and how many.
        self.statements: dict[str, list] = {}

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.calls[name] = self.calls.get(name, 0) + 1

    def timed(self, name: str, function, *, store: bool = False):
        parts = self

        def wrapper(*args, **kwargs):
            if store:
                parts.in_store = True
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                parts.add(name, time.perf_counter() - began)
                if store:
                    parts.in_store = False

        return wrapper

    def _statement(self, execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent = time.perf_counter() - began
            self.add("db statements", spent)
            if self.in_store:
                self.add("db in store", spent)
            kind = self.statements.setdefault(_statement_kind(sql), [0.0, 0])
            kind[0] += spent
            kind[1] += 1

    @contextlib.contextmanager
    def installed(self):
        from django.db import connections

        from inbox import analysis, ingestion, services
        from networks.channels import mastodon

        connection = connections["default"]
        patches = [
            (mastodon, "request", self.timed("http", mastodon.request)),
            (
                mastodon.MastodonChannel,
                "fetch_inbound",
                self.timed("fetch", mastodon.MastodonChannel.fetch_inbound),
            ),
            (ingestion, "items_store", self.timed("store", ingestion.items_store, store=True)),
            (analysis, "detect_language", self.timed("language", analysis.detect_language)),
            (analysis, "score_sentiment", self.timed("sentiment", analysis.score_sentiment)),
            (services, "record", self.timed("audit event", services.record)),
        ]
        real_commit = connection.commit

        def commit():
            began = time.perf_counter()
            try:
                return real_commit()
            finally:
                spent = time.perf_counter() - began
                self.add("db commits", spent)
                if self.in_store:
                    self.add("db in store", spent)

        saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
        for owner, name, wrapper in patches:
            setattr(owner, name, wrapper)
        connection.commit = commit  # an instance attribute: what Atomic.__exit__ calls
        try:
            with connection.execute_wrapper(self._statement):
                yield self
        finally:
            del connection.commit
            for owner, name, original in saved:
                setattr(owner, name, original)

    def get(self, name: str) -> float:
        return self.seconds.get(name, 0.0)


_TABLE = re.compile(r'\b(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', re.IGNORECASE)


def _statement_kind(sql: str) -> str:
    """The statement's verb and its first table: "INSERT inbox_inbounditem"."""
    table = _TABLE.search(sql)
    return f"{sql.split(None, 1)[0].upper()} {table.group(1) if table else ''}".strip()


@dataclass
class Measured:
    items: int
    seconds: float
    cpu: float  # this process
    backend_cpu: float  # its PostgreSQL backend
    server_cpu: float = 0.0  # the stand-in
    runs: int = 0
    pages: int = 0
    parts: Parts | None = None

    @property
    def rate(self) -> float:
        return self.items / self.seconds


def _backend_cpu_seconds() -> float:
    """CPU time of this connection's PostgreSQL backend (same machine: /proc/<pid>/schedstat,
    nanoseconds); 0.0 where it cannot be read."""
    from django.db import connection

    try:
        connection.ensure_connection()
        with open(f"/proc/{connection.connection.info.backend_pid}/schedstat") as schedstat:
            return int(schedstat.read().split()[0]) / 1e9
    except (OSError, ValueError, AttributeError):
        return 0.0


def _ingest(org: Org, stand_in, *, expected: int) -> Measured:
    """Every account read to the end, one run after another as the worker would take them."""
    from django.conf import settings

    from inbox import ingestion
    from inbox.models import InboundItem

    parts = Parts()
    runs = pages = added = 0
    with parts.installed():
        backend, server = _backend_cpu_seconds(), stand_in.cpu_seconds()
        began, cpu = time.perf_counter(), time.process_time()
        for account in org.accounts:
            while True:
                run = ingestion.account_ingest(account_id=account.pk)
                if run.error or run.skipped:
                    raise RuntimeError(
                        f"account {account.pk}: run {run} (the stand-in allows "
                        f"{servers.RATE_LIMIT_CALLS} calls in 5 minutes per account: fewer "
                        "items per account, or more accounts)"
                    )
                runs, pages, added = runs + 1, pages + run.pages, added + run.added
                if run.pages < settings.CXHUB_INBOX_PAGES_PER_RUN:
                    break
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
        backend = _backend_cpu_seconds() - backend
        server = stand_in.cpu_seconds() - server
    stored = InboundItem.objects.count()
    if added != expected or stored != expected:
        raise RuntimeError(f"ingestion added {added} and stored {stored}, not {expected}")
    return Measured(
        items=added,
        seconds=seconds,
        cpu=cpu,
        backend_cpu=backend,
        server_cpu=server,
        runs=runs,
        pages=pages,
        parts=parts,
    )


def _stored_rows() -> list:
    """The rows ingestion stored, as new unsaved rows with every value but the id."""
    from inbox.models import InboundItem

    names = [f.attname for f in InboundItem._meta.concrete_fields if not f.primary_key]
    return [InboundItem(**values) for values in InboundItem.objects.order_by("id").values(*names)]


def _bare_insert(rows: list, page_size: int) -> Measured:
    """The baseline: the rows bulk_create'd, a transaction per page."""
    from django.db import transaction

    from inbox.models import InboundItem

    for row in rows:
        row.pk, row._state.adding = None, True
    parts = Parts()
    with parts.installed():
        backend = _backend_cpu_seconds()
        began, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(rows), page_size):
            with transaction.atomic():
                InboundItem.objects.bulk_create(rows[start : start + page_size])
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
        backend = _backend_cpu_seconds() - backend
    assert InboundItem.objects.count() == len(rows)
    return Measured(items=len(rows), seconds=seconds, cpu=cpu, backend_cpu=backend, parts=parts)


def _bench_size(org: Org, stand_in, *, size: int, rounds: int) -> None:
    from django.conf import settings

    per_account = size // len(org.accounts)
    total = per_account * len(org.accounts)
    page_size = settings.CXHUB_INBOX_PAGE_SIZE
    print(f"(a) {total:,} items waiting, {per_account:,} on each account")
    pairs, rows = [], None
    for number in range(rounds):
        # Alternated after the first round (which needs ingestion's rows first), so a drift in
        # the machine's load weighs on both.
        order = ("ours", "bare") if number % 2 == 0 else ("bare", "ours")
        pair = {}
        for which in order:
            _reset(org, per_account)
            if which == "ours":
                pair["ours"] = _ingest(org, stand_in, expected=total)
                if rows is None:
                    rows = _stored_rows()
            else:
                pair["bare"] = _bare_insert(rows, page_size)
        pairs.append((pair["ours"], pair["bare"]))
    _report_size(pairs, page_size=page_size)


def _report_size(pairs: list, *, page_size: int) -> None:
    ratios = sorted(ours.rate / bare.rate for ours, bare in pairs)
    # The round whose ratio is the median is the one described.
    ours, bare = sorted(pairs, key=lambda pair: pair[0].rate / pair[1].rate)[len(pairs) // 2]
    ratio = ours.rate / bare.rate
    each = f" (rounds: {', '.join(f'{r:.2f}' for r in ratios)})" if len(pairs) > 1 else ""
    print(
        f"    ingestion     {ours.items:,} items in {ours.seconds:.2f} s = {ours.rate:,.0f} "
        f"items/s ({ours.runs} runs, {ours.pages} pages, "
        f"{ours.parts.calls.get('db statements', 0)} statements, "
        f"{ours.parts.calls.get('db commits', 0)} commits)"
    )
    print(
        f"    bare insert   {bare.items:,} rows in {bare.seconds:.2f} s = {bare.rate:,.0f} rows/s "
        f"(bulk_create, {page_size} rows a transaction)"
    )
    verdict = "met" if ratio >= RATIO_GOAL else "missed"
    print(f"    ratio         {ratio:.2f}{each}; goal at least {RATIO_GOAL} ({verdict})")
    n, m = ours.items, bare.items
    print(
        f"    CPU per item  ingestion {1000 * ours.cpu / n:.2f} ms in the worker + "
        f"{1000 * ours.backend_cpu / n:.2f} ms in its PostgreSQL backend "
        f"(+ {1000 * ours.server_cpu / n:.2f} ms in the stand-in); bare insert "
        f"{1000 * bare.cpu / m:.2f} + {1000 * bare.backend_cpu / m:.2f} ms"
    )
    cpu_ratio = (bare.cpu + bare.backend_cpu) / m / ((ours.cpu + ours.backend_cpu) / n)
    print(
        f"    CPU ratio     {cpu_ratio:.2f} (the bare insert's CPU per row, worker + backend, over "
        "ingestion's per item: less moved than the seconds by other work on the machine)"
    )
    _report_parts(ours, bare)


def _report_parts(ours: Measured, bare: Measured) -> None:
    """Where ingestion's wall time went, in ms per item and as a share, from the timers; the
    parts add up to the whole."""
    parts, total = ours.parts, ours.seconds
    database = parts.get("db statements") + parts.get("db commits")
    in_store = parts.get("db in store")
    analysis = parts.get("language") + parts.get("sentiment")
    rows = [
        ("network calls (HTTP to the stand-in and back)", parts.get("http")),
        ("fetch_inbound's own (JSON, HTML to text, token)", parts.get("fetch") - parts.get("http")),
        ("analysis (language + sentiment)", analysis),
        ("database: statements", parts.get("db statements")),
        ("database: commits", parts.get("db commits")),
        ("items_store's own Python (rows, ORM)", parts.get("store") - analysis - in_store),
        (
            "account_ingest's own Python (state, rate limits)",
            total - parts.get("fetch") - parts.get("store") - (database - in_store),
        ),
    ]
    print("    where ingestion's time goes (timers; ms per item, share of the wall time):")
    for label, seconds in rows:
        print(f"      {label:<50} {1000 * seconds / ours.items:6.3f} ms  {seconds / total:4.0%}")
    language, sentiment = parts.get("language"), parts.get("sentiment")
    print(
        f"      (analysis: language {1000 * language / ours.items:.3f} ms, sentiment "
        f"{1000 * sentiment / ours.items:.3f} ms; database: "
        f"{parts.calls.get('db statements', 0) / ours.pages:.1f} statements and "
        f"{parts.calls.get('db commits', 0) / ours.pages:.1f} commits a page, "
        f"{1000 * in_store / ours.items:.3f} ms of it in items_store, the audit event "
        f"{1000 * parts.get('audit event') / ours.items:.3f} ms)"
    )
    statements, commits = bare.parts.get("db statements"), bare.parts.get("db commits")
    by_kind = sorted(parts.statements.items(), key=lambda kind: -kind[1][0])
    print(
        "      database statements by kind, ms per item (count): "
        + ", ".join(
            f"{kind} {1000 * seconds / ours.items:.3f} ({count})"
            for kind, (seconds, count) in by_kind
        )
    )
    print(
        f"      bare insert, for comparison, per row: database statements "
        f"{1000 * statements / bare.items:.3f} ms, commits {1000 * commits / bare.items:.3f} ms, "
        f"the rest (bulk_create's Python) "
        f"{1000 * (bare.seconds - statements - commits) / bare.items:.3f} ms"
    )


def _profile(org: Org, stand_in, *, size: int) -> None:
    """One more ingestion of `size` items under cProfile: the functions that took the most time
    of their own, and the cumulative time of the parts' entry points."""
    per_account = size // len(org.accounts)
    _reset(org, per_account)
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        _ingest(org, stand_in, expected=per_account * len(org.accounts))
    finally:
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    # The project's own functions (not the bench's wrappers), by the time spent in them and
    # in what they call.
    stats.sort_stats("cumulative").print_stats(r"/(inbox|networks|audit)/", 30)
    print(f"(a) cProfile of one more ingestion of {per_account * len(org.accounts):,} items")
    print(out.getvalue())


# (b) The inbox's queries at 100 and 100,000 items --------------------------------------------


def _bench_queries(org: Org) -> None:
    from django.db import connection
    from django.urls import Resolver404, resolve

    from inbox.models import InboundItem

    paths = ["/api/v1/inbox/"]
    try:
        resolve("/inbox/")
        paths.append("/inbox/")
    except Resolver404:
        pass
    _truncate()
    counts: dict[str, list[int]] = {path: [] for path in paths}
    made = 0
    for size in QUERY_SIZES:
        began = time.perf_counter()
        while made < size:
            batch = min(QUERY_BATCH, size - made)
            InboundItem.objects.bulk_create(_query_items(org, start=made, count=batch))
            made += batch
        with connection.cursor() as cursor:  # the planner's statistics for this size
            cursor.execute("VACUUM ANALYZE inbox_inbounditem")
        making = time.perf_counter() - began
        for path in paths:
            queries, shown = _count_queries(org, path)
            counts[path].append(queries)
            print(
                f"(b) GET {path} at {size:,} items (made in {making:.1f} s): {queries} queries, "
                f"{shown} items on the page"
            )
    if "/inbox/" not in paths:
        print("    the inbox page /inbox/ does not exist yet: not measured")
    for path, found in counts.items():
        same = "equal" if len(set(found)) == 1 else "NOT equal"
        print(
            f"    {path}: {' and '.join(map(str, found))} queries at "
            f"{' and '.join(f'{s:,}' for s in QUERY_SIZES)} items: {same}"
        )


def _query_items(org: Org, *, start: int, count: int) -> list:
    """`count` items over the accounts, the kinds, statuses and sentiments mixed; one in four
    answers one of our posts, one in three is assigned: every relation the list shows."""
    from datetime import UTC, datetime, timedelta

    from inbox.models import InboundItem, ItemKind, ItemStatus, Sentiment

    first = datetime(2026, 3, 1, tzinfo=UTC)
    statuses = [ItemStatus.OPEN, ItemStatus.OPEN, ItemStatus.WAITING, ItemStatus.CLOSED]
    sentiments = [Sentiment.POSITIVE, Sentiment.NEUTRAL, Sentiment.NEGATIVE, Sentiment.NOT_SCORED]
    items = []
    for n in range(start, start + count):
        account = org.accounts[n % len(org.accounts)]
        posted = first + timedelta(seconds=n)
        status = statuses[n % len(statuses)]
        items.append(
            InboundItem(
                account=account,
                network_id=f"q{n}",
                kind=ItemKind.values[n % len(ItemKind.values)],
                author_handle=f"resident_{n % 500}@mastodon.social",
                author_name=f"Resident {n % 500}",
                author_id=str(n % 500),
                text=f"Question number {n} about the bins on Elm Street.",
                url=f"https://mastodon.social/@resident_{n % 500}/{n}",
                posted_at=posted,
                thread_id=str(n),
                language="en",
                sentiment=sentiments[n % len(sentiments)],
                sentiment_score=None if n % 4 == 3 else 0.5,
                raw={"id": str(n)},
                status=status,
                closed_at=posted + timedelta(hours=1) if status == ItemStatus.CLOSED else None,
                target_id=org.targets[n % len(org.targets)] if n % 4 == 0 else None,
                assignee=org.author if n % 3 == 0 else None,
            )
        )
    return items


def _count_queries(org: Org, path: str) -> tuple[int, int | str]:
    """Queries of one GET of `path` by HQ's lead (signed in; after one GET to warm up), and how
    many items its page showed (the API's results; "-" for a page)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="localhost")
    client.force_login(org.lead)
    requests_log = logging.getLogger("cxhub.request")
    level = requests_log.level
    requests_log.setLevel(logging.WARNING)  # it logs a line a request
    try:
        client.get(path)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path)
    finally:
        requests_log.setLevel(level)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} answered {response.status_code}")
    shown = len(response.json()["results"]) if path.startswith("/api/") else "-"
    return len(captured.captured_queries), shown


if __name__ == "__main__":
    sys.exit(main())
