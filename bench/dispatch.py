"""Benchmark of the dispatch engine (issues 5 and 16) on PostgreSQL and Redis.

N targets over 200 webhook accounts fall due at once; Celery beat runs the dispatcher, real
worker processes publish them to sites on 127.0.0.1 that answer after --delay-ms (real networks
take 100–800 ms), on --hosts ports standing for several instances of a network, Nagle off on
both sides. Printed, one figure a line: throughput (first claim to last publication, posts/s),
lateness p50/p99 (published_at minus the time they were due), the ratio of the throughput to a
bare Celery no-op task on the same broker with the same worker options in the same run, the
workers' CPU per post (and per no-op), the 429s the sites answered (with
--server-account-limit), and the most requests the sites saw in flight at once on one host and
for one account. It checks that the sites received every post exactly once.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/dispatch.py \
        [--targets N] [--delay-ms 400] [--hosts 4]

The PostgreSQL server is used only for a scratch database, cxhub_bench_dispatch, created at the
start and dropped at the end. The broker is the Redis database in BENCH_REDIS_URL (default
redis://127.0.0.1:6379/15), emptied (FLUSHDB) at the start and the end: the bench's own.
"""

import argparse
import contextlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

try:
    from bench import scratch
except ImportError:  # run as a script: bench/ itself is first on sys.path
    import scratch
from celery import Celery

ROOT = Path(__file__).resolve().parents[1]
SCRATCH_DB = "cxhub_bench_dispatch"
ACCOUNTS = 200
NOOP_QUEUE = "cxhub-bench-noop"
NOOP_DONE_KEY = "cxhub-bench:noop-done"

# The baseline: a Celery app with the same delivery options as cxhub's (acks_late, prefetch 1,
# results ignored) and one task that only counts itself (one Redis INCR), so the bench can tell
# when the last one ran.
noop_app = Celery("cxhub_bench_noop")
noop_app.conf.update(
    broker_url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"),
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_default_queue=NOOP_QUEUE,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
_redis_client = None


@noop_app.task(name="bench.noop")
def noop() -> None:
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(noop_app.conf.broker_url)
    _redis_client.incr(NOOP_DONE_KEY)


class _Refused(Exception):
    """Why the bench will not run here; printed, exit status 2."""


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        admin = _admin_conninfo(os.environ.get("DATABASE_URL", ""))
        broker = _broker_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
        _recreate_scratch(admin)
    except _Refused as refused:
        print(f"bench/dispatch.py: {refused}", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="cxhub-bench-dispatch-"))
    scratch = urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{SCRATCH_DB}"))
    sink = _Sink(
        hosts=args.hosts, delay_ms=args.delay_ms, account_limit=args.server_account_limit
    ).start()
    try:
        _setup_django(scratch, broker, workdir)
        _flush(broker)
        began = time.perf_counter()
        print(
            f"{args.targets:,} targets over {ACCOUNTS} webhook accounts ({args.per_post} per "
            f"post) on {args.hosts} host(s) answering in {args.delay_ms} ms"
            + (
                f", 429 past {args.server_account_limit} at once per account"
                if args.server_account_limit
                else ""
            )
            + f"; {args.concurrency} worker processes of {args.threads} send threads; "
            f"dispatcher every "
            f"{args.dispatch_seconds} s; written {args.lead_seconds:g} s before due; "
            f"PostgreSQL + Redis; {os.cpu_count()} CPU(s)"
        )
        base = _bench_noop(args, broker, workdir)
        ours = _bench_dispatch(args, broker, scratch, workdir, sink)
        _report(args, base, ours, sink)
        print(f"bench took {time.perf_counter() - began:.0f} s")
    finally:
        sink.stop()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        with contextlib.suppress(Exception):
            _flush(broker)
        _drop_scratch(admin)
        if args.keep:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=2000, help="targets due at once (2,000)")
    parser.add_argument("--per-post", type=int, default=4, help="targets per post (4)")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="worker processes, both runs (4)"
    )
    parser.add_argument(
        "--dispatch-seconds", type=int, default=5, help="dispatcher interval (5, the default)"
    )
    parser.add_argument("--batch-size", type=int, default=500, help="targets per claim (500)")
    parser.add_argument(
        "--lead-seconds",
        type=float,
        default=None,
        help="how long before they fall due the targets are written (default: the dispatcher "
        "interval + 3 s, as for posts scheduled ahead, which the dispatcher claims before their "
        "time; less than the interval measures a post approved seconds before its time)",
    )
    parser.add_argument(
        "--delay-ms", type=int, default=0, help="how long the sites take to answer (0)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=64,
        help="CXHUB_PUBLISH_THREADS, sends at once per worker process (64, the default)",
    )
    parser.add_argument(
        "--hosts", type=int, default=1, help="sites on their own ports, the accounts shared (1)"
    )
    parser.add_argument(
        "--server-account-limit",
        type=int,
        default=0,
        help="requests in flight per account past which a site answers 429 (0: none)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the worker logs")
    args = parser.parse_args(argv)
    if min(args.targets, args.per_post, args.concurrency, args.dispatch_seconds, args.hosts) < 1:
        parser.error("every number must be at least 1")
    if args.lead_seconds is None:
        args.lead_seconds = args.dispatch_seconds + 3.0
    if args.per_post > ACCOUNTS:
        parser.error(f"--per-post is at most {ACCOUNTS}")
    return args


# Setting up ---------------------------------------------------------------------------------------
def _admin_conninfo(url: str) -> str:
    needs = (
        "it needs PostgreSQL: set DATABASE_URL=postgres://user@host:5432/dbname. It creates "
        f"and drops its own database, {SCRATCH_DB}, on that server and touches no other."
    )
    if not url:
        raise _Refused(f"DATABASE_URL is not set; {needs}")
    import dj_database_url
    from psycopg.conninfo import make_conninfo

    try:
        db = dj_database_url.parse(url)
    except Exception:
        raise _Refused(f"DATABASE_URL is not a database URL; {needs}") from None
    if "postgresql" not in db["ENGINE"]:
        raise _Refused(f"DATABASE_URL is not PostgreSQL; {needs}")
    if db["NAME"] == SCRATCH_DB:
        raise _Refused(f"DATABASE_URL names {SCRATCH_DB}, the scratch database itself")
    parts = {
        "dbname": db["NAME"] or "postgres",
        "user": db["USER"],
        "password": db["PASSWORD"],
        "host": db["HOST"],
        "port": db["PORT"],
    }
    return make_conninfo(**{key: str(value) for key, value in parts.items() if value})


def _broker_url(url: str) -> str:
    if not url.startswith("redis://"):
        raise _Refused(
            "it needs Redis as the broker: set BENCH_REDIS_URL=redis://host:6379/N (a database "
            "number nothing else uses: the bench empties it)"
        )
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except redis.RedisError as error:
        raise _Refused(f"cannot reach Redis at {url}: {error}") from None
    return url


def _recreate_scratch(admin: str) -> None:
    try:
        scratch.recreate(admin, SCRATCH_DB)
    except scratch.ScratchError as error:
        raise _Refused(str(error)) from None


def _drop_scratch(admin: str) -> None:
    scratch.drop(admin, SCRATCH_DB)


def _flush(broker: str) -> None:
    import redis

    redis.Redis.from_url(broker).flushdb()


def _worker_env(broker: str, scratch: str, workdir: Path, args) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DEBUG": "0",  # DEBUG would keep every query in memory
            "DATABASE_URL": scratch,
            "CELERY_BROKER_URL": broker,
            "CXHUB_VAR_DIR": str(workdir / "var"),
            "CXHUB_DISPATCH_SECONDS": str(args.dispatch_seconds),
            "CXHUB_DISPATCH_BATCH_SIZE": str(args.batch_size),
            "CXHUB_PUBLISH_THREADS": str(args.threads),
            "CXHUB_HEARTBEAT_SECONDS": "3600",
            "CXHUB_ESCALATION_SECONDS": "3600",
            "CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "127.0.0.1/32",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _setup_django(scratch: str, broker: str, workdir: Path) -> None:
    os.environ.update(
        {
            "DATABASE_URL": scratch,
            "CELERY_BROKER_URL": broker,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DEBUG": "0",
            "CXHUB_VAR_DIR": str(workdir / "var"),
        }
    )
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _wait(predicate, timeout: float, what: str, logs=(), every: float = 0.05):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            tails = "".join(f"\n--- {log}\n{Path(log).read_text()[-3000:]}" for log in logs)
            raise RuntimeError(f"timed out waiting for {what}{tails}")
        time.sleep(every)


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) so far of a process and its children (a worker's pool): read
    from /proc, so that the processes' start-up, before the measured part, is left out."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:  # itself, or its parent is
            total += int(fields[11]) + int(fields[12])
    return total / tick


def _worker(app: str, env, workdir: Path, name: str, concurrency: int) -> subprocess.Popen:
    log = workdir / f"{name}.log"
    process = _start(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            app,
            "worker",
            "--pool=prefork",
            "-c",
            str(concurrency),
            "-n",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "INFO",
        ],
        env,
        log,
    )
    _wait(lambda: "ready." in log.read_text(errors="replace"), 60, f"{name} ready", [log])
    return process


# The sink ---------------------------------------------------------------------------------------
class _Counts:
    """What the sites saw, counted by the sites: posts by key, requests in flight at once (the
    most per host and per account), and 429s answered."""

    def __init__(self):
        self.lock = threading.Lock()
        self.received: dict[str, int] = {}
        self.in_flight_host: dict[int, int] = {}
        self.in_flight_account: dict[str, int] = {}
        self.most_host = 0
        self.most_account = 0
        self.refused = 0

    def enter(self, host: int, account: str, account_limit: int) -> bool:
        with self.lock:
            now = self.in_flight_account.get(account, 0) + 1
            if account_limit and now > account_limit:
                self.refused += 1
                return False
            self.in_flight_account[account] = now
            self.in_flight_host[host] = self.in_flight_host.get(host, 0) + 1
            self.most_account = max(self.most_account, now)
            self.most_host = max(self.most_host, self.in_flight_host[host])
            return True

    def leave(self, host: int, account: str) -> None:
        with self.lock:
            self.in_flight_account[account] -= 1
            self.in_flight_host[host] -= 1

    def summary(self) -> dict:
        return {
            "received": self.received,
            "most_host": self.most_host,
            "most_account": self.most_account,
            "refused": self.refused,
        }


def _sink_main(port_pipe, done_pipe, hosts: int, delay: float, account_limit: int) -> None:
    """Sites that take every post after `delay` seconds (HTTP/1.1 keep-alive, Nagle off), one
    per port, standing for `hosts` instances of a network; an account is a path on its host. An
    account with more than `account_limit` requests in flight at once gets a 429 (0: never)."""
    counts = _Counts()

    def handler_for(host: int):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, Nagle's algorithm and the
            # client's delayed ACK add 40 ms to every answer.
            disable_nagle_algorithm = True

            def log_message(self, format, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                account = self.path
                if not counts.enter(host, account, account_limit):
                    self._answer(429, {"error": "too many requests at once"}, {"Retry-After": "1"})
                    return
                try:
                    time.sleep(delay)
                    key = self.headers.get("Idempotency-Key", "")
                    with counts.lock:
                        counts.received[key] = counts.received.get(key, 0) + 1
                finally:
                    counts.leave(host, account)
                self._answer(201, {"id": key, "url": f"https://sink.example/{key}"})

            def _answer(self, status: int, payload: dict, headers: dict | None = None):
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        return Handler

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 1024

        def handle_error(self, request, client_address):
            pass

    servers = [Server(("127.0.0.1", 0), handler_for(host)) for host in range(hosts)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    port_pipe.send([server.server_address[1] for server in servers])
    signal.signal(signal.SIGTERM, lambda *a: (done_pipe.send(counts.summary()), os._exit(0)))
    while True:
        time.sleep(3600)


class _Sink:
    def __init__(self, *, hosts: int = 1, delay_ms: int = 0, account_limit: int = 0):
        self._port_pipe, child_port = multiprocessing.Pipe()
        self._done_pipe, self._child_done = multiprocessing.Pipe()
        self.process = multiprocessing.Process(
            target=_sink_main,
            args=(child_port, self._child_done, hosts, delay_ms / 1000, account_limit),
            daemon=True,
        )
        self.counts: dict | None = None

    def start(self) -> "_Sink":
        self.process.start()
        self.ports = self._port_pipe.recv()
        return self

    def url_of(self, account: int) -> str:
        """The account's address: on host `account % hosts`, its own path there."""
        return f"http://127.0.0.1:{self.ports[account % len(self.ports)]}/hook/{account}"

    def stop(self) -> dict:
        if self.counts is None and self.process.is_alive():
            self.process.terminate()
            if self._done_pipe.poll(10):
                self.counts = self._done_pipe.recv()
            self.process.join(timeout=10)
        return self.counts or {"received": {}, "most_host": 0, "most_account": 0, "refused": 0}


# The runs -----------------------------------------------------------------------------------------
def _bench_noop(args, broker: str, workdir: Path) -> dict:
    import redis

    client = redis.Redis.from_url(broker)
    client.delete(NOOP_DONE_KEY)
    env = dict(os.environ, BENCH_REDIS_URL=broker, PYTHONUNBUFFERED="1")
    worker = _worker("bench.dispatch:noop_app", env, workdir, "noop", args.concurrency)
    try:
        cpu = _cpu_seconds(worker.pid)
        began = time.perf_counter()
        for _ in range(args.targets):
            noop.delay()
        enqueued = time.perf_counter() - began
        _wait(
            lambda: int(client.get(NOOP_DONE_KEY) or 0) >= args.targets,
            300,
            "the no-ops",
            [workdir / "noop.log"],
        )
        took = time.perf_counter() - began
        cpu = _cpu_seconds(worker.pid) - cpu
    finally:
        _stop(worker)
    return {
        "seconds": took,
        "enqueue_seconds": enqueued,
        "rate": args.targets / took,
        "cpu_ms": 1000 * cpu / args.targets,
    }


def _organisation(sink: "_Sink"):
    from accounts.models import Membership, Role, Team, User
    from networks.models import Channel, SocialAccount

    hq = Team.objects.add_root(create_kwargs={"name": "HQ", "slug": "hq"})
    author = User.objects.create(username="author")
    Membership.objects.create(user=author, team=hq, role=Role.DRAFTER)
    accounts = []
    for number in range(ACCOUNTS):
        account = SocialAccount(
            team=hq,
            channel=Channel.WEBHOOK,
            handle=f"site-{number}",
            base_url=sink.url_of(number),
        )
        account.set_tokens(access_token=f"secret-{number}")
        accounts.append(account)
    SocialAccount.objects.bulk_create(accounts)
    return hq, author, list(SocialAccount.objects.order_by("id"))


def _due_posts(*, team, author, accounts, targets: int, per_post: int, due) -> list[int]:
    """Approved posts, written directly: what post_approved leaves (scheduled, targets
    waiting, approved hash = content hash)."""
    from django.db import transaction

    from publishing.content import canonical_content, hash_content
    from publishing.models import Post, PostStatus, PostTarget, TargetStatus

    posts_needed = -(-targets // per_post)
    with transaction.atomic():
        posts = Post.objects.bulk_create(
            [
                Post(
                    team=team,
                    author=author,
                    body=f"Bench post {n}",
                    status=PostStatus.SCHEDULED,
                    scheduled_at=due,
                    content_hash="",
                )
                for n in range(posts_needed)
            ]
        )
        rows, made = [], 0
        for index, post in enumerate(posts):
            for offset in range(per_post):
                if made == targets:
                    break
                account = accounts[(index * per_post + offset) % len(accounts)]
                rows.append(
                    PostTarget(
                        post=post,
                        social_account=account,
                        status=TargetStatus.WAITING,
                        next_attempt_at=due,
                    )
                )
                made += 1
        PostTarget.objects.bulk_create(rows, batch_size=1000)
        fresh = list(
            Post.objects.filter(pk__in=[p.pk for p in posts]).prefetch_related(
                "targets", "post_media__media"
            )
        )
        for post in fresh:
            post.content_hash = post.approved_content_hash = hash_content(canonical_content(post))
        Post.objects.bulk_update(fresh, ["content_hash", "approved_content_hash"], batch_size=1000)
    return [row.pk for row in rows]


def _bench_dispatch(args, broker: str, scratch: str, workdir: Path, sink: _Sink) -> dict:
    from django.utils import timezone

    from publishing.models import PostTarget, TargetStatus

    env = _worker_env(broker, scratch, workdir, args)
    team, author, accounts = _organisation(sink)
    worker = _worker("cxhub", env, workdir, "cxhub", args.concurrency)
    beat = _start(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "cxhub",
            "beat",
            "--loglevel",
            "INFO",
            "-s",
            str(workdir / "beat-schedule"),
        ],
        env,
        workdir / "beat.log",
    )
    try:
        # Beat's first run comes one interval after it starts: wait for it, so that lateness
        # measures the dispatcher in its steady state, not the start-up of this bench.
        _wait(
            lambda: "dispatch due targets" in (workdir / "beat.log").read_text(errors="replace"),
            60,
            "beat's first dispatcher run",
            [workdir / "beat.log"],
        )
        cpu = _cpu_seconds(worker.pid)
        due = timezone.now() + timedelta(seconds=args.lead_seconds)
        ids = _due_posts(
            team=team,
            author=author,
            accounts=accounts,
            targets=args.targets,
            per_post=args.per_post,
            due=due,
        )
        if timezone.now() > due:
            print("  (writing the targets took longer than the lead time: lateness includes it)")
        # (The scratch database holds these targets only: a cheap count, twice a second.)
        _wait(
            lambda: PostTarget.objects.filter(status=TargetStatus.PUBLISHED).count() == len(ids),
            600,
            "every target published",
            [workdir / "cxhub.log", workdir / "beat.log"],
            every=0.5,
        )
        cpu = _cpu_seconds(worker.pid) - cpu
    finally:
        _stop(beat)
        _stop(worker)
    rows = list(PostTarget.objects.filter(pk__in=ids).values_list("queued_at", "published_at"))
    first_claim = min(queued for queued, _ in rows)
    last = max(published for _, published in rows)
    lateness = sorted((published - due).total_seconds() for _, published in rows)
    # From when work could start (the first claim, or the due time for targets claimed ahead
    # and held back by their task's start time) to the last publication.
    took = (last - max(first_claim, due)).total_seconds()
    log = (workdir / "cxhub.log").read_text(errors="replace")
    return {
        "seconds": took,
        "rate": len(ids) / took,
        "p50": statistics.median(lateness),
        "p99": lateness[min(len(lateness) - 1, int(round(0.99 * len(lateness))) - 1)],
        "max": lateness[-1],
        "first_claim_after_due": (first_claim - due).total_seconds(),
        "batches": log.count("event=dispatch.batch"),
        "task_ms": statistics.median(
            int(m) for m in re.findall(r"event=publish\.attempt .*?duration_ms=(\d+)", log)
        ),
        "retries": log.count("outcome=retryable") + log.count("outcome=unknown"),
        "cpu_ms": 1000 * cpu / len(ids),
        "keys": {
            str(key)
            for key in PostTarget.objects.filter(pk__in=ids).values_list(
                "idempotency_key", flat=True
            )
        },
    }


def _report(args, base: dict, ours: dict, sink: _Sink) -> None:
    counts = sink.stop()
    received = counts["received"]
    twice = sum(1 for count in received.values() if count > 1)
    missing = len(ours["keys"] - set(received))
    ratio = ours["rate"] / base["rate"]
    print(
        f"no-op Celery task   {args.targets:,} in {base['seconds']:.2f} s = "
        f"{base['rate']:,.0f} tasks/s (enqueueing took {base['enqueue_seconds']:.2f} s), "
        f"{base['cpu_ms']:.2f} ms of worker CPU each"
    )
    print(
        f"dispatch (webhook)  {args.targets:,} in {ours['seconds']:.2f} s, due (or first claim) "
        f"→ last publication ({ours['batches']} claim batches, {ours['retries']} retries, "
        f"median task {ours['task_ms']} ms)"
    )
    print(f"throughput          {ours['rate']:,.1f} posts/s")
    print(
        f"lateness p50 {ours['p50']:.2f} s, p99 {ours['p99']:.2f} s (max {ours['max']:.2f} s; "
        f"first claim {ours['first_claim_after_due']:+.2f} s from due)"
    )
    print(f"ratio to the no-op  {ratio:.2f}")
    print(f"worker CPU          {ours['cpu_ms']:.2f} ms a post")
    print(f"429s received       {counts['refused']}")
    print(
        f"most in flight      {counts['most_host']} on one host, {counts['most_account']} for "
        "one account (counted by the sites)"
    )
    print(
        f"exactly once        {len(received):,} posts received by the sites, {twice} twice, "
        f"{missing} missing"
    )


if __name__ == "__main__":
    sys.exit(main())
