"""A publish group's sends go out at the same time, in lanes (publishing/dispatch/lanes.py), and
stay polite: sites on 127.0.0.1 count the requests they hold at once, per host and per account,
and the test fails when a cap is passed; a slow or refusing host does not hold up another; an
account's posts keep their order; and each post reaches its site once."""

import signal
import threading
import time
from collections import defaultdict
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from celery import current_app
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from publishing import freezes
from publishing.dispatch import claim, common, lanes, slots
from publishing.dispatch.common import HOLD_FREEZE
from publishing.dispatch.send import publish_targets
from publishing.models import Post, PostTarget, PublishAttempt, TargetStatus

from ..integration.dispatch_harness import wait_until
from ..integration.dispatch_support import bulk_due_posts, webhook_account

pytestmark = pytest.mark.django_db(transaction=True)  # the lanes' threads read committed rows


class Sites:
    """Sites on their own ports; an account is a path. Each answers after `delay[port]`
    seconds, or 429 when `refuse[port]`; records when each request came and went."""

    def __init__(self, hosts: int, delay: float = 0.2):
        self.lock = threading.Lock()
        self.in_flight = defaultdict(int)  # by host, and by account path
        self.most = defaultdict(int)
        self.seen: list[tuple[str, str, float, float, str]] = []  # host, path, came, went, key
        self.stored = defaultdict(int)
        self.delay: dict[str, float] = {}
        self.refuse: set[str] = set()
        # A host may hold each answer until an event (then `delay` does not apply to it)
        self.hold: dict[str, threading.Event] = {}
        self.answered = defaultdict(int)  # 201s by host
        self.releases: dict[str, threading.Event] = {}  # set at a host's fourth 201
        self.looked: list[str] = []  # the keys asked for (GET ?idempotency_key=)
        self.limit_headers: dict[str, dict[str, str]] = {}  # extra headers by account path
        self.servers = [
            ThreadingHTTPServer(("127.0.0.1", 0), self._handler()) for _ in range(hosts)
        ]
        for server in self.servers:
            server.daemon_threads = True
            self.delay[self.host(server)] = delay
            threading.Thread(target=server.serve_forever, daemon=True).start()

    @staticmethod
    def host(server) -> str:
        return f"127.0.0.1:{server.server_address[1]}"

    def url(self, host: int, account: str) -> str:
        return f"http://{self.host(self.servers[host])}/hook/{account}"

    def close(self):
        for server in self.servers:
            server.shutdown()
            server.server_close()

    def _handler(sites):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                host, path = self.headers["Host"], self.path
                key = self.headers.get("Idempotency-Key", "")
                came = time.monotonic()
                with sites.lock:
                    for name in (host, path):
                        sites.in_flight[name] += 1
                        sites.most[name] = max(sites.most[name], sites.in_flight[name])
                if host in sites.refuse:
                    status, body = 429, b'{"error": "slow down"}'
                else:
                    if host in sites.hold:
                        sites.hold[host].wait(10)
                    else:
                        time.sleep(sites.delay[host])
                    status, body = (
                        201,
                        b'{"id": "%s", "url": "https://x.example/%s"}'
                        % (
                            key.encode(),
                            key.encode(),
                        ),
                    )
                with sites.lock:
                    for name in (host, path):
                        sites.in_flight[name] -= 1
                    sites.seen.append((host, path, came, time.monotonic(), key))
                    if status == 201:
                        sites.stored[key] += 1
                        sites.answered[host] += 1
                        if sites.answered[host] == 4 and host in sites.releases:
                            sites.releases[host].set()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if status == 429:
                    self.send_header("Retry-After", "30")
                for name, value in sites.limit_headers.get(path, {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                # The webhook's reconcile: the post stored under an idempotency key, or 404
                key = parse_qs(urlsplit(self.path).query).get("idempotency_key", [""])[0]
                with sites.lock:
                    sites.looked.append(key)
                    found = sites.stored.get(key, 0) > 0
                status = 200 if found else 404
                body = b'{"id": "%s", "url": "https://x.example/%s"}' % (key.encode(), key.encode())
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body) if found else 0))
                self.end_headers()
                if found:
                    self.wfile.write(body)

        return Handler


@pytest.fixture
def sites():
    made = []

    def make(hosts: int, delay: float = 0.2) -> Sites:
        made.append(Sites(hosts, delay))
        return made[-1]

    yield make
    for site in made:
        site.close()


@pytest.fixture(autouse=True)
def lane_settings(settings):
    settings.CXHUB_PUBLISH_THREADS = 8
    settings.CXHUB_PUBLISH_PER_HOST = 3
    settings.CXHUB_PUBLISH_PER_ACCOUNT = 1
    settings.CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS = ["127.0.0.1/32"]
    settings.CXHUB_PUBLISH_GROUP_SIZE = 100
    yield
    slots.close()  # this process's slot connection, before the test database goes


def _accounts(org, site: Sites, count: int, hosts: int):
    return [
        webhook_account(org["north"], site.url(n % hosts, f"a{n}"), handle=f"a{n}")
        for n in range(count)
    ]


def _queued(author, org, accounts, posts: int, per_post: int) -> list[int]:
    ids = bulk_due_posts(
        author=author, team=org["north"], accounts=accounts, posts=posts, per_post=per_post
    )
    claim.dispatch_due()
    assert PostTarget.objects.filter(pk__in=ids, status=TargetStatus.QUEUED).count() == len(ids)
    return sorted(ids)


def test_the_caps_hold_while_sends_go_out_together(author, org, sites):
    site = sites(hosts=2, delay=0.2)
    accounts = _accounts(org, site, 12, hosts=2)
    ids = _queued(author, org, accounts, posts=12, per_post=2)  # 24 targets, 2 per account

    done = publish_targets(target_ids=ids)

    assert set(done.values()) == {"published"}
    assert sorted(site.stored.values()) == [1] * 24  # each post reached its site once
    hosts = [Sites.host(server) for server in site.servers]
    paths = {f"/hook/a{n}" for n in range(12)}
    assert max(site.most[host] for host in hosts) == 3  # the cap reached, never passed
    assert max(site.most[path] for path in paths) == 1
    # and they went out together: the sites held three at once on a host (counted, not timed)


def test_an_accounts_posts_go_out_in_their_order(author, org, sites):
    site = sites(hosts=1, delay=0.05)
    accounts = _accounts(org, site, 2, hosts=1)
    ids = _queued(author, org, accounts, posts=8, per_post=1)  # 4 posts per account

    publish_targets(target_ids=ids)

    keys = {
        str(key): pk
        for pk, key in PostTarget.objects.filter(pk__in=ids).values_list("pk", "idempotency_key")
    }
    for account in ("/hook/a0", "/hook/a1"):
        arrived = [
            keys[key]
            for _h, path, came, _w, key in sorted(site.seen, key=lambda s: s[2])
            if path == account
        ]
        assert arrived == sorted(arrived) and len(arrived) == 4


def test_a_slow_host_does_not_hold_up_another(author, org, sites):
    site = sites(hosts=2, delay=0.05)
    slow, fast = (Sites.host(server) for server in site.servers)
    # The slow host answers nothing until the fast one has answered all four of its posts: one
    # send at a time would leave them waiting behind it (for 10 s, then in the wrong order)
    site.hold[slow] = site.releases[fast] = threading.Event()
    accounts = _accounts(org, site, 8, hosts=2)  # even accounts on the slow host
    ids = _queued(author, org, accounts, posts=8, per_post=1)

    publish_targets(target_ids=ids)

    first_slow_answer = min(went for host, _p, _c, went, _k in site.seen if host == slow)
    fast_answers = [went for host, _p, _c, went, _k in site.seen if host == fast]
    assert len(fast_answers) == 4
    assert max(fast_answers) < first_slow_answer  # all of them, before the slow host's first
    assert sorted(site.stored.values()) == [1] * 8


def test_a_host_that_answers_429_slows_its_targets_not_the_others(author, org, sites):
    site = sites(hosts=2, delay=0.05)
    refusing = Sites.host(site.servers[0])
    site.refuse.add(refusing)
    accounts = _accounts(org, site, 6, hosts=2)
    ids = _queued(author, org, accounts, posts=6, per_post=1)

    done = publish_targets(target_ids=ids)

    by_account = dict(
        PostTarget.objects.filter(pk__in=ids).values_list("social_account__handle", "status")
    )
    assert {by_account[f"a{n}"] for n in (1, 3, 5)} == {TargetStatus.PUBLISHED}
    assert {by_account[f"a{n}"] for n in (0, 2, 4)} == {TargetStatus.WAITING}  # retried later
    assert sorted(done.values()) == ["published"] * 3 + ["retryable"] * 3


def test_lanes_keep_each_accounts_sends_in_order_within_their_cap():
    def send(target, account):
        return SimpleNamespace(target_id=target, account=SimpleNamespace(pk=account))

    group = [send(1, "a"), send(2, "b"), send(3, "a"), send(4, "a"), send(5, "c"), send(6, "b")]
    one = lanes.lanes_of(group, per_account=1)
    assert [[s.target_id for s in lane] for lane in one] == [[1, 3, 4], [2, 6], [5]]
    two = lanes.lanes_of(group, per_account=2)
    assert [[s.target_id for s in lane] for lane in two] == [[1, 4], [2], [3], [5], [6]]


def test_when_the_time_limit_strikes_a_send_under_way_is_unknown_and_the_rest_not_sent(
    monkeypatch,
):
    """The soft time limit comes to the task's own thread (a signal, as billiard sends it) while
    it waits on the lanes: the finished send keeps its answer, the one under way is looked for
    before any retry, the one waiting behind it was not sent."""
    release = threading.Event()

    def send(target, account, base_url):
        return SimpleNamespace(
            target_id=target,
            channel="webhook",
            account=SimpleNamespace(pk=account, base_url=base_url),
        )

    slow, waiting, quick = (
        send(1, "a", "https://slow.example/a"),
        send(2, "a", "https://slow.example/a"),  # after it in its account's lane
        send(3, "c", "https://quick.example/c"),
    )

    quick_done = threading.Event()

    def talk(item):
        if item is slow:
            # The limit strikes once the quick send's answer is recorded, while this one is out
            quick_done.wait(10)
            signal.setitimer(signal.ITIMER_REAL, 0.01)
            release.wait(10)
        return SimpleNamespace(outcome="published", target=item.target_id)

    recorded = lanes._GroupState.finish

    def finish(state, item, result, ms):
        recorded(state, item, result, ms)
        if item is quick:
            quick_done.set()

    monkeypatch.setattr(lanes._GroupState, "finish", finish)

    def strike(*_):
        raise SoftTimeLimitExceeded()

    previous = signal.signal(signal.SIGALRM, strike)
    try:
        results = lanes.send_all(
            [slow, waiting, quick],
            talk,
            began=time.monotonic(),
            budget=60,
            not_sent=lambda: SimpleNamespace(outcome="not sent"),
            time_ran_out="time ran out",
        )
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        release.set()
    outcomes = {item.target_id: result.outcome for item, result, _ms in results}
    assert outcomes == {1: PublishAttempt.Outcome.UNKNOWN, 2: "not sent", 3: "published"}


# Groups at once: a worker process's next task claims its group while the last one's sends are
# still out (lanes.in_background) ------------------------------------------------------------------
def test_a_process_sends_its_next_group_while_the_last_one_waits_on_its_network(
    author, org, sites, settings
):
    settings.CXHUB_PUBLISH_GROUPS_AT_ONCE = 2
    site = sites(hosts=2, delay=0.05)
    slow, fast = (Sites.host(server) for server in site.servers)
    # The slow host answers nothing until the fast one has answered four posts, which only
    # the next group has: one group at a time, the first would wait 10 s and the test fails
    site.hold[slow] = site.releases[fast] = threading.Event()
    slow_accounts = [
        webhook_account(org["north"], site.url(0, f"s{n}"), handle=f"s{n}") for n in range(4)
    ]
    fast_accounts = [
        webhook_account(org["north"], site.url(1, f"f{n}"), handle=f"f{n}") for n in range(4)
    ]
    first = _queued(author, org, slow_accounts, posts=4, per_post=1)
    second = _queued(author, org, fast_accounts, posts=4, per_post=1)

    handed = publish_targets(target_ids=first, in_background=True)
    assert set(handed.values()) == {"sending"}
    publish_targets(target_ids=second, in_background=True)
    assert lanes.drain(timeout=30)

    first_slow_answer = min(went for host, _p, _c, went, _k in site.seen if host == slow)
    fast_answers = [went for host, _p, _c, went, _k in site.seen if host == fast]
    assert len(fast_answers) == 4 and max(fast_answers) < first_slow_answer
    assert sorted(site.stored.values()) == [1] * 8  # each post reached its site once
    statuses = PostTarget.objects.filter(pk__in=first + second).values_list("status", flat=True)
    assert set(statuses) == {TargetStatus.PUBLISHED}
    assert PublishAttempt.objects.filter(target__in=first + second).count() == 8


def test_a_group_in_its_own_thread_stops_at_the_tasks_time_limit(
    author, org, sites, settings, monkeypatch
):
    """No task's soft time limit reaches a group that runs on after its task returned: the group
    has the same limit of its own. The send under way then is looked for before any retry."""
    settings.CXHUB_PUBLISH_GROUPS_AT_ONCE = 2
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 1
    site = sites(hosts=1, delay=0.05)
    host = Sites.host(site.servers[0])
    held = site.hold[host] = threading.Event()
    accounts = _accounts(org, site, 1, hosts=1)
    ids = _queued(author, org, accounts, posts=1, per_post=1)
    # The group's wait ends at its limit; here, once its send is out (an event, not a clock):
    # how long a loaded machine takes to get the send out does not decide the outcome
    limits = []
    real_wait = lanes.wait

    def wait_past_the_limit(futures, timeout):
        limits.append(timeout)
        wait_until(lambda: site.in_flight[host] == 1, timeout=30, what="the send under way")
        return real_wait(futures, timeout=0)

    monkeypatch.setattr(lanes, "wait", wait_past_the_limit)
    try:
        publish_targets(target_ids=ids, in_background=True)
        assert lanes.drain(timeout=30)
    finally:
        held.set()
    assert len(limits) == 1 and limits[0] <= 1  # the task's soft time limit, from its start
    attempt = PublishAttempt.objects.get(target_id=ids[0])
    assert attempt.outcome == PublishAttempt.Outcome.UNKNOWN
    assert PostTarget.objects.get(pk=ids[0]).needs_reconcile


def test_a_process_runs_no_more_groups_at_once_than_it_may():
    groups = lanes._Groups()
    groups.enter(2)
    groups.enter(2)
    entered = threading.Event()
    third = threading.Thread(target=lambda: (groups.enter(2), entered.set()), daemon=True)
    third.start()
    assert not entered.wait(0.3)  # the third waits for one of the two …
    groups.leave()
    assert entered.wait(10)  # … and goes once one ends
    assert groups.running == 2
    assert not groups.drain(timeout=0)
    groups.leave()
    groups.leave()
    assert groups.drain(timeout=0)


def test_a_freeze_stops_the_sends_a_group_has_not_made_yet(author, org, lead, sites, monkeypatch):
    """A group claimed before a freeze: its send under way finishes, the ones still waiting for
    their account's turn are not made, and their targets are held until the freeze is lifted."""
    monkeypatch.setattr(common, "FREEZE_RECHECK_SECONDS", 0)  # each send reads the freezes
    site = sites(hosts=1, delay=0.05)
    host = Sites.host(site.servers[0])
    held = site.hold[host] = threading.Event()
    accounts = _accounts(org, site, 1, hosts=1)
    ids = _queued(author, org, accounts, posts=3, per_post=1)  # one account: one at a time
    done = {}
    group = threading.Thread(target=lambda: done.update(publish_targets(target_ids=ids)))
    group.start()
    try:
        wait_until(lambda: site.in_flight[host] == 1, timeout=30, what="the first send out")
        freeze = freezes.freeze_create(by=lead, scope="everything", reason="Incident")
    finally:
        held.set()
        group.join(30)

    assert sorted(site.stored.values()) == [1]  # only the send under way reached the site
    first, *rest = ids
    assert PostTarget.objects.get(pk=first).status == TargetStatus.PUBLISHED
    for pk in rest:
        target = PostTarget.objects.get(pk=pk)
        assert (target.status, target.held_reason) == (TargetStatus.HELD, HOLD_FREEZE)
        assert target.attempt_count == 0  # nothing was tried
        attempt = PublishAttempt.objects.get(target=target)
        assert attempt.outcome == PublishAttempt.Outcome.SKIPPED
        assert f"freeze {freeze.pk}" in attempt.error
    assert done == {first: "published", **{pk: PublishAttempt.Outcome.SKIPPED for pk in rest}}

    freezes.freeze_lift(freeze=freeze, by=lead, reason="Over")
    statuses = PostTarget.objects.filter(pk__in=rest).values_list("status", flat=True)
    assert set(statuses) == {TargetStatus.WAITING}  # and the dispatcher sends them


def _twenty_accounts_due_now(site: Sites, org, settings):
    """Twenty accounts on one site, groups of 25, and a due time on the second (posts due at
    the same moment)."""
    settings.CXHUB_PUBLISH_GROUP_SIZE = 25
    return _accounts(org, site, 20, hosts=1), timezone.now().replace(microsecond=0)


def test_an_urgent_post_goes_out_before_500_routine_ones_due_at_the_same_second(
    author, org, sites, monkeypatch, settings
):
    accounts, due = _twenty_accounts_due_now(sites(hosts=1, delay=0), org, settings)
    routine = bulk_due_posts(
        author=author, team=org["north"], accounts=accounts, posts=500, due=due
    )
    (urgent,) = bulk_due_posts(
        author=author, team=org["north"], accounts=accounts, posts=1, due=due, text="Urgent"
    )
    Post.objects.filter(targets=urgent).update(urgent=True)  # written last, the highest ids
    queued = []
    task = current_app.tasks["publishing.tasks.publish_targets"]
    monkeypatch.setattr(task, "delay", lambda group: queued.append(group))
    monkeypatch.setattr(task, "apply_async", lambda args, **options: queued.append(args[0]))

    claim.dispatch_due(batch_size=100)  # in six batches: the urgent one is in the first

    assert queued[0][0] == urgent  # the first task the workers take
    assert sorted(pk for group in queued for pk in group) == sorted([*routine, urgent])
    publish_targets(target_ids=queued[0])  # a worker takes it
    assert PostTarget.objects.get(pk=urgent).status == TargetStatus.PUBLISHED
    first_sent = PublishAttempt.objects.order_by("started_at", "pk").first()
    assert first_sent.target_id in queued[0]
    assert PostTarget.objects.filter(pk__in=routine, status=TargetStatus.PUBLISHED).count() < 25


def test_an_account_whose_rate_limit_is_spent_waits_for_the_reset_and_no_other_does(
    author, org, sites
):
    """The site says after one call that a0 has none left until a minute from now (Mastodon's
    X-RateLimit-* headers): a0's other posts are not sent (they would earn 429s) and are due at
    the reset; a1 sends all of its own."""
    site = sites(hosts=1, delay=0.01)
    accounts = _accounts(org, site, 2, hosts=1)
    reset = (timezone.now() + timedelta(seconds=60)).replace(microsecond=0)
    site.limit_headers["/hook/a0"] = {
        "X-RateLimit-Limit": "300",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": reset.isoformat().replace("+00:00", "Z"),
    }
    ids = _queued(author, org, accounts, posts=6, per_post=1)  # three each, in turn

    done = publish_targets(target_ids=ids)

    mine = {
        pk: handle
        for pk, handle in PostTarget.objects.filter(pk__in=ids).values_list(
            "pk", "social_account__handle"
        )
    }
    a0 = sorted(pk for pk in ids if mine[pk] == "a0")
    a1 = sorted(pk for pk in ids if mine[pk] == "a1")
    assert [done[pk] for pk in a1] == ["published"] * 3
    assert done[a0[0]] == "published"
    assert sum(1 for _h, path, *_ in site.seen if path == "/hook/a0") == 1  # no call wasted
    for pk in a0[1:]:
        target = PostTarget.objects.get(pk=pk)
        assert (target.status, target.attempt_count) == (TargetStatus.WAITING, 0)
        assert abs((target.next_attempt_at - reset).total_seconds()) < 3
        assert "rate limit" in target.attempts.get().error


def test_retries_due_at_the_same_moment_do_not_go_before_a_first_try(author, org, sites, settings):
    accounts, due = _twenty_accounts_due_now(sites(hosts=1, delay=0), org, settings)
    retries = bulk_due_posts(
        author=author, team=org["north"], accounts=accounts, posts=300, due=due
    )
    PostTarget.objects.filter(pk__in=retries).update(attempt_count=2)  # tried twice before
    (first_try,) = bulk_due_posts(
        author=author, team=org["north"], accounts=accounts, posts=1, due=due, text="New"
    )

    result = claim.dispatch_due(batch_size=100, max_batches=1)  # room for a third of them

    assert first_try in result.queued
    assert PostTarget.objects.get(pk=first_try).status == TargetStatus.QUEUED


def test_a_slot_given_back_in_the_process_is_taken_by_its_waiter_at_once(monkeypatch):
    """A lane waiting for a host's slot does not sleep out its pause when a lane of its own
    process gives one back (here the pause would be a minute)."""
    monkeypatch.setattr(slots, "_FIRST_PAUSE", 60.0)
    monkeypatch.setattr(slots, "_LONGEST_PAUSE", 60.0)
    stop = threading.Event()
    give_back = slots.take("host:waiting.example", 1, stop=stop)
    taken = threading.Event()

    def waiter():
        again = slots.take("host:waiting.example", 1, stop=stop)
        taken.set()
        again()

    threading.Thread(target=waiter, daemon=True).start()
    try:
        assert not taken.wait(0.3)  # every slot is held: it waits …
        give_back()
        assert taken.wait(10)  # … and takes the one given back, not a minute later
    finally:
        stop.set()
