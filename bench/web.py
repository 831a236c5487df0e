"""Benchmark of the web server (issue 15, item 1): requests a second and p50/p99 latency of
`GET /api/v1/posts/` (50 posts a page, signed in by API token) at 16 concurrent clients, through
gunicorn with cxhub/gunicorn_conf.py (WEB_CONCURRENCY 2 to 4, DEBUG off) against Django's
runserver (as `make run` started it: DEBUG on), with the same request inside the process
(Django's test Client) as the baseline; and how long each server takes from its start to its
first answer (what `make run` waits for).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/web.py [--seconds S]

The server in DATABASE_URL is used only for a scratch database, cxhub_bench_web, created at the
start and dropped at the end. The clients run in this process, on the same machine as the
servers: on a machine with few CPUs they take some of what the servers could use.
"""

import argparse
import contextlib
import http.client
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

try:
    from bench import servers
except ImportError:  # run as a script: bench/ itself is first on sys.path
    import servers

ROOT = servers.ROOT
SCRATCH_DB = "cxhub_bench_web"
PATH = "/api/v1/posts/"


class _Refused(Exception):
    """Why the bench will not run here; printed, exit status 2."""


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    errors: int
    startup: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        with servers.scratch_database(
            os.environ.get("DATABASE_URL", ""),
            SCRATCH_DB,
            why="several server processes share the database",
        ) as scratch_url:
            return _run(args, scratch_url)
    except servers.Refused as refused:
        print(f"bench/web.py: {refused}", file=sys.stderr)
        return 2


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=10, help="measured per server and round (10)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the servers (3)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--posts", type=int, default=120, help="posts in the database (120)")
    parser.add_argument(
        "--workers", default="2,3,4", help="WEB_CONCURRENCY values for gunicorn (2,3,4)"
    )
    parser.add_argument(
        "--threads", default="1,4", help="CXHUB_WEB_THREADS values for gunicorn (1,4)"
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0 or min(args.clients, args.rounds) < 1 or args.posts < 50:
        parser.error(
            "--seconds must be positive, --clients and --rounds at least 1, --posts at least 50"
        )
    return args


def _run(args, scratch_url: str) -> int:
    os.environ.update(servers.SERVER_ENV)
    os.environ["DATABASE_URL"] = scratch_url
    os.environ["DEBUG"] = "0"  # DEBUG would keep every query in memory
    # The benched processes collect static files into a folder of their own.
    static_root = tempfile.mkdtemp(prefix="cxhub-bench-web-static-")
    os.environ["CXHUB_STATIC_ROOT"] = static_root
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    token = _organisation(posts=args.posts)
    baseline = _in_process(token)
    print(
        f"PostgreSQL scratch database {SCRATCH_DB}; {os.cpu_count()} CPU(s); {args.clients} "
        f"clients, {args.rounds} rounds of {args.seconds:g} s each; GET {PATH} (50 posts a "
        "page) by API token"
    )
    print(f"in-process (Django test Client, DEBUG off): p50 {baseline * 1000:.1f} ms")
    from django.db import connections

    connections.close_all()

    candidates = [
        Server(
            "runserver, DEBUG on (make run today)",
            [sys.executable, "manage.py", "runserver", "--noreload"],
            {"DEBUG": "1"},
        ),
    ]
    for threads in [int(t) for t in args.threads.split(",")]:
        for workers in [int(w) for w in args.workers.split(",")]:
            candidates.append(
                Server(
                    f"gunicorn WEB_CONCURRENCY={workers} threads={threads}",
                    servers.GUNICORN,
                    {
                        "DEBUG": "0",
                        "WEB_CONCURRENCY": str(workers),
                        "CXHUB_WEB_THREADS": str(threads),
                    },
                )
            )
    results = _bench_all(candidates, token, args)

    reference = results[0]
    print()
    print(
        f"{'server':44} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
        f"{'start s':>7}  {'× runserver':>11} {'p50 / in-process':>16}"
    )
    for result in results:
        print(
            f"{result.name:44} {result.rate:7.1f} {result.percentile(50) * 1000:8.0f} "
            f"{result.percentile(99) * 1000:8.0f} {result.errors:6d} {result.startup:7.1f}  "
            f"{result.rate / reference.rate:10.1f}× "
            f"{result.percentile(50) / baseline:15.1f}×"
        )
    best = max(results[1:], key=lambda r: r.rate)
    print(
        f"\nbest gunicorn ({best.name}): {best.rate / reference.rate:.1f}× the requests a second "
        f"of runserver, p99 {best.percentile(99) / reference.percentile(99):.2f}× its p99; "
        f"start to first answer {best.startup / reference.startup:.2f}× runserver's"
    )
    failed = [r.name for r in results if r.errors]
    if failed:
        print(f"errors (non-200 answers or failed connections) from: {', '.join(failed)}")
    return 0


def _organisation(*, posts: int) -> str:
    """A drafter of North with a Mastodon account there, `posts` posts of two targets each, and
    an API token; returns the token."""
    from accounts.models import Membership, Role, Team, User
    from accounts.tokens import api_token_create
    from networks.models import Channel, SocialAccount
    from publishing import services

    hq = Team.objects.add_root(create_kwargs={"name": "HQ", "slug": "hq"})
    north = Team.objects.add_child(hq, create_kwargs={"name": "North", "slug": "north"})
    drafter = User.objects.create(username="drafter")
    Membership.objects.create(user=drafter, team=north, role=Role.DRAFTER)
    accounts = [
        SocialAccount.objects.create(
            team=north, channel=Channel.MASTODON, handle=f"@north{n}", base_url="https://m.example"
        )
        for n in range(2)
    ]
    targets = [services.TargetInput(social_account_id=account.pk) for account in accounts]
    for n in range(posts):
        services.post_create(
            by=drafter,
            team_id=north.pk,
            body=f"Bench post {n}: the ferry timetable changes on Monday.",
            targets=targets,
            tags=["bench"],
        )
    return api_token_create(user=drafter, name="bench", by=drafter).secret


def _in_process(token: str) -> float:
    """p50 of the same request through Django's test Client, in this process."""
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST="127.0.0.1")
    times = []
    for _ in range(60):
        began = time.perf_counter()
        response = client.get(PATH)
        times.append(time.perf_counter() - began)
        assert response.status_code == 200, response.content[:300]
        assert len(response.json()["results"]) == 50
    return statistics.median(times[10:])


def _bench_all(candidates: list[Server], token: str, args) -> list[Result]:
    """Start every server (idle ones cost next to nothing), then measure them in turn, round
    after round: a machine whose load drifts meanwhile weighs on each of them alike."""
    headers = {"Authorization": f"Token {token}"}
    with contextlib.ExitStack() as stack:
        running = []
        for server in candidates:
            port, startup = servers.start(stack, server.command, server.env)
            # Warm every worker (the first request of each loads the URLs and the views).
            _load(port, headers, clients=args.clients, seconds=2)
            running.append((server, port, Result(server.name, 0, 0.0, [], 0, startup)))
        for round_number in range(1, args.rounds + 1):
            for server, port, result in running:
                requests, seconds, latencies, errors = _load(
                    port, headers, clients=args.clients, seconds=args.seconds
                )
                result.requests += requests
                result.seconds += seconds
                result.latencies += latencies
                result.errors += errors
                print(
                    f"  round {round_number}, {server.name}: {requests / seconds:.1f} req/s",
                    flush=True,
                )
    return [result for _, _, result in running]


def _load(port: int, headers: dict, *, clients: int, seconds: float):
    """`clients` threads, each sending the request again as soon as it has its answer, for
    `seconds`; each on a connection of its own, kept alive where the server allows."""
    stop_at = time.perf_counter() + seconds
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        failed = 0
        while time.perf_counter() < stop_at:
            began = time.perf_counter()
            try:
                connection.request("GET", PATH, headers=headers)
                response = connection.getresponse()
                response.read()
                if response.status == 200:
                    mine.append(time.perf_counter() - began)
                else:
                    failed += 1
                if response.will_close:
                    connection.close()
            except (OSError, http.client.HTTPException):
                failed += 1
                connection.close()
        connection.close()
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return len(latencies), elapsed, latencies, errors[0]


if __name__ == "__main__":
    sys.exit(main())
