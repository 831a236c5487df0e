"""Benchmark of the API under load (issue 15, item 5): requests a second and p50/p95/p99 latency
of the posts list, the inbox and the audit list at 16 and 64 concurrent clients (wrk), each
beside a bare DRF list view of the same page size (bench/bare_api.py) served by the same
gunicorn (cxhub/gunicorn_conf.py, WEB_CONCURRENCY=4, DEBUG off) in the same run, on PostgreSQL
with 100,000 posts; and the ratios against the bare view. The goal: each of ours within 1.5×
the bare view's p95, with at least two thirds of its requests a second.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/api.py [--seconds S]

"The inbox" is the approvals inbox (/api/v1/approvals/inbox/): the social inbox of issue 17
does not exist yet. Each of our runs follows a run of the bare view at the same number of
clients, so that a machine whose load drifts weighs on both of a pair alike. wrk runs on the
same machine as the server: on a machine with few CPUs it takes some of what the server could
use, from both views alike. Workers are not recycled during the run by default
(--max-requests 0): the production setting, CXHUB_WEB_MAX_REQUESTS=1000, restarts workers that
share the load evenly at nearly the same time, and each takes seconds to load Django again,
whichever view it was serving. The server in DATABASE_URL is used only for a scratch database,
cxhub_bench_api, created at the start and dropped at the end; wrk comes from `make bench-deps`.
"""

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

try:
    from bench import rows, servers
except ImportError:  # run as a script: bench/ itself is first on sys.path
    import rows
    import servers

SCRATCH_DB = "cxhub_bench_api"
BARE_PATH = "/bench/bare/posts/"  # bench/bare_api.py's PATH, known before Django is set up
ENDPOINTS = [
    ("posts list", "/api/v1/posts/"),
    ("approvals inbox", "/api/v1/approvals/inbox/"),
    ("audit list", "/api/v1/audit/events/"),
]
PAGE_SIZE = 50  # REST_FRAMEWORK["PAGE_SIZE"], checked in _check_in_process
# The goal of issue 15, item 5: p95 within 1.5× the bare view's, requests a second at least
# two thirds of its.
P95_RATIO_GOAL = 1.5
RATE_RATIO_GOAL = 2 / 3
# What the issue measured before: Django's runserver as `make run` started it.
RUNSERVER_FIGURE = (
    "runserver (DEBUG on, as `make run` started it) answered 9–10 requests a second on "
    "/api/v1/posts/ (50 posts a page) at 16 concurrent clients, with p99 4.5 s"
)
# wrk's own summary has no p95: its done() hook prints one line that _wrk parses (µs).
WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("cxhub-bench %d %d %.0f %.0f %.0f %d %d\\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass
class Run:
    requests: int
    seconds: float
    p50: float
    p95: float
    p99: float
    errors: int  # connections that failed or timed out, and answers other than 2xx/3xx

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


@dataclass
class Pair:
    name: str
    path: str
    clients: int
    ours: Run
    bare: Run

    @property
    def p95_ratio(self) -> float:
        return self.ours.p95 / self.bare.p95 if self.bare.p95 else float("nan")

    @property
    def rate_ratio(self) -> float:
        return self.ours.rate / self.bare.rate if self.bare.rate else float("nan")

    @property
    def met(self) -> bool:
        return self.p95_ratio <= P95_RATIO_GOAL and self.rate_ratio >= RATE_RATIO_GOAL


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        if shutil.which("wrk") is None:
            raise servers.Refused(
                "it needs wrk, the HTTP load generator: `make bench-deps` installs it (Debian's "
                "package wrk)."
            )
        with (
            servers.scratch_database(
                os.environ.get("DATABASE_URL", ""),
                SCRATCH_DB,
                why="four server processes share the database",
            ) as scratch_url,
            tempfile.TemporaryDirectory(prefix="cxhub-bench-api-") as var_dir,
        ):
            return _run(args, scratch_url, var_dir)
    except servers.Refused as refused:
        print(f"bench/api.py: {refused}", file=sys.stderr)
        return 2


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="per wrk run (10)")
    parser.add_argument("--warm-up", type=int, default=3, help="per path, before (3)")
    parser.add_argument("--clients", default="16,64", help="concurrent connections (16,64)")
    parser.add_argument("--workers", type=int, default=4, help="WEB_CONCURRENCY (4)")
    parser.add_argument("--threads", type=int, default=1, help="CXHUB_WEB_THREADS (1)")
    parser.add_argument(
        "--max-requests",
        type=int,
        default=0,
        help="CXHUB_WEB_MAX_REQUESTS (0: workers are not recycled mid-run, see the docstring)",
    )
    parser.add_argument("--posts", type=int, default=100_000, help="posts (100,000)")
    parser.add_argument("--inbox", type=int, default=1_000, help="of them waiting (1,000)")
    parser.add_argument("--events", type=int, default=150_000, help="audit events (150,000)")
    parser.add_argument("--server-log", help="a file for gunicorn's output (a temporary one)")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile one request of each in-process too"
    )
    args = parser.parse_args(argv)
    args.clients = [int(c) for c in args.clients.split(",")]
    if min(args.seconds, args.warm_up, args.workers, args.threads, *args.clients) < 1:
        parser.error("--seconds, --warm-up, --workers, --threads, --clients must be at least 1")
    if args.inbox < PAGE_SIZE or args.posts < args.inbox + PAGE_SIZE:
        parser.error(f"--inbox at least {PAGE_SIZE}, --posts at least {PAGE_SIZE} more than it")
    if args.events < 2 * PAGE_SIZE:
        parser.error(f"--events at least {2 * PAGE_SIZE}")
    return args


def _run(args, scratch_url: str, var_dir: str) -> int:
    os.environ.update(servers.SERVER_ENV)
    os.environ.update(
        {
            "DATABASE_URL": scratch_url,
            "DEBUG": "0",  # DEBUG would keep every query in memory
            "DJANGO_SETTINGS_MODULE": "bench.bare_settings",
            "CXHUB_VAR_DIR": var_dir,
        }
    )
    sys.path.insert(0, str(servers.ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    began = time.perf_counter()
    token = _organisation(posts=args.posts, inbox=args.inbox, events=args.events)
    print(
        f"PostgreSQL scratch database {SCRATCH_DB}: {args.posts} posts (two targets each), "
        f"{args.inbox} of them waiting for the reader's approval, {args.events} audit events, "
        f"made in {time.perf_counter() - began:.0f} s; {os.cpu_count()} CPU(s)"
    )
    print(
        f"gunicorn (cxhub/gunicorn_conf.py) WEB_CONCURRENCY={args.workers} "
        f"CXHUB_WEB_THREADS={args.threads} CXHUB_WEB_MAX_REQUESTS={args.max_requests}, DEBUG "
        f"off; wrk, {args.seconds} s a run, by API "
        f"token; pages of {PAGE_SIZE}. The inbox is the approvals inbox (issue 17's social "
        "inbox does not exist yet)."
    )
    _check_in_process(token, profile=args.profile)
    from django.db import connections

    connections.close_all()
    pairs = _bench(args, token)
    _report(pairs)
    return 0


# The data ------------------------------------------------------------------------------------


def _organisation(*, posts: int, inbox: int, events: int) -> str:
    """HQ with North and South. An author drafts for North; the reader approves for North and
    leads it (so may read its audit trail) and holds the token. A draft and a submitted post
    are made through the services; then copied in SQL to `posts` in all, `inbox` of them
    submitted with their request waiting on the reader; and `events` audit events, two in
    three of North. Returns the reader's token."""
    from django.db import transaction

    from accounts.models import Membership, Role, Team, User
    from accounts.tokens import api_token_create
    from approvals.models import ApprovalPolicy, ApprovalRequest, ApprovalStage, ApprovalStep
    from audit.models import AuditEvent
    from networks.models import Channel, SocialAccount
    from publishing import services
    from publishing.models import Post, PostTarget

    hq = Team.objects.add_root(create_kwargs={"name": "HQ", "slug": "hq"})
    north = Team.objects.add_child(hq, create_kwargs={"name": "North", "slug": "north"})
    south = Team.objects.add_child(hq, create_kwargs={"name": "South", "slug": "south"})
    author = User.objects.create(username="author")
    reader = User.objects.create(username="reader")
    Membership.objects.create(user=author, team=north, role=Role.DRAFTER)
    Membership.objects.create(user=reader, team=north, role=Role.APPROVER)
    Membership.objects.create(user=reader, team=north, role=Role.LEAD)
    policy = ApprovalPolicy.objects.create(name="North", team=north)
    ApprovalStage.objects.create(
        policy=policy, order=1, name="Comms", decider_team=north, decider_role=Role.APPROVER
    )
    targets = []
    for n in range(2):
        account = SocialAccount(
            team=north, channel=Channel.WEBHOOK, handle=f"north{n}", base_url="https://example.org/"
        )
        account.set_tokens(access_token="not-used")
        account.save()
        targets.append(services.TargetInput(social_account_id=account.pk))
    body = "The ferry timetable changes on Monday: see the new times on our site."
    draft, waiting = (
        services.post_create(by=author, team_id=north.pk, body=body, targets=targets, tags=["b"])
        for _ in range(2)
    )
    services.post_submit(post=waiting, by=author)
    request = ApprovalRequest.objects.get(post=waiting)
    step = request.steps.get()
    assert list(step.eligible.all()) == [reader], step.eligible.all()

    with transaction.atomic():
        copies = {}
        for template, count in ((draft, posts - inbox - 1), (waiting, inbox - 1)):
            numbered = "'Bench post ' || n || ': ' || t.body"
            copies[template] = rows.copy_row(Post, template.pk, count=count, body=numbered)
            for target in template.targets.all():
                rows.copy_row(
                    PostTarget,
                    target.pk,
                    parents=copies[template],
                    post_id="parent",
                    idempotency_key="gen_random_uuid()",
                )
        requests = rows.copy_row(
            ApprovalRequest, request.pk, parents=copies[waiting], post_id="parent"
        )
        earlier = "t.{} - n * interval '1 minute'"
        steps = rows.copy_row(
            ApprovalStep,
            step.pk,
            parents=requests,
            request_id="parent",
            activated_at=earlier.format("activated_at"),
            due_at=earlier.format("due_at"),
        )
        eligible = ApprovalStep.eligible.through.objects.get(approvalstep=step)
        rows.copy_row(
            ApprovalStep.eligible.through, eligible.pk, parents=steps, approvalstep_id="parent"
        )
    after = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    people = [(author.pk, author.username), (reader.pk, reader.username)]
    rows.copy_events(
        rows.event_rows(
            count=events, after_seq=after, teams=[north.pk, north.pk, south.pk], actors=people
        )
    )
    for model in (Post, PostTarget, ApprovalRequest, ApprovalStep, ApprovalStep.eligible.through):
        rows.analyse(model._meta.db_table)
    return api_token_create(user=reader, name="bench", by=reader).secret


# In the process ----------------------------------------------------------------------------------


def _check_in_process(token: str, *, profile: bool) -> None:
    """Each path answers a full page to the reader; its queries and its median time through
    Django's test Client, here; with `profile`, where one request's time goes."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    assert settings.REST_FRAMEWORK["PAGE_SIZE"] == PAGE_SIZE, settings.REST_FRAMEWORK
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1")
    print(
        "in-process (Django test Client), medians of 30 requests: wall time, CPU time of this "
        "process, time in SQL (as Django's debug cursor times it)"
    )
    for name, path in [*ENDPOINTS, ("bare DRF list", BARE_PATH)]:
        times, cpu, sql = [], [], []
        for _ in range(35):
            with CaptureQueriesContext(connection) as queries:
                began, cpu_began = time.perf_counter(), time.process_time()
                response = client.get(path)
                times.append(time.perf_counter() - began)
                cpu.append(time.process_time() - cpu_began)
            sql.append(sum(float(query["time"]) for query in queries.captured_queries))
            assert response.status_code == 200, (path, response.content[:300])
            assert len(response.json()["results"]) == PAGE_SIZE, path
        print(
            f"  {name:16} {path:28} {len(queries):2d} queries  "
            f"{statistics.median(times[5:]) * 1000:6.1f} ms, CPU "
            f"{statistics.median(cpu[5:]) * 1000:5.1f} ms, "
            f"SQL {statistics.median(sql[5:]) * 1000:5.1f} ms"
        )
        if profile:
            _profile(client, path)


def _profile(client, path: str) -> None:
    """The functions taking most CPU time of this process (CPU, not wall time: on a busy
    machine, wall time puts a wait for a turn on whichever function was running)."""
    profiler = cProfile.Profile(time.process_time)
    for _ in range(20):
        profiler.runcall(client.get, path)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
    print("\n".join("    " + line for line in out.getvalue().splitlines() if line.strip()))


# Under load --------------------------------------------------------------------------------------


def _bench(args, token: str) -> list[Pair]:
    env = {
        "WEB_CONCURRENCY": str(args.workers),
        "CXHUB_WEB_THREADS": str(args.threads),
        "CXHUB_WEB_MAX_REQUESTS": str(args.max_requests),
        "DEBUG": "0",
    }
    pairs = []
    with contextlib.ExitStack() as stack:
        script = stack.enter_context(tempfile.NamedTemporaryFile("w", suffix=".lua"))
        script.write(WRK_SCRIPT)
        script.flush()
        log = stack.enter_context(open(args.server_log, "wb")) if args.server_log else None
        port, startup = servers.start(stack, servers.GUNICORN, env, log)
        print(f"gunicorn answered {startup:.1f} s after its start; warming up")
        headers = {"Authorization": f"Bearer {token}"}
        for path in [BARE_PATH, *(path for _, path in ENDPOINTS)]:
            status, _ = servers.get(port, path, headers)
            assert status == 200, (path, status)
            # Every worker loads the views and connects to the database before the clock.
            _wrk(port, path, token, script.name, clients=max(args.clients), seconds=args.warm_up)
        for clients in args.clients:
            for name, path in ENDPOINTS:
                run = {"clients": clients, "seconds": args.seconds}
                bare = _wrk(port, BARE_PATH, token, script.name, **run)
                ours = _wrk(port, path, token, script.name, **run)
                pairs.append(Pair(name, path, clients, ours, bare))
                print(
                    f"  {clients} clients: {name} {ours.rate:.0f} req/s, bare view "
                    f"{bare.rate:.0f} req/s",
                    flush=True,
                )
    return pairs


def _wrk(port: int, path: str, token: str, script: str, *, clients: int, seconds: int) -> Run:
    command = [
        "wrk",
        f"-t{min(2, clients)}",
        f"-c{clients}",
        f"-d{seconds}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        script,
        "-H",
        f"Authorization: Bearer {token}",
        f"http://127.0.0.1:{port}{path}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    # wrk leaves requests queued at the server when it stops: a request sent now is answered
    # once they are, and the next run starts with the queue empty.
    servers.get(port, "/healthz", timeout=120)
    lines = [line for line in done.stdout.splitlines() if line.startswith("cxhub-bench ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    requests, micros, p50, p95, p99, failed, statuses = (int(v) for v in lines[-1].split()[1:])
    return Run(requests, micros / 1e6, p50 / 1e6, p95 / 1e6, p99 / 1e6, failed + statuses)


# The table ---------------------------------------------------------------------------------------


def _report(pairs: list[Pair]) -> None:
    print()
    print(
        f"{'endpoint':16} {'clients':>7} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
        f"{'errors':>6} | {'bare req/s':>10} {'bare p95':>8} | {'p95 × bare':>10} "
        f"{'req/s × bare':>12}  goal"
    )
    for pair in pairs:
        ours, bare = pair.ours, pair.bare
        print(
            f"{pair.name:16} {pair.clients:7d} {ours.rate:7.1f} {ours.p50 * 1e3:7.0f} "
            f"{ours.p95 * 1e3:7.0f} {ours.p99 * 1e3:7.0f} {ours.errors:6d} | {bare.rate:10.1f} "
            f"{bare.p95 * 1e3:8.0f} | {pair.p95_ratio:9.2f}× {pair.rate_ratio:11.2f}×  "
            f"{'met' if pair.met else 'missed'}"
        )
    print(
        f"\ngoal: p95 at most {P95_RATIO_GOAL}× the bare view's and requests a second at least "
        f"{RATE_RATIO_GOAL:.2f}× its, each measured right after it at the same clients"
    )
    for pair in pairs:
        verdict = "met" if pair.met else "MISSED"
        print(
            f"  {pair.name} ({pair.path}) at {pair.clients} clients: {verdict} "
            f"(p95 {pair.p95_ratio:.2f}× bare, throughput {pair.rate_ratio:.2f}× bare)"
        )
    errors = sum(pair.ours.errors + pair.bare.errors for pair in pairs)
    if errors:
        print(f"  {errors} failed requests or answers other than 2xx/3xx: the figures are suspect")
    posts16 = next((p for p in pairs if p.path == ENDPOINTS[0][1] and p.clients == 16), None)
    if posts16 is not None:
        print(
            f"\n{ENDPOINTS[0][1]} at 16 clients through gunicorn: {posts16.ours.rate:.0f} "
            f"requests a second, p99 {posts16.ours.p99 * 1e3:.0f} ms; before, {RUNSERVER_FIGURE}"
        )


if __name__ == "__main__":
    sys.exit(main())
