"""Benchmarks of the audit trail on PostgreSQL (issue 7, item 6).

(a) The cost of recording: a service with its audit event against the same service without it,
    under concurrent writers, each thread on its own connection, while the sealer folds the
    events into the Merkle tree and signs checkpoints in another process (as a worker would, off
    the request path). Two services: the least one (a transaction that locks a row, changes it
    and saves it: the event is one statement of three, the worst case), and a real one
    (publishing.services.post_update changing a draft's body; without the event, the same
    service with its audit writer replaced by one that writes nothing).
(b) Export throughput: rows per second of the CSV export for a long trail (1,000,000 events by
    default), through the generator the API view streams, with its peak memory (tracemalloc's
    peak, and the growth of the process's resident set).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/audit.py [--events N]

The server in DATABASE_URL is used only for a scratch database, cxhub_bench_audit, created at the
start and dropped at the end; the database the URL names is only connected to, to do that.
"""

import argparse
import contextlib
import gc
import os
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

try:
    from bench import rows, scratch
except ImportError:  # run as a script: bench/ itself is first on sys.path
    import rows
    import scratch

ROOT = Path(__file__).resolve().parents[1]
SCRATCH_DB = "cxhub_bench_audit"


class _Refused(Exception):
    """Why the bench will not run here; printed, exit status 2."""


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        admin = _admin_conninfo(os.environ.get("DATABASE_URL", ""))
        _recreate_scratch(admin)
    except _Refused as refused:
        print(f"bench/audit.py: {refused}", file=sys.stderr)
        return 2
    try:
        _setup_django(
            urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{SCRATCH_DB}"))
        )
        from django.db import connections

        try:
            began = time.perf_counter()
            print(f"PostgreSQL scratch database {SCRATCH_DB}; {os.cpu_count()} CPU(s)")
            people = _organisation(writers=args.writers)
            _bench_recording(people, writers=args.writers, calls=args.calls, rounds=args.rounds)
            _bench_export(people, args=args)
            print(f"bench took {time.perf_counter() - began:.0f} s")
        finally:
            connections.close_all()
    finally:
        _drop_scratch(admin)
    return 0


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=8, help="concurrent writer threads (8)")
    parser.add_argument("--calls", type=int, default=250, help="calls per writer and round (250)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each mode (3)")
    parser.add_argument(
        "--events", type=int, default=1_000_000, help="events to export (1,000,000)"
    )
    parser.add_argument("--batch-size", type=int, default=None, help="export batch (the view's)")
    parser.add_argument("--jsonl", action="store_true", help="time the JSON Lines export too")
    parser.add_argument(
        "--trace-rows",
        type=int,
        default=200_000,
        help="rows of the export traced by tracemalloc, which slows it several times over "
        "(200,000; 0 for the whole export)",
    )
    args = parser.parse_args(argv)
    if min(args.writers, args.calls, args.rounds, args.events) < 1:
        parser.error("--writers, --calls, --rounds and --events must be at least 1")
    if (args.batch_size is not None and args.batch_size < 1) or args.trace_rows < 0:
        parser.error("--batch-size must be at least 1, --trace-rows at least 0")
    return args


# Scratch database ------------------------------------------------------------------------------


def _admin_conninfo(url: str) -> str:
    """A libpq conninfo for the database the URL names (only connected to, to create and drop
    the scratch database), or _Refused saying why not."""
    needs = (
        "it needs PostgreSQL (the cost of recording is writers waiting on each other, which "
        "SQLite cannot show): set DATABASE_URL=postgres://user@host:5432/dbname. It creates and "
        f"drops its own database, {SCRATCH_DB}, on that server and touches no other."
    )
    if not url:
        raise _Refused(f"DATABASE_URL is not set; {needs}")
    import dj_database_url
    from psycopg.conninfo import make_conninfo

    try:
        db = dj_database_url.parse(url)
    except Exception:
        raise _Refused(f"DATABASE_URL {_redacted(url)!r} is not a database URL; {needs}") from None
    if "postgresql" not in db["ENGINE"] and "postgis" not in db["ENGINE"]:
        raise _Refused(f"DATABASE_URL {_redacted(url)!r} is not PostgreSQL; {needs}")
    if db["NAME"] == SCRATCH_DB:
        raise _Refused(
            f"DATABASE_URL names {SCRATCH_DB}, the scratch database itself: name another"
        )
    parts = {
        "dbname": db["NAME"] or "postgres",
        "user": db["USER"],
        "password": db["PASSWORD"],
        "host": db["HOST"],
        "port": db["PORT"],
    }
    return make_conninfo(**{key: str(value) for key, value in parts.items() if value})


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
    return urlunsplit(parts)


def _recreate_scratch(admin: str) -> None:
    try:
        scratch.recreate(admin, SCRATCH_DB)
    except scratch.ScratchError as error:
        raise _Refused(str(error)) from None


def _drop_scratch(admin: str) -> None:
    scratch.drop(admin, SCRATCH_DB)


def _setup_django(scratch_url: str) -> None:
    os.environ["DATABASE_URL"] = scratch_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["DEBUG"] = "0"  # DEBUG would keep every query in memory
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    # Every app: the models used here (teams, users) carry other apps' columns too.
    call_command("migrate", verbosity=0)


# The cast ----------------------------------------------------------------------------------------


def _organisation(*, writers: int) -> dict:
    """HQ with one region per writer (each writer changes its own row, so only the audit chain
    is shared), a person per writer, and a lead of HQ who exports."""
    from accounts.models import Membership, Role, Team, User

    hq = Team.objects.add_root(create_kwargs={"name": "HQ", "slug": "hq"})
    regions = [
        Team.objects.add_child(hq, create_kwargs={"name": f"Region {n}", "slug": f"region-{n}"})
        for n in range(writers)
    ]
    people = [User.objects.create(username=f"writer{n}") for n in range(writers)]
    lead = User.objects.create(username="lead")
    Membership.objects.create(user=lead, team=hq, role=Role.LEAD)
    posts = [_draft(region, person) for region, person in zip(regions, people, strict=True)]
    return {"hq": hq, "regions": regions, "people": people, "lead": lead, "posts": posts}


def _draft(region, person) -> int:
    """The writer drafts for its region, with an account of the region: one draft post, which
    the real service of (a) edits."""
    from accounts.models import Membership, Role
    from networks.models import Channel, SocialAccount
    from publishing.services import TargetInput, post_create

    Membership.objects.create(user=person, team=region, role=Role.DRAFTER)
    account = SocialAccount(
        team=region, channel=Channel.WEBHOOK, handle=region.slug, base_url="https://example.org/"
    )
    account.set_tokens(access_token="not-used")
    account.save()
    post = post_create(
        by=person,
        team_id=region.pk,
        body="Draft rev 0",
        targets=[TargetInput(social_account_id=account.pk)],
    )
    return post.pk


# (a) The cost of recording -----------------------------------------------------------------------


def _service_call(index: int, people: dict, n: int, audited: bool) -> None:
    """The least a service does (STYLE §4): lock the row, change it, save it, record the event.
    The worst case for the ratio: the event is one of three statements."""
    from django.db import transaction

    from accounts.models import Team
    from audit.services import record

    team_id, by = people["regions"][index].pk, people["people"][index]
    with transaction.atomic():
        team = Team.objects.select_for_update().get(pk=team_id)
        old_name, team.name = team.name, f"Region {team_id} rev {n}"
        team.save(update_fields=["name"])
        if audited:
            record(
                actor=by,
                action="team.renamed",
                obj=team,
                team=team,
                data={"from": old_name, "to": team.name},
            )


def _edit_call(index: int, people: dict, n: int, audited: bool) -> None:
    """A real service: publishing.services.post_update changing the body of the writer's draft
    (lock, permission, targets, version snapshot, the event). Without the event, the same
    service with its audit writer replaced by one that writes nothing."""
    from publishing import services
    from publishing.models import Post

    post = Post.objects.get(pk=people["posts"][index])
    # Whether it records is set for the whole round (_audit_writer), not here.
    services.post_update(post=post, by=people["people"][index], body=f"Draft rev {n + 1}")


@contextlib.contextmanager
def _audit_writer(audited: bool):
    """publishing.services' audit writer as it is, or (audited=False) for the whole block, one
    writing nothing. Set around a round, before the writer threads start."""
    from publishing import services

    if audited:
        yield
        return
    real, services.record = services.record, _no_event
    try:
        yield
    finally:
        services.record = real


def _no_event(**kwargs) -> None:
    return None


def _backend_cpu_seconds(connection) -> float:
    """CPU time the PostgreSQL backend of this connection has used (same machine: its
    /proc/<pid>/schedstat, in nanoseconds); 0.0 where it cannot be read."""
    try:
        pid = connection.connection.info.backend_pid
        with open(f"/proc/{pid}/schedstat") as schedstat:
            return int(schedstat.read().split()[0]) / 1e9
    except (OSError, ValueError, AttributeError):
        return 0.0


def _run_writers(people: dict, call, *, calls: int, audited: bool) -> tuple[float, float]:
    """Seconds for every writer to make `calls` calls, all starting together; and the CPU
    seconds they cost: this process's and the writers' PostgreSQL backends'. Other work on the
    machine moves the CPU cost less than the seconds (through caches and waits, not turns)."""
    from django.db import connection

    writers = len(people["people"])
    start = threading.Barrier(writers + 1)
    errors: list[BaseException] = []
    server_cpu = [0.0] * writers

    def writer(index: int) -> None:
        try:
            connection.ensure_connection()  # connect before the clock starts
            began = _backend_cpu_seconds(connection)
            start.wait()
            for n in range(calls):
                call(index, people, n, audited)
            server_cpu[index] = _backend_cpu_seconds(connection) - began
        except BaseException as error:  # reported below
            errors.append(error)
            start.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(index,)) for index in range(writers)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a writer's error is raised below
        start.wait()
    began, cpu_began = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.join()
    seconds, client_cpu = time.perf_counter() - began, time.process_time() - cpu_began
    if errors:
        raise errors[0]
    return seconds, client_cpu + sum(server_cpu)


_SEALER_LOOP = """
import select, sys
import django
django.setup()
from audit.sealer import seal
every = float(sys.argv[1])
while not select.select([sys.stdin], [], [], every)[0]:
    seal()
seal()
"""


@contextlib.contextmanager
def _sealer_running(every: float):
    """The sealer in a process of its own, as a Celery worker runs it in production: it seals
    and signs every `every` seconds until the block ends (its stdin closes)."""
    sealer = subprocess.Popen(
        [sys.executable, "-c", _SEALER_LOOP, str(every)],
        cwd=ROOT,
        env={**os.environ},
        stdin=subprocess.PIPE,
    )
    try:
        yield
    finally:
        sealer.stdin.close()
        if sealer.wait(timeout=300) != 0:
            raise RuntimeError(f"the sealer process failed (exit status {sealer.returncode})")


def _bench_recording(people: dict, *, writers: int, calls: int, rounds: int) -> None:
    """Rounds alternate without and with the event, so a neighbour's load on a shared machine
    weighs on both; the medians are compared. The sealer runs in its own process throughout.
    Two services: the least one (the worst case for the ratio) and a real one."""
    from audit.models import AuditEvent
    from audit.sealer import seal

    services = [
        ("the least service (lock a row, update it, commit)", _service_call),
        ("a real service (publishing.services.post_update, a draft's body)", _edit_call),
    ]
    # One sealer process throughout (it idles through the rounds without events).
    with _sealer_running(every=1.0):
        for label, call in services:
            _compare(people, call, label=label, writers=writers, calls=calls, rounds=rounds)
    sealed = seal()
    events = AuditEvent.objects.count()
    print(f"    tree after the run: {sealed.after} leaves for {events} events")
    assert sealed.after == events, "an event is missing from the tree"


def _compare(people: dict, call, *, label: str, writers: int, calls: int, rounds: int) -> None:
    warm_up = max(1, calls // 10)
    total = writers * calls
    without, with_audit, cpu_without, cpu_with = [], [], [], []

    def round_of(count: int, audited: bool) -> tuple[float, float]:
        with _audit_writer(audited):
            return _run_writers(people, call, calls=count, audited=audited)

    round_of(warm_up, False)
    round_of(warm_up, True)
    for _ in range(rounds):
        seconds, cpu = round_of(calls, False)
        without.append(total / seconds)
        cpu_without.append(cpu / total)
        seconds, cpu = round_of(calls, True)
        with_audit.append(total / seconds)
        cpu_with.append(cpu / total)
    rate_without, rate_with = statistics.median(without), statistics.median(with_audit)
    ratios = sorted(plain / audited for plain, audited in zip(without, with_audit, strict=True))
    print(
        f"(a) cost of recording, {label}: {writers} writer threads x {calls} calls, "
        f"own connections, median of {rounds} rounds"
    )
    print(f"    without audit event: {rate_without:.0f} calls/s")
    print(f"    with audit event:    {rate_with:.0f} calls/s")
    print(
        f"    ratio with/without (time per call): {rate_without / rate_with:.2f} "
        f"(rounds: {', '.join(f'{ratio:.2f}' for ratio in ratios)})"
    )
    cpu_plain, cpu_audited = statistics.median(cpu_without), statistics.median(cpu_with)
    if cpu_plain > 0:
        cpu_ratios = sorted(a / p for p, a in zip(cpu_without, cpu_with, strict=True))
        print(
            f"    CPU per call, this process + its PostgreSQL backends: "
            f"{cpu_plain * 1e6:.0f} us without, {cpu_audited * 1e6:.0f} us with = "
            f"{cpu_audited / cpu_plain:.2f} (rounds: {', '.join(f'{r:.2f}' for r in cpu_ratios)}; "
            "less moved than seconds by other work on the machine)"
        )


# (b) Export throughput ---------------------------------------------------------------------------


def _insert_events(people: dict, *, count: int) -> None:
    """COPY the events in, then time the sealer folding them into the tree."""
    from audit.models import AuditEvent
    from audit.sealer import seal

    after = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    teams = [team.pk for team in [people["hq"], *people["regions"]]]
    actors = [(person.pk, person.username) for person in people["people"]]
    began = time.perf_counter()
    rows.copy_events(rows.event_rows(count=count, after_seq=after, teams=teams, actors=actors))
    print(f"    inserted {count} events in {time.perf_counter() - began:.1f} s (COPY)")
    began = time.perf_counter()
    sealed = seal()
    seconds = time.perf_counter() - began
    print(
        f"    sealed them into the tree in {seconds:.1f} s = {sealed.added / seconds:.0f} events/s "
        f"(one sealer; tree of {sealed.after} leaves, checkpoint signed)"
    )
    _bench_verification()


def _bench_verification() -> None:
    """The verifier's rate over the whole tree: every leaf recomputed from its event and the
    roots checked against the checkpoints (what `manage.py audit_verify` does for the tree),
    best of three runs, as on a shared machine the slowest say more about the neighbours."""
    from audit.verify_log import verify_log

    runs = []
    for _ in range(3):
        report = verify_log()
        assert report.ok, [finding.message for finding in report.findings]
        runs.append(report)
    best = max(runs, key=lambda report: report.events_per_second)
    print(
        f"    verified the tree: {best.leaves} events in {best.seconds:.1f} s = "
        f"{best.events_per_second:.0f} events/s (best of 3: "
        f"{', '.join(f'{report.events_per_second:.0f}' for report in runs)})"
    )


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _stream(people: dict, *, fmt: str, batch_size: int):
    """The whole trail as the view streams it: the lead's scope, keyset batches up to the chain
    head, the same chunk generator and response; the chunks, as bytes."""
    from audit.models import AuditEvent
    from audit.proofs import covering_checkpoint, verifier_keys
    from desk import exports, selectors

    below = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() + 1
    events = selectors.events_for(user=people["lead"])
    batches = selectors.event_batches(events, batch_size=batch_size, below_seq=below)
    proofs = exports.ExportProofs(checkpoint=covering_checkpoint(), verifier_keys=verifier_keys())
    return exports.streaming_response(batches, fmt=fmt, proofs=proofs).streaming_content


def _timed_export(people: dict, *, fmt: str, batch_size: int) -> tuple:
    """(rows, bytes, seconds, growth of the resident set in bytes) for the whole export."""
    stream = _stream(people, fmt=fmt, batch_size=batch_size)
    gc.collect()
    baseline = peak = _rss_bytes()
    size = lines = 0
    began = time.perf_counter()
    for chunk in stream:
        size += len(chunk)
        lines += chunk.count(b"\n")
        peak = max(peak, _rss_bytes())
    seconds = time.perf_counter() - began
    rows = lines - 1  # the CSV header row, or the JSON Lines header line
    if fmt == "csv":  # the checkpoint's note, a multi-line cell of the first row
        from audit.sealer import latest_checkpoint

        rows -= latest_checkpoint().note.count("\n")
    return rows, size, seconds, peak - baseline


def _traced_export(people: dict, *, batch_size: int, limit: int) -> tuple:
    """tracemalloc's peak over the CSV export: (rows read, peak after ten batches, peak after
    `limit` rows or the whole export when 0). Tracing slows Python down several times over."""
    stream = _stream(people, fmt="csv", batch_size=batch_size)
    gc.collect()
    tracemalloc.start()
    try:
        rows, early = -1, None  # the header line
        for chunk in stream:
            rows += chunk.count(b"\n")
            if early is None and rows >= 10 * batch_size:
                early = tracemalloc.get_traced_memory()[1]
            if limit and rows >= limit:
                break
        return rows, early, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _bench_export(people: dict, *, args) -> None:
    from desk.api.views import EXPORT_BATCH_SIZE

    batch_size = args.batch_size or EXPORT_BATCH_SIZE
    print(f"(b) export throughput: {args.events} events, batches of {batch_size}, as a lead of HQ")
    print("    (the events are sealed into the tree first: the sealer's throughput)")
    total = args.events + _count_recorded()
    _insert_events(people, count=args.events)

    rows, size, seconds, rss = _timed_export(people, fmt="csv", batch_size=batch_size)
    assert rows == total, (rows, total)
    print(
        f"    csv:   {rows} rows, {size / 2**20:.0f} MiB in {seconds:.1f} s = "
        f"{rows / seconds:.0f} rows/s"
    )
    print(f"    csv:   RSS growth during the whole export: {rss / 2**20:.1f} MiB")
    if args.jsonl:
        rows, size, seconds, rss = _timed_export(people, fmt="jsonl", batch_size=batch_size)
        print(
            f"    jsonl: {rows} rows, {size / 2**20:.0f} MiB in {seconds:.1f} s = "
            f"{rows / seconds:.0f} rows/s, RSS growth {rss / 2**20:.1f} MiB"
        )

    rows, early, peak = _traced_export(people, batch_size=batch_size, limit=args.trace_rows)
    if early is not None:
        print(f"    csv:   tracemalloc peak after {10 * batch_size} rows: {early / 2**20:.1f} MiB")
    print(f"    csv:   tracemalloc peak after {rows} rows: {peak / 2**20:.1f} MiB")


def _count_recorded() -> int:
    """Events recorded so far (part (a), the drafts made for it), all of HQ's teams: the lead's
    export includes them too."""
    from audit.models import AuditEvent

    return AuditEvent.objects.filter(team__isnull=False).count()


if __name__ == "__main__":
    sys.exit(main())
