"""The inbox against a real Bluesky network (issue 17): @atproto/dev-env's TestNetwork, a PDS with
the bsky AppView that answers listNotifications, getPosts and getPostThread (real_pds/
start_appview.mjs). A second account mentions ours and answers one of our posts; ingestion brings
both in; our replies, drafted from the items and approved, land in those threads as the AppView
shows them; a like of our post is counted.

The AppView keeps its data in PostgreSQL: each run gets a scratch database of its own
(cxhub_appview_<pid>_<random>, on the server DATABASE_URL names), created here and dropped at the
end, like everything the network started. Hence the `postgres` mark: on the embedded default
(SQLite) these tests are skipped. The AppView reads the PDS's firehose asynchronously: after each
write the tests ask the script to process it (`process_all`), and read only then.
"""

import contextlib
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote

import psycopg
import pytest
from atproto import Client, client_utils, models
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from inbox.ingestion import account_ingest, claim_due
from inbox.models import InboundItem, ItemStatus
from networks.channels import get_channel
from networks.channels.base import Engagement
from networks.models import Channel
from publishing import engagement
from publishing.dispatch import claim, send
from publishing.models import PostTarget, TargetMetrics, TargetStatus

from ...factories import SocialAccountFactory
from .test_bluesky_pds import NODE, REAL_PDS, _install_or_skip

pytestmark = [
    pytest.mark.peer,
    pytest.mark.postgres,
    pytest.mark.integration,
    # The first test may wait for the install (a few minutes with a cold npm cache).
    pytest.mark.timeout(900),
]

SCRIPT = "start_appview.mjs"
DATABASE_PREFIX = "cxhub_appview_"
# Bounds on waiting for the script, generous for a loaded 2-core machine: it starts in about
# 10 s on an idle one (migrating three schemas, starting six servers).
READY_SECONDS = 240
PROCESS_SECONDS = 150  # the script's processAll gives up after 60 s per stage
STOP_SECONDS = 45  # the script closes its servers within 20 s of stdin closing
CONNECT_SECONDS = 10


# The network ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Person:
    handle: str
    did: str
    password: str


@dataclass
class AppviewNetwork:
    """The running script: its addresses, its two accounts, and its AppView's queue."""

    pds: str
    appview: str
    desk: Person
    friend: Person
    desk_app_password: str
    started_seconds: float
    _output: "_Output" = field(repr=False)
    _process: subprocess.Popen = field(repr=False)
    _log: object = field(repr=False)
    _asked: int = 0
    process_timings: list[float] = field(default_factory=list)

    def process_all(self) -> None:
        """Have the AppView index everything the PDS has sequenced so far; returns once the
        script says it has (or fails the test)."""
        self._asked += 1
        ask = str(self._asked)
        begun = time.monotonic()
        try:
            self._process.stdin.write(f"process {ask}\n".encode())
            self._process.stdin.flush()
        except OSError as exc:
            _fail(f"the script no longer reads its commands ({exc})", self._process, self._log)
        deadline = begun + PROCESS_SECONDS
        while True:
            message = self._output.next(deadline)
            if message is None:
                _fail(
                    f"no answer to `process {ask}` (within {PROCESS_SECONDS} s)",
                    self._process,
                    self._log,
                )
            if message.get("id") != ask:
                continue
            if message["cxhub"] != "processed":
                _fail(f"`process {ask}` failed: {message.get('error')}", self._process, self._log)
            self.process_timings.append(time.monotonic() - begun)
            return


class _Output:
    """The script's stdout, read without blocking past a deadline: its protocol lines (JSON
    objects with a "cxhub" key) one at a time; anything else is skipped."""

    def __init__(self, process: subprocess.Popen):
        self.fd = process.stdout.fileno()
        self.buffer = b""
        self.closed = False

    def next(self, deadline: float) -> dict | None:
        """The next message, or None at the deadline or when the script closed its stdout."""
        while True:
            if b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                try:
                    data = json.loads(line)
                except ValueError:
                    continue
                if isinstance(data, dict) and "cxhub" in data:
                    return data
                continue
            left = deadline - time.monotonic()
            if self.closed or left <= 0:
                return None
            readable, _, _ = select.select([self.fd], [], [], min(left, 1.0))
            if readable:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    self.closed = True
                self.buffer += chunk


def _fail(why: str, process: subprocess.Popen, log) -> None:
    log.seek(0)
    said = log.read().decode(errors="replace")[-4000:]
    pytest.fail(f"the Bluesky network: {why} (exit code {process.poll()}); its stderr:\n{said}")


def _server() -> dict:
    """How to reach the PostgreSQL server of DATABASE_URL as its connecting user (the owner:
    tests/dbroles.py switches the suite's own connections to a restricted role through
    PGOPTIONS, which is left out here)."""
    db = settings.DATABASES["default"]
    return {
        "host": db.get("HOST") or "127.0.0.1",
        "port": int(db.get("PORT") or 5432),
        "user": db.get("USER") or "postgres",
        "password": db.get("PASSWORD") or "",
    }


def _admin(server: dict) -> psycopg.Connection:
    """A connection to the server's maintenance database, for CREATE and DROP DATABASE only."""
    return psycopg.connect(
        host=server["host"],
        port=server["port"],
        user=server["user"],
        password=server["password"] or None,
        dbname="postgres",
        options="",  # not PGOPTIONS' restricted role
        connect_timeout=CONNECT_SECONDS,
        autocommit=True,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _drop_stale(admin: psycopg.Connection, server: dict) -> None:
    """Scratch databases that an earlier run on this machine left (its process was killed
    before it could drop them): those whose pytest process is gone."""
    host = server["host"]
    if not (host.startswith("/") or host in ("127.0.0.1", "localhost", "::1")):
        return  # other machines' runs may use this server: their pids mean nothing here
    names = admin.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE %s", [DATABASE_PREFIX + "%"]
    ).fetchall()
    for (name,) in names:
        pid = name.removeprefix(DATABASE_PREFIX).partition("_")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _database_url(server: dict, name: str) -> str:
    user = quote(server["user"], safe="")
    password = f":{quote(server['password'], safe='')}" if server["password"] else ""
    if server["host"].startswith("/"):
        return f"postgres://{user}{password}@/{name}?host={quote(server['host'], safe='')}"
    host = f"[{server['host']}]" if ":" in server["host"] else server["host"]
    return f"postgres://{user}{password}@{host}:{server['port']}/{name}"


def _stop(process: subprocess.Popen) -> None:
    """Close the script's stdin (it closes its servers and exits); then its process group is
    sent SIGTERM, then SIGKILL, each only while the script has not ended (until it is reaped,
    its group id cannot belong to anything else)."""
    with contextlib.suppress(OSError):
        process.stdin.close()
    for sig, wait in ((None, STOP_SECONDS), (signal.SIGTERM, 10), (signal.SIGKILL, 30)):
        if process.poll() is not None:
            break
        if sig is not None:
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    process.stdout.close()


# Module-scoped: the network (six servers, about twenty PostgreSQL connections) does not outlive
# the tests that use it.
@pytest.fixture(scope="module")
def appview_network():
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        pytest.skip("needs PostgreSQL for the AppView's data (DATABASE_URL=postgres://…)")
    _install_or_skip()
    server = _server()
    name = f"{DATABASE_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
    try:
        admin = _admin(server)
    except psycopg.OperationalError as exc:
        pytest.skip(
            f"PostgreSQL at {server['host']}:{server['port']} cannot be reached for the "
            f"AppView's database: {exc}"
        )
    with admin:
        _drop_stale(admin, server)
        # template0: a copy of template1 fails while anyone is connected to it.
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    folder = tempfile.mkdtemp(prefix="cxhub-appview-")
    try:
        with tempfile.TemporaryFile() as log:
            yield from _run_network(_database_url(server, name), folder, log)
    finally:
        try:
            with _admin(server) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _run_network(database_url: str, folder: str, log):
    """The script from its start to its end, the network yielded while it runs."""
    # Without PGOPTIONS (the suite's restricted role) or any other PG* variable: the script's
    # clients connect with the URL alone.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env.update(DB_POSTGRES_URL=database_url, CXHUB_APPVIEW_FOLDER=folder)
    begun = time.monotonic()
    process = subprocess.Popen(
        [str(NODE), SCRIPT],
        cwd=REAL_PDS,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        bufsize=0,
        start_new_session=True,  # its own process group, ended as a whole
    )
    try:
        output = _Output(process)
        ready = output.next(time.monotonic() + READY_SECONDS)
        if not ready or ready.get("cxhub") != "ready":
            _fail(f"not ready (within {READY_SECONDS} s)", process, log)
        ready_after = time.monotonic() - begun
        desk, friend = (Person(**ready["accounts"][who]) for who in ("desk", "friend"))
        # An app password, as a person makes one in the app's settings for cxhub.
        client = Client(base_url=ready["pds"])
        client.login(desk.handle, desk.password, fetch_bsky_profile=False)
        app_password = client.com.atproto.server.create_app_password({"name": "cxhub"})
        network = AppviewNetwork(
            pds=ready["pds"],
            appview=ready["appview"],
            desk=desk,
            friend=friend,
            desk_app_password=app_password.password,
            started_seconds=ready["seconds"],
            _output=output,
            _process=process,
            _log=log,
        )
        yield network
        # Shown with -s: how long the network took to start, and each processAll.
        print(
            f"\nBluesky network: ready in {ready_after:.1f} s "
            f"(in the script: {network.started_seconds:.1f} s); processAll "
            + ", ".join(f"{t:.2f}" for t in network.process_timings)
            + " s"
        )
    finally:
        _stop(process)


# The people and the account -------------------------------------------------------------------
@pytest.fixture(autouse=True)
def real_server_timeout(loopback_allowed, settings):
    # A real server on a 2-core machine may take longer than the 1 s the test servers get.
    settings.CXHUB_NETWORK_TIMEOUT_SECONDS = 15.0


@pytest.fixture
def desk_account(org, appview_network):
    """cxhub-desk.test, connected to North with an app password as a person connects it."""
    account = SocialAccountFactory(
        team=org["north"],
        channel=Channel.BLUESKY,
        handle=appview_network.desk.handle,
        base_url=appview_network.pds,
        external_id=appview_network.desk.did,
    )
    get_channel("bluesky").create_session(account, password=appview_network.desk_app_password)
    return account


@pytest.fixture(scope="module")
def friend(appview_network):
    """The second person, in the atproto client: writes on their own PDS account, and reads
    through the PDS (which proxies app.bsky.feed.* to the AppView)."""
    client = Client(base_url=appview_network.pds)
    client.login(appview_network.friend.handle, appview_network.friend.password)
    return client


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def publish(post_id: int, *, author, approver) -> list[PostTarget]:
    """A draft through the desk's flow: submitted by its author, approved from the approver's
    inbox, claimed by dispatch and published by the send task."""
    submitted = api(author).post(f"/api/v1/posts/{post_id}/submit/")
    assert submitted.status_code == 200, submitted.json()
    waiting = api(approver).get("/api/v1/approvals/inbox/").json()["results"]
    [request] = [entry["request"] for entry in waiting if entry["post"] == post_id]
    decided = api(approver).post(
        f"/api/v1/approvals/{request}/decide/", {"verdict": "approve"}, format="json"
    )
    assert decided.status_code == 200, decided.json()
    assert decided.json()["status"] == "approved"
    claim.dispatch_due()
    targets = list(PostTarget.objects.filter(post_id=post_id))
    for target in targets:
        assert send.publish_target(target_id=target.pk) == "published"
        target.refresh_from_db()
        assert target.status == TargetStatus.PUBLISHED
        assert target.external_id.startswith("at://")
    return targets


def our_post(org, account, *, author, approver, body: str) -> PostTarget:
    created = api(author).post(
        "/api/v1/posts/",
        {"team": org["north"].pk, "body": body, "targets": [{"social_account": account.pk}]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    [target] = publish(created.json()["id"], author=author, approver=approver)
    return target


def strong_ref(client: Client, uri: str) -> models.ComAtprotoRepoStrongRef.Main:
    """A post's uri and cid, read from its author's repo (the PDS itself, not the AppView)."""
    authority, _, rest = uri.removeprefix("at://").partition("/")
    collection, _, rkey = rest.partition("/")
    record = client.com.atproto.repo.get_record(
        {"repo": authority, "collection": collection, "rkey": rkey}
    )
    return models.ComAtprotoRepoStrongRef.Main(uri=record.uri, cid=record.cid)


def ref(value) -> tuple[str, str]:
    return (value.uri, value.cid)


# The tests ------------------------------------------------------------------------------------
def test_a_mention_and_a_reply_come_in_and_our_approved_answers_land_in_their_threads(
    appview_network, desk_account, friend, org, author, approver
):
    network = appview_network
    tag = uuid.uuid4().hex[:8]
    ours = our_post(
        org, desk_account, author=author, approver=approver, body=f"Doors open at 9. ({tag})"
    )
    ours_ref = strong_ref(friend, ours.external_id)
    # The second person: a post that mentions the desk, and an answer to our post.
    mention = friend.send_post(
        client_utils.TextBuilder()
        .text("Hello ")
        .mention(f"@{network.desk.handle}", network.desk.did)
        .text(f", is the visitor centre open on Sunday? ({tag})"),
        langs=["en"],
    )
    answer = friend.send_post(
        f"Is there parking near the entrance? ({tag})",
        reply_to=models.AppBskyFeedPost.ReplyRef(root=ours_ref, parent=ours_ref),
        langs=["en"],
    )
    network.process_all()

    # Ingestion, as the periodic task runs it: the dispatcher claims the account, its run reads.
    assert claim_due() == [desk_account.pk]
    run = account_ingest(account_id=desk_account.pk)
    again = account_ingest(account_id=desk_account.pk)

    assert (run.error, run.added, run.skipped) == ("", 2, "")
    assert (again.error, again.added) == ("", 0)  # exactly once
    items = {item.network_id: item for item in InboundItem.objects.filter(account=desk_account)}
    assert set(items) == {mention.uri, answer.uri}
    came = items[mention.uri]
    assert (came.kind, came.author_handle, came.author_id) == (
        "mention",
        network.friend.handle,
        network.friend.did,
    )
    assert (
        came.text == f"Hello @{network.desk.handle}, is the visitor centre open on Sunday? ({tag})"
    )
    assert (came.target, came.thread_id, came.in_reply_to_id) == (None, "", "")
    assert came.language == "en"
    assert came.raw["cid"] == mention.cid
    assert came.url.startswith(f"https://bsky.app/profile/{network.friend.handle}/post/")
    replied = items[answer.uri]
    assert (replied.kind, replied.target, replied.author_handle) == (
        "reply",
        ours,
        network.friend.handle,
    )
    assert replied.thread_id == replied.in_reply_to_id == ours.external_id
    root = replied.raw["record"]["reply"]["root"]
    assert (root["uri"], root["cid"]) == (ours.external_id, ours_ref.cid)
    # …and in the inbox the author sees.
    listed = api(author).get("/api/v1/inbox/", {"account": desk_account.pk}).json()["results"]
    shown = {entry["id"]: entry for entry in listed}
    assert set(shown) == {came.pk, replied.pk}
    assert shown[came.pk]["kind"] == "mention" and shown[came.pk]["post"] is None
    assert (shown[replied.pk]["kind"], shown[replied.pk]["post"]) == ("reply", ours.post_id)
    assert shown[replied.pk]["network"] == "bluesky"

    # Our answers: drafted from each item, approved, dispatched, published.
    texts = {came.pk: f"Yes, from 10 to 4. ({tag})", replied.pk: f"Yes, behind the hall. ({tag})"}
    published = {}
    for item_id, text in texts.items():
        drafted = api(author).post(f"/api/v1/inbox/{item_id}/reply/", {"body": text}, format="json")
        assert drafted.status_code == 201, drafted.json()
        assert drafted.json()["is_reply"] is True
        [published[item_id]] = publish(drafted.json()["id"], author=author, approver=approver)
    network.process_all()

    # The mention's thread: our answer right under it (root and parent: the mention).
    mention_ref = (mention.uri, mention.cid)
    thread = friend.get_post_thread(mention.uri, depth=3).thread
    [under] = thread.replies
    assert under.post.uri == published[came.pk].external_id
    assert under.post.author.did == network.desk.did
    assert under.post.record.text == texts[came.pk]
    assert ref(under.post.record.reply.root) == ref(under.post.record.reply.parent) == mention_ref
    # Our post's thread: their question under it, our answer under that (root: our post).
    thread = friend.get_post_thread(ours.external_id, depth=3).thread
    [question] = thread.replies
    assert ref(question.post) == (answer.uri, answer.cid)
    [under] = question.replies
    assert under.post.uri == published[replied.pk].external_id
    assert under.post.record.text == texts[replied.pk]
    assert ref(under.post.record.reply.root) == ref(ours_ref)
    assert ref(under.post.record.reply.parent) == (answer.uri, answer.cid)

    # Answered, so closed.
    for item_id, target in published.items():
        item = InboundItem.objects.get(pk=item_id)
        assert item.status == ItemStatus.CLOSED
        assert item.first_response_at == item.closed_at == target.published_at
        assert api(author).get(f"/api/v1/inbox/{item_id}/").json()["status"] == "closed"


def test_a_like_of_our_post_is_counted_by_the_appview(
    appview_network, desk_account, friend, org, author, approver
):
    ours = our_post(
        org,
        desk_account,
        author=author,
        approver=approver,
        body=f"Doors open at 9. ({uuid.uuid4().hex[:8]})",
    )
    liked = strong_ref(friend, ours.external_id)
    friend.like(liked.uri, liked.cid)
    appview_network.process_all()

    figures = get_channel("bluesky").fetch_engagement(desk_account, [ours.external_id])
    # The reading is due now (the schedule's first is a quarter of an hour after publishing).
    PostTarget.objects.filter(pk=ours.pk).update(metrics_next_at=timezone.now())
    reading = engagement.account_engagement_read(account_id=desk_account.pk, target_ids=[ours.pk])

    assert figures == {
        ours.external_id: Engagement(
            likes=1, reposts=0, replies=0, quotes=0, impressions=None, clicks=None
        )
    }
    assert (reading.error, reading.stored) == ("", 1)
    stored = TargetMetrics.objects.get(target=ours)
    assert (stored.likes, stored.reposts, stored.replies, stored.quotes) == (1, 0, 0, 0)
