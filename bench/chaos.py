"""Chaos bench of dispatch (issue 11, item 6): does every post go out exactly once, on time,
when the network, a worker, the broker or the database fails mid-batch?

Real pieces: PostgreSQL (a scratch database of this bench), a redis-server of this bench alone
as the broker, Celery beat and worker processes (prefork) running cxhub, and a Mastodon server
on 127.0.0.1 (bench/chaos_server.py) that records every status it makes. Approved posts are
written as scheduled posts are (bench/dispatch.py's way: posts and their targets waiting, due a
few seconds later), over Mastodon accounts pointing at that server, tokens stored encrypted
through SocialAccount.set_tokens. Scenarios, each on fresh data (a new database copied from a
migrated template, an emptied broker, a new server):

  (a) the server stores every 10th new status and then answers 502 Bad Gateway;
  (b) a worker is SIGKILLed mid-batch, its whole process group (pool included), and a new
      one started at once;
  (c) Redis is killed mid-batch and comes back empty after 2 s;
  (d) every PostgreSQL connection of the workers is terminated mid-batch
      (pg_terminate_backend, only those of the scratch database with the workers'
      application_name);
  (e) as (a), with a server that ignores Idempotency-Key.

"Mid-batch" is when the server has made --fault-at (30 %) of the batch's statuses. For (a) and
(e) the fault is there from the start: their time counts from when the batch fell due. A worker
or beat that exits by itself is noted with what it logged last; nothing replaces it unless
--supervise is given (then another starts, as a process supervisor would start one).

One row per scenario. Every target is attributed the statuses the server made for it (by its
Idempotency-Key on its account; by its text on its account where a request carried no key):
  duplicates      statuses on the server beyond one per target (plus any matching no target);
  lost            targets cxhub left final (published, failed, cancelled) whose status is not on
                  the server at the end: given up on, or marked published without being there;
  wrongly failed  targets marked failed whose status IS on the server;
  stuck           targets not settled at the deadline (pending, waiting, queued or sending),
                  --settle-seconds (120) after the fault;
  held            targets held (for a person to decide: an ambiguous reconcile, or any other
                  hold, whose reason the notes give); settled, but not counted above;
  settled         seconds from the fault until every target was published, failed, cancelled or
                  held (polled 5 times a second, and still so 2 s later);
  lateness p99    published_at minus the time the targets were due, published targets only.
The issue's target: 0, 0, 0, 0 and settled within 60 s of the fault, in every scenario.
--strict exits 1 when a scenario misses it; without it the exit status is 0 whatever the
figures (1 if a scenario could not run, 2 if the bench cannot run here).

Speed: the integration tests' settings (tests/integration/dispatch_harness.FAST), so that
recovery takes seconds: dispatcher and sweeper every 1 s, backoff 1 s doubling to at most 4 s,
task soft/hard time limit 4/5 s (network calls time out after 2 s), a target `sending` for 6 s
or `queued` for 8 s is swept; 8 tries (the default), the broker's visibility timeout 3600 s
(the default). The header line prints them as used. The server takes 50 ms (--latency-ms) per
status, spent after storing it. Two workers of two processes each, and beat on its own.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/chaos.py \\
        [--scenario a,b,c,d,e] [--targets N] [--strict]

--targets sets N, 2,000 by default, for every scenario (about a minute each here). The
PostgreSQL server is used only for cxhub_bench_chaos and cxhub_bench_chaos_template, created
here and dropped at the end; Redis is a redis-server started here on a free port.
"""

import argparse
import contextlib
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: bench/ is first on sys.path, not the project
    sys.path.insert(0, str(ROOT))

from bench import scratch  # noqa: E402
from bench.chaos_server import MastodonServer  # noqa: E402
from tests.integration.dispatch_harness import (  # noqa: E402
    FAST,
    PrivateRedis,
    Worker,
    wait_until,
    worker_env,
)

SCRATCH_DB = "cxhub_bench_chaos"
TEMPLATE_DB = "cxhub_bench_chaos_template"
# The workers' database connections carry this name: (d) terminates those and no others.
WORKER_APPLICATION_NAME = "cxhub-bench-chaos-worker"
BENCH_APPLICATION_NAME = "cxhub-bench-chaos"
ACCOUNTS = 200
PER_POST = 4
# Mastodon renders this as HTML (an apostrophe, &, <>, a hashtag, a long link, two paragraphs):
# reconcile must see through it. Each post adds its number, so no two statuses of an account
# have the same text.
TEXT = (
    "Tonight's road works & closures on #HighStreet <A1 to A3>.\n\n"
    "Detours: https://roads.example.gov/closures/high-street?from=22&to=06 (map), notice"
)
LEAD_SECONDS = 4.0  # targets are written this long before they fall due
REDIS_DOWN_SECONDS = 2.0
QUIET_SECONDS = 2.0  # settled means still settled this long after
POLL_SECONDS = 0.2
_SECRET = re.compile(r"KEY|SECRET|TOKEN|PASSWORD", re.IGNORECASE)
UNSETTLED = ("pending", "waiting", "queued", "sending")
FINAL = ("published", "failed", "cancelled")
SPEED_SETTINGS = (
    "CXHUB_DISPATCH_SECONDS",
    "CXHUB_SWEEP_SECONDS",
    "CXHUB_PUBLISH_BACKOFF_BASE_SECONDS",
    "CXHUB_PUBLISH_BACKOFF_CAP_SECONDS",
    "CXHUB_TASK_SOFT_TIME_LIMIT",
    "CXHUB_TASK_TIME_LIMIT",
    "CXHUB_SENDING_STUCK_SECONDS",
    "CXHUB_QUEUED_STUCK_SECONDS",
)


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    fault: str  # "server", "kill", "redis" or "postgres"
    fail_every: int = 0
    honour_idempotency: bool = True


SCENARIOS = {
    s.key: s
    for s in (
        Scenario("a", "502 after every 10th", "server", fail_every=10),
        Scenario("b", "worker SIGKILLed", "kill"),
        Scenario("c", "Redis restarted", "redis"),
        Scenario("d", "DB connections cut", "postgres"),
        Scenario("e", "(a), key ignored", "server", fail_every=10, honour_idempotency=False),
    )
}


@dataclass
class Row:
    scenario: Scenario
    targets: int
    duplicates: int = 0
    lost: int = 0
    wrongly_failed: int = 0
    stuck: int = 0
    held: int = 0
    settled_after: float | None = None  # None: not settled by the deadline
    lateness_p99: float | None = None
    notes: list[str] = field(default_factory=list)
    error: str = ""

    def met(self, settle_target: float) -> bool:
        return (
            not self.error
            and self.duplicates == self.lost == self.wrongly_failed == self.stuck == 0
            and self.settled_after is not None
            and self.settled_after <= settle_target
        )


class _Refused(Exception):
    """Why the bench will not run here; printed, exit status 2."""


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        admin = _admin_conninfo(os.environ.get("DATABASE_URL", ""))
        if not shutil.which("redis-server"):
            raise _Refused("it needs redis-server on the PATH (it starts a Redis of its own)")
        scratch.recreate(admin, SCRATCH_DB)
        scratch.drop(admin, TEMPLATE_DB)
    except (_Refused, scratch.ScratchError) as refused:
        print(f"bench/chaos.py: {refused}", file=sys.stderr)
        return 2
    given_env = {name: value for name, value in os.environ.items() if name.startswith("CXHUB_")}
    workdir = Path(tempfile.mkdtemp(prefix="cxhub-bench-chaos-"))
    redis = PrivateRedis(workdir)
    rows: list[Row] = []
    began = time.monotonic()
    try:
        redis.start()
        url = os.environ["DATABASE_URL"]
        _setup_django(_database_url(url, SCRATCH_DB, BENCH_APPLICATION_NAME), redis.url, workdir)
        _make_template(admin)
        bench = _Bench(
            admin=admin,
            redis=redis,
            workdir=workdir,
            worker_database=_database_url(url, SCRATCH_DB, WORKER_APPLICATION_NAME),
            args=args,
            given_env=given_env,
        )
        print(bench.header(), flush=True)
        for key in args.scenario:
            scenario = SCENARIOS[key]
            rows.append(bench.run(scenario, args.targets))
        print()
        print(_line([name for name, _ in COLUMNS]))
        for row in rows:
            _print_row(row, args)
        print()
        for row in rows:
            for note in row.notes:
                print(f"({row.scenario.key}) {note}")
            if row.error:
                print(f"({row.scenario.key}) could not run: {row.error}")
        print(f"chaos bench took {time.monotonic() - began:.0f} s")
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        redis.stop()
        scratch.drop(admin, SCRATCH_DB)
        scratch.drop(admin, TEMPLATE_DB)
        if args.keep:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if any(row.error for row in rows):
        return 1
    if args.strict and not all(row.met(args.settle_target) for row in rows):
        return 1
    return 0


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenario",
        default="a,b,c,d,e",
        help="which scenarios, comma-separated (a,b,c,d,e)",
    )
    parser.add_argument(
        "--targets",
        type=int,
        default=2000,
        help="targets per scenario, rounded up to a multiple of 4 (2,000)",
    )
    parser.add_argument(
        "--fault-at",
        type=float,
        default=0.3,
        help="(b)-(d) strike when the server has this share of the batch (0.3)",
    )
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=120.0,
        help="deadline after the fault: a target not settled by then is stuck (120)",
    )
    parser.add_argument(
        "--settle-target",
        type=float,
        default=60.0,
        help="the issue's target for settling after the fault, for --strict (60)",
    )
    parser.add_argument(
        "--latency-ms", type=float, default=50.0, help="the server's time per status (50)"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--concurrency", type=int, default=2, help="pool size of each (2)")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when any scenario misses the target"
    )
    parser.add_argument(
        "--supervise",
        action="store_true",
        help="start another worker (or beat) when one exits by itself, as systemd's "
        "Restart=always would; without it the exit is noted and nothing replaces it",
    )
    parser.add_argument("--keep", action="store_true", help="keep the logs")
    args = parser.parse_args(argv)
    keys = [key.strip().lower() for key in args.scenario.split(",") if key.strip()]
    unknown = sorted(set(keys) - set(SCENARIOS))
    if unknown or not keys:
        parser.error(f"--scenario takes some of {','.join(SCENARIOS)}")
    args.scenario = list(dict.fromkeys(keys))
    if args.targets < 1:
        parser.error("--targets must be at least 1")
    if not 0 < args.fault_at < 1:
        parser.error("--fault-at is a share of the batch, between 0 and 1")
    if min(args.workers, args.concurrency) < 1 or min(args.settle_seconds, args.latency_ms) < 0:
        parser.error("--workers and --concurrency must be at least 1, times not negative")
    return args


# Setting up ---------------------------------------------------------------------------------------
def _admin_conninfo(url: str) -> str:
    """A libpq conninfo for the database the URL names (only connected to, to create and drop
    the scratch databases and to terminate the workers' connections in (d))."""
    needs = (
        "it needs PostgreSQL: set DATABASE_URL=postgres://user@host:5432/dbname. It creates and "
        f"drops its own databases, {SCRATCH_DB} and {TEMPLATE_DB}, on that server and touches no "
        "other."
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
    if db["NAME"] in (SCRATCH_DB, TEMPLATE_DB):
        raise _Refused(f"DATABASE_URL names {db['NAME']}, a scratch database of this bench")
    parts = {
        "dbname": db["NAME"] or "postgres",
        "user": db["USER"],
        "password": db["PASSWORD"],
        "host": db["HOST"],
        "port": db["PORT"],
    }
    return make_conninfo(**{key: str(value) for key, value in parts.items() if value})


def _database_url(url: str, name: str, application_name: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "application_name"]
    query.append(("application_name", application_name))
    return urlunsplit(parts._replace(path=f"/{name}", query=urlencode(query)))


def _setup_django(database: str, broker: str, workdir: Path) -> None:
    os.environ.update(
        {
            "DATABASE_URL": database,
            "CELERY_BROKER_URL": broker,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DEBUG": "0",  # DEBUG would keep every query in memory
            "CXHUB_VAR_DIR": str(workdir / "var"),
        }
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _make_template(admin: str) -> None:
    """The migrated scratch database becomes the template each scenario is copied from."""
    from django.db import connections

    connections.close_all()
    scratch.admin_execute(admin, f"CREATE DATABASE {TEMPLATE_DB} TEMPLATE {SCRATCH_DB}")


def _fresh_database(admin: str) -> None:
    from django.db import connections

    connections.close_all()
    scratch.admin_execute(
        admin,
        f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)",
        f"CREATE DATABASE {SCRATCH_DB} TEMPLATE {TEMPLATE_DB}",
    )


def _progress(message: str) -> None:
    print(f"  {datetime.now():%H:%M:%S} {message}", file=sys.stderr, flush=True)


class _Beat:
    """`celery -A cxhub beat`, on its own, as a process group."""

    def __init__(self, env: dict[str, str], workdir: Path, *, name: str = "beat"):
        self.env = env
        self.workdir = workdir
        self.name = name
        self.log = workdir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "_Beat":
        schedule = self.workdir / f"{self.name}-schedule"
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "cxhub", "beat", "--loglevel", "INFO"]
                + ["-s", str(schedule)],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        # Its first dispatcher run comes one interval after it starts: wait for it, so the
        # batch meets beat in its steady state.
        wait_until(
            lambda: (
                self.process.poll() is not None
                or "dispatch due targets" in self.log.read_text(errors="replace")
            ),
            timeout=60,
            what="beat's first dispatcher run",
            logs=[self.log],
        )
        if self.process.poll() is not None:
            raise RuntimeError(f"beat exited:\n{self.log.read_text(errors='replace')[-3000:]}")
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


class _Watcher(threading.Thread):
    """Counts the targets not settled, five times a second, on its own connection; remembers
    when none was left (forgotten if one comes back)."""

    def __init__(self):
        super().__init__(name="watcher", daemon=True)
        self.settled_at: float | None = None
        self.unsettled: int | None = None
        self._stopping = threading.Event()

    def run(self) -> None:
        from django.db import DatabaseError, connection

        from publishing.models import PostTarget

        try:
            while not self._stopping.is_set():
                try:
                    count = PostTarget.objects.filter(status__in=UNSETTLED).count()
                except DatabaseError:
                    connection.close()
                    count = None
                now = time.time()
                if count == 0 and self.settled_at is None:
                    self.settled_at = now
                elif count:
                    self.settled_at = None
                self.unsettled = count
                self._stopping.wait(POLL_SECONDS)
        finally:
            connection.close()

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=10)


# One scenario -------------------------------------------------------------------------------------
@dataclass
class _Bench:
    admin: str
    redis: PrivateRedis
    workdir: Path
    worker_database: str
    args: argparse.Namespace
    # The CXHUB_* variables of the environment the bench was started in.
    given_env: dict[str, str] = field(default_factory=dict)
    # Processes killed by the bench, or noted as having exited by themselves.
    gone: set[str] = field(default_factory=set)

    def env(self) -> dict[str, str]:
        return worker_env(
            database=self.worker_database, broker=self.redis.url, var_dir=self.workdir / "var"
        )

    def header(self) -> str:
        env = self.env()
        speed = ", ".join(f"{name[6:]}={env[name]}" for name in SPEED_SETTINGS)
        # worker_env passes the environment on: say what else the person running the bench
        # set that changes cxhub's behaviour (names only for secrets).
        given = sorted(
            name if _SECRET.search(name) else f"{name}={value}"
            for name, value in self.given_env.items()
            if name not in FAST
        )
        if given:
            speed += "; from the environment: " + ", ".join(given)
        return (
            f"Chaos bench: PostgreSQL ({SCRATCH_DB}) + a private redis-server; "
            f"{self.args.workers} workers × {self.args.concurrency} processes + beat; "
            f"{ACCOUNTS} Mastodon accounts, {PER_POST} per post, on a server taking "
            f"{self.args.latency_ms:g} ms a status; {os.cpu_count()} CPU(s)\n"
            f"settings: {speed}; deadline {self.args.settle_seconds:g} s after the fault; "
            f"target 0/0/0/0, settled within {self.args.settle_target:g} s"
        )

    def run(self, scenario: Scenario, targets: int) -> Row:
        targets = math.ceil(targets / PER_POST) * PER_POST
        row = Row(scenario=scenario, targets=targets)
        workdir = self.workdir / f"scenario-{scenario.key}"
        workdir.mkdir()
        server = MastodonServer(
            fail_every=scenario.fail_every,
            honour_idempotency=scenario.honour_idempotency,
            latency=self.args.latency_ms / 1000,
        )
        workers: list[Worker] = []
        ids: list[int] = []
        due = datetime.now(UTC)
        beat = _Beat(self.env(), workdir)
        watcher = _Watcher()
        try:
            _progress(f"({scenario.key}) {scenario.label}: fresh database, broker and server")
            _fresh_database(self.admin)
            self.redis.restart(down_for=0)
            server.start()
            team, author, accounts = _organisation(server)
            workers = self._start_workers(workdir, self.args.workers)
            beat.start()
            due, ids = _write_targets(team, author, accounts, targets)
            watcher.start()
            _progress(f"({scenario.key}) {len(ids)} targets due at {due:%H:%M:%S}")
            fault_at = self._strike(scenario, row, due, server, workers, workdir)
            deadline = fault_at + self.args.settle_seconds
            while time.time() < deadline:
                if watcher.settled_at and time.time() - watcher.settled_at >= QUIET_SECONDS:
                    break
                beat = self._look_after(row, fault_at, workers, beat, workdir)
                time.sleep(POLL_SECONDS)
            if watcher.settled_at is not None:
                row.settled_after = watcher.settled_at - fault_at
            self._look_after(row, fault_at, workers, beat, workdir, restart=False)
        except Exception as exc:
            row.error = f"{type(exc).__name__}: {exc}"[:3000]
        finally:
            beat.stop()
            for worker in workers:
                worker.stop()
            watcher.stop()
            server.stop()
        if not row.error:
            try:
                _measure(row, ids, due, server)
            except Exception as exc:
                row.error = f"measuring failed: {type(exc).__name__}: {exc}"
        if row.error:
            _progress(f"({scenario.key}) could not run: {row.error.splitlines()[0][:200]}")
        elif row.settled_after is None:
            _progress(f"({scenario.key}) not settled by the deadline: {row.stuck} stuck")
        else:
            _progress(f"({scenario.key}) settled {row.settled_after:.1f} s after the fault")
        if self.args.keep:
            row.notes.append(f"logs in {workdir}")
        return row

    def _start_workers(self, workdir: Path, count: int) -> list[Worker]:
        made = [
            Worker(
                self.env(), workdir, name=f"w{n + 1}", concurrency=self.args.concurrency, beat=False
            )
            for n in range(count)
        ]
        try:
            with ThreadPoolExecutor(count) as pool:
                list(pool.map(lambda worker: worker.start(), made))
        except BaseException:
            for worker in made:
                worker.stop()
            raise
        return made

    def _look_after(self, row, fault_at, workers, beat, workdir, *, restart=True) -> "_Beat":
        """Note a worker or beat that exited by itself (not the one (b) kills); with
        --supervise, start another in its place, as a process supervisor would. The beat
        running now."""
        for index, worker in list(enumerate(workers)):
            if worker.process is None or worker.process.poll() is None:
                continue
            if worker.name in self.gone:
                continue
            self.gone.add(worker.name)
            row.notes.append(_exit_note(worker.name, worker.process, worker.log, fault_at))
            if restart and self.args.supervise:
                [workers[index]] = self._start_workers(workdir, 1)
                workers.append(worker)  # stopped with the others at the end
                row.notes.append(f"  another worker started in its place ({_since(fault_at)})")
        if beat.process is not None and beat.process.poll() is not None:
            if beat.name in self.gone:
                return beat
            self.gone.add(beat.name)
            row.notes.append(_exit_note("beat", beat.process, beat.log, fault_at))
            if restart and self.args.supervise:
                beat = _Beat(self.env(), workdir, name=f"beat-{time.monotonic_ns()}").start()
                row.notes.append(f"  another beat started in its place ({_since(fault_at)})")
        return beat

    def _strike(self, scenario, row, due, server, workers, workdir) -> float:
        """Cause the scenario's fault; when it struck (a wall-clock time)."""
        if scenario.fault == "server":
            how = "ignoring" if not scenario.honour_idempotency else "honouring"
            row.notes.append(
                f"fault: from the start, the server stores every {scenario.fail_every}th new "
                f"status and answers it 502, {how} Idempotency-Key; times count from due"
            )
            return due.timestamp()
        wanted = max(1, math.ceil(self.args.fault_at * row.targets))
        reached = _wait_for(lambda: server.made() >= wanted, due.timestamp() + 120)
        if not reached:
            row.notes.append(
                f"the server had only {server.made()} of the {wanted} statuses wanted before "
                "the fault, 120 s after due: it struck anyway"
            )
        on_server = server.made()
        if scenario.fault == "kill":
            victim = workers[0]
            sending = _sends_in_flight(victim.name)
            struck = time.time()
            victim.kill()
            self.gone.add(victim.name)
            _progress(f"({scenario.key}) killed {victim.name}; starting another")
            [replacement] = self._start_workers(workdir, 1)
            workers.append(replacement)
            row.notes.append(
                f"fault: {victim.name} SIGKILLed with its pool at {on_server} statuses on the "
                f"server, {sending} of its targets sending; another worker ready "
                f"{time.time() - struck:.1f} s later"
            )
            return struck
        if scenario.fault == "redis":
            struck = time.time()
            self.redis.restart(down_for=REDIS_DOWN_SECONDS)
            row.notes.append(
                f"fault: Redis killed at {on_server} statuses on the server, back empty "
                f"{time.time() - struck:.1f} s later"
            )
            return struck
        struck = time.time()
        cut = _terminate_worker_connections(self.admin)
        row.notes.append(
            f"fault: {cut} database connections of the workers terminated at {on_server} "
            "statuses on the server"
        )
        return struck


def _since(fault_at: float) -> str:
    return f"{time.time() - fault_at:+.1f} s from the fault"


def _exit_note(name: str, process: subprocess.Popen, log: Path, fault_at: float) -> str:
    """Which process exited, when, and the last thing it said that explains it."""
    text = log.read_text(errors="replace") if log.exists() else ""
    lines = [line for line in text.splitlines() if "CRITICAL" in line or "Unrecoverable" in line]
    said = lines[-1].split(" ", 3)[-1][:200] if lines else "(nothing logged)"
    return f"{name} exited by itself (status {process.returncode}, seen {_since(fault_at)}): {said}"


def _wait_for(predicate, until: float) -> bool:
    while not predicate():
        if time.time() > until:
            return False
        time.sleep(0.05)
    return True


def _sends_in_flight(worker_name: str) -> int:
    from publishing.models import PublishAttempt

    return PublishAttempt.objects.filter(
        finished_at__isnull=True, worker__startswith=f"{worker_name}@"
    ).count()


def _terminate_worker_connections(admin: str) -> int:
    """(d): the workers' connections to this bench's scratch database, and nothing else."""
    import psycopg

    with psycopg.connect(admin, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = %s AND pid <> pg_backend_pid()",
            [SCRATCH_DB, WORKER_APPLICATION_NAME],
        ).fetchone()
    return int(row[0])


def _organisation(server: MastodonServer):
    from accounts.models import Membership, Role, Team, User
    from networks.models import Channel, SocialAccount

    team = Team.objects.add_root(create_kwargs={"name": "Chaos desk", "slug": "chaos"})
    author = User.objects.create(username="author")
    Membership.objects.create(user=author, team=team, role=Role.DRAFTER)
    accounts = []
    for number in range(ACCOUNTS):
        token = f"chaos-token-{number}"
        username = f"desk{number}"
        account = SocialAccount(
            team=team,
            channel=Channel.MASTODON,
            handle=f"@{username}@chaos.example",
            base_url=server.url,
            # What connecting stores (verify_credentials' id).
            external_id=server.add_account(token=token, username=username),
        )
        account.set_tokens(access_token=token)
        accounts.append(account)
    SocialAccount.objects.bulk_create(accounts)
    return team, author, list(SocialAccount.objects.filter(team=team).order_by("id"))


def _write_targets(team, author, accounts, targets: int) -> tuple[datetime, list[int]]:
    """Approved posts due LEAD_SECONDS from now, written in one transaction, as bench/dispatch.py
    writes them (what post_approved leaves: scheduled, targets waiting, approved hash)."""
    from django.db import transaction
    from django.utils import timezone

    from tests.integration.dispatch_support import bulk_due_posts

    due = timezone.now() + timedelta(seconds=LEAD_SECONDS)
    with transaction.atomic():
        ids = bulk_due_posts(
            author=author,
            team=team,
            accounts=accounts,
            posts=targets // PER_POST,
            per_post=PER_POST,
            due=due,
            text=TEXT,
        )
    if timezone.now() > due - timedelta(seconds=1):
        _progress("(writing the targets took most of the lead time: lateness includes it)")
    return due, ids


# Figures ------------------------------------------------------------------------------------------
def _fold(text: str) -> str:
    return " ".join(text.split())


def _measure(row: Row, ids: list[int], due: datetime, server: MastodonServer) -> None:
    from publishing.models import PostTarget

    targets = list(
        PostTarget.objects.filter(pk__in=ids).values(
            "pk",
            "idempotency_key",
            "status",
            "held_reason",
            "published_at",
            "external_id",
            "last_error",
            "social_account__external_id",
            "post__body",
        )
    )
    by_key = {(t["social_account__external_id"], str(t["idempotency_key"])): t for t in targets}
    by_text = {(t["social_account__external_id"], _fold(t["post__body"])): t for t in targets}
    on_server: dict[int, list] = defaultdict(list)
    strays = 0
    statuses = server.statuses()
    for status in statuses:
        target = by_key.get((status.account_id, status.idempotency_key)) or by_text.get(
            (status.account_id, _fold(status.text))
        )
        if target is None:
            strays += 1
        else:
            on_server[target["pk"]].append(status)

    states = Counter(t["status"] for t in targets)
    row.duplicates = strays + sum(len(found) - 1 for found in on_server.values())
    row.lost = sum(1 for t in targets if t["status"] in FINAL and not on_server[t["pk"]])
    row.wrongly_failed = sum(1 for t in targets if t["status"] == "failed" and on_server[t["pk"]])
    row.stuck = sum(states[status] for status in UNSETTLED)
    row.held = states["held"]
    lateness = sorted(
        (t["published_at"] - due).total_seconds()
        for t in targets
        if t["status"] == "published" and t["published_at"]
    )
    if lateness:
        row.lateness_p99 = lateness[math.ceil(0.99 * len(lateness)) - 1]

    counters = server.counters
    row.notes.append(
        f"server: {len(statuses):,} statuses made ({counters.bad_gateway} answered 502), "
        f"{counters.posts:,} posts received, {counters.replayed} answered from their "
        f"Idempotency-Key, {counters.reads} timeline reads, {counters.refused} refused"
    )
    row.notes.append("cxhub: " + ", ".join(f"{n:,} {s}" for s, n in states.most_common()))
    copies = Counter(len(found) for found in on_server.values() if len(found) > 1)
    if copies or strays:
        row.notes.append(
            "duplicates: "
            + ", ".join(f"{n} targets {c} times" for c, n in sorted(copies.items()))
            + (f", {strays} statuses matching no target" if strays else "")
        )
    wrong_ids = sum(
        1
        for t in targets
        if t["status"] == "published"
        and on_server[t["pk"]]
        and t["external_id"] not in {s.id for s in on_server[t["pk"]]}
    )
    if wrong_ids:
        row.notes.append(f"{wrong_ids} published targets hold an id that is not their status")
    for status in ("failed", "held"):
        reasons = Counter(
            (t["held_reason"] + ": " if status == "held" else "") + _fold(t["last_error"])[:160]
            for t in targets
            if t["status"] == status
        )
        for reason, count in reasons.most_common(3):
            row.notes.append(f"{status} ({count}): {reason or '(no reason given)'}")


# The table ----------------------------------------------------------------------------------------
COLUMNS = (
    ("scenario", 26),
    ("N", 6),
    ("duplicates", 10),
    ("lost", 5),
    ("wrongly failed", 14),
    ("stuck", 6),
    ("held", 5),
    ("settled after fault", 19),
    ("lateness p99", 12),
    ("target", 7),
)


def _line(cells: list[str]) -> str:
    out = []
    for index, (cell, (_, width)) in enumerate(zip(cells, COLUMNS, strict=True)):
        out.append(cell.ljust(width) if index == 0 else cell.rjust(width))
    return "  ".join(out)


def _print_row(row: Row, args: argparse.Namespace) -> None:
    name = f"({row.scenario.key}) {row.scenario.label}"
    if row.error:
        blank = ["—"] * (len(COLUMNS) - 3)
        print(_line([name, f"{row.targets:,}", *blank, "error"]))
        return
    if row.settled_after is None:
        settled = f"not in {args.settle_seconds:g} s"
    else:
        settled = f"{row.settled_after:.1f} s"
    p99 = f"{row.lateness_p99:.1f} s" if row.lateness_p99 is not None else "—"
    print(
        _line(
            [
                name,
                f"{row.targets:,}",
                str(row.duplicates),
                str(row.lost),
                str(row.wrongly_failed),
                str(row.stuck),
                str(row.held),
                settled,
                p99,
                "met" if row.met(args.settle_target) else "NOT met",
            ]
        )
    )


if __name__ == "__main__":
    sys.exit(main())
