"""The deployment shape (issue 15, item 3): two hosts, each running a web server and a Celery
worker, sharing nothing but PostgreSQL, the broker and the site the posts go to, all reached over
their own network links (tests/integration/hosts.py: network namespaces and veth pairs; on a
machine where namespaces cannot be made, the same shape on loopback, said in a warning).

Each host runs a beat too: the leader lock lets one send the schedule. Posts are written through
one host's web (created and submitted by their author) and approved through the other's; the
workers of both hosts publish them (the second host's first, then the first's joins, so both
surely do); then the second host loses power mid-batch (its web server, worker and beat killed
with SIGKILL while requests are on the wire) and the first finishes the batch: every post
reaches the site exactly once, none lost, none sent twice.
"""

import os
import signal
import subprocess
import sys
import warnings
from collections import Counter

import pytest
import requests
from django.db import connection

from accounts.tokens import api_token_create
from approvals.models import ApprovalRequest
from publishing.models import Post, PostStatus, PostTarget, PublishAttempt, TargetStatus

from .dispatch_harness import (
    REPO,
    PrivateRedis,
    Worker,
    database_url,
    free_port,
    wait_until,
    with_database_name,
    worker_env,
)
from .dispatch_support import SECRET, webhook_account
from .hosts import Network, Relay
from .webhook_receiver import WebhookReceiver

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(300),
]

POSTS, ACCOUNTS = 30, 4  # 120 targets, about 30 s of sending for one host


class WebServer:
    """The production web server (cxhub/gunicorn_conf.py) on a host, as a process group; up when
    its /readyz says so, as a load balancer would take it."""

    def __init__(self, host, env: dict[str, str], workdir, *, port: int):
        self.host, self.port = host, port
        self.url = f"http://{host.address}:{port}"
        self.log = workdir / f"web-{host.name}.log"
        args = host.command(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "python:cxhub.gunicorn_conf",
            ]
        )
        env = {**env, "CXHUB_BIND": f"{host.address}:{port}", "WEB_CONCURRENCY": "2"}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                args,
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        wait_until(self._up, timeout=60, what=f"the web server of {host.name}", logs=[self.log])

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the web server of {self.host.name} exited: {self.log}")
        try:
            return requests.get(f"{self.url}/readyz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture
def network():
    made = Network.make(2)
    if not made.namespaces:
        warnings.warn(
            f"network namespaces cannot be made here ({made.why_not}): the two hosts run as "
            "separate process groups on loopback",
            stacklevel=1,
        )
    yield made
    made.close()


class Beat:
    """`celery -A cxhub beat` on a host, as a process group: every host runs one, and the
    leader lock (cxhub/beat.py) lets one send the schedule."""

    def __init__(self, host, env: dict[str, str], workdir):
        self.log = workdir / f"beat-{host.name}.log"
        args = host.command(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "cxhub",
                "beat",
                "-s",
                str(workdir / f"beat-{host.name}-schedule"),
                "--loglevel",
                "INFO",
            ]
        )
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                args,
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def _client(token: str, base: str):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    def call(method: str, path: str, **kwargs):
        response = session.request(method, f"{base}{path}", timeout=30, **kwargs)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json()

    return call


def test_two_hosts_publish_a_batch_once_when_one_dies_mid_batch(
    network, org, author, approver, tmp_path
):
    stack = []
    try:
        # The shared services, on the services address.
        pg_port = free_port()
        relay = Relay(network.services, pg_port, ("127.0.0.1", 5432)).__enter__()
        stack.append(lambda: relay.__exit__(None, None, None))
        redis = PrivateRedis(tmp_path, host=network.services, password="two-hosts").start()
        stack.append(redis.stop)
        receiver = WebhookReceiver(SECRET, host=network.services, answer_after=0.5).__enter__()
        stack.append(receiver.close)

        accounts = [
            webhook_account(org["north"], receiver.url, handle=f"site-{n}") for n in range(ACCOUNTS)
        ]
        authors_token = api_token_create(user=author, name="two hosts", by=author).secret
        approvers_token = api_token_create(user=approver, name="two hosts", by=approver).secret

        test_db = database_url(connection.settings_dict)
        via_relay = with_database_name(
            f"postgres://{connection.settings_dict.get('USER') or 'postgres'}@"
            f"{network.services}:{pg_port}/x",
            connection.settings_dict["NAME"],
        )
        webs, workers, beats = {}, {}, {}
        for host in network.hosts:
            env = worker_env(
                database=via_relay if network.namespaces else test_db,
                broker=redis.url,
                var_dir=tmp_path / host.name,
                CACHE_URL=redis.url.removesuffix("/0") + "/1",
                ALLOWED_HOSTS=host.address,
                CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS=f"{network.services}/32",
                CXHUB_BEAT_LOCK_SECONDS="1",
            )
            port = 8000 if network.namespaces else free_port()
            webs[host.name] = WebServer(host, env, tmp_path, port=port)
            stack.append(webs[host.name].kill)
            # A beat on every host: the leader lock lets one send (the dispatcher, the sweeper).
            beats[host.name] = Beat(host, env, tmp_path)
            stack.append(beats[host.name].kill)
            workers[host.name] = Worker(
                env, tmp_path, name=host.name, beat=False, prefix=host.prefix
            )
            stack.append(workers[host.name].kill)
        first, second = network.hosts
        logs = [*(w.log for w in workers.values()), *(b.log for b in beats.values())]
        # The second host's worker first: it takes the batch's beginning alone.
        workers[second.name].start()

        # Written through the first host's web: created and submitted by the author.
        as_author = _client(authors_token, webs[first.name].url)
        post_ids = []
        for n in range(POSTS):
            post = as_author(
                "POST",
                "/api/v1/posts/",
                json={
                    "team": org["north"].pk,
                    "body": f"Road closures update {n}",
                    "targets": [{"social_account": account.pk} for account in accounts],
                },
            )
            as_author("POST", f"/api/v1/posts/{post['id']}/submit/")
            post_ids.append(post["id"])
        # Approved through the second host's web: each approval makes its targets due now.
        as_approver = _client(approvers_token, webs[second.name].url)
        requests_by_post = dict(
            ApprovalRequest.objects.filter(post_id__in=post_ids).values_list("post_id", "pk")
        )
        for post_id in post_ids:
            as_approver(
                "POST",
                f"/api/v1/approvals/{requests_by_post[post_id]}/decide/",
                json={"verdict": "approve"},
            )

        targets = PostTarget.objects.filter(post_id__in=post_ids)
        total = POSTS * ACCOUNTS
        assert targets.count() == total

        def sent_by(host) -> int:
            return PublishAttempt.objects.filter(
                target__in=targets, worker__contains=workers[host.name].name
            ).count()

        finished = targets.filter(status__in=[TargetStatus.PUBLISHED, TargetStatus.FAILED])

        def both_sent(minimum: int) -> bool:
            assert finished.count() < total, "the batch was over before both hosts sent"
            return sent_by(first) >= minimum and sent_by(second) >= minimum

        # The second host publishes; then the first host's worker joins, and publishes too.
        wait_until(
            lambda: sent_by(second) >= 2, timeout=90, what="the second host to publish", logs=logs
        )
        workers[first.name].start()
        wait_until(lambda: both_sent(2), timeout=90, what="both hosts to publish", logs=logs)
        # Then the second host loses power mid-batch, requests in flight: its web, its worker
        # and its beat (perhaps the leader) killed at once.
        workers[second.name].kill()
        webs[second.name].kill()
        beats[second.name].kill()
        assert finished.count() < total, "the batch was over before the host died"

        # The first host finishes the batch: the sweeper hands back what the dead worker held,
        # and each of those is reconciled with the site before any second send.
        wait_until(
            lambda: finished.count() == total,
            timeout=180,
            what="every target to be final",
            logs=[workers[first.name].log, beats[first.name].log, webs[first.name].log],
        )
        assert Counter(targets.values_list("status", flat=True)) == {TargetStatus.PUBLISHED: total}
        keys = {str(key) for key in targets.values_list("idempotency_key", flat=True)}
        assert set(receiver.stored_posts) == keys  # none lost
        assert set(receiver.stored_posts.values()) == {1}  # none twice
        assert sent_by(first) > 0 and sent_by(second) > 0
        assert Counter(Post.objects.filter(pk__in=post_ids).values_list("status", flat=True)) == {
            PostStatus.PUBLISHED: POSTS
        }
    finally:
        for undo in reversed(stack):
            undo()
