"""The `rabbitmq` marker, and for the inbox's and listening's worker tests the networks' Mastodon
fixtures and a worker with short turns (`reading_worker`).

The `rabbitmq` marker: tests that need a RabbitMQ server run where CXHUB_TEST_RABBITMQ_URL
names one (CI's PostgreSQL pass starts RabbitMQ and sets it) and skip elsewhere, saying why."""

import os

import pytest
from django.db import connection

# A Mastodon test server and its account, for the inbox's and listening's worker tests
# (test_inbox_worker.py, test_listening_worker.py): the networks' own fixtures, not a copy.
from ..publishing.networks.conftest import mastodon_account, mastodon_server  # noqa: F401
from .dispatch_harness import WORKER_APPLICATION_NAME, Worker, database_url, purge, worker_env

RABBITMQ_URL = os.environ.get("CXHUB_TEST_RABBITMQ_URL", "")


@pytest.fixture
def reading_worker(tmp_path):
    """A worker (prefork, beat embedded) on the test's database and the pass's broker, its
    queues purged before and after, with the settings the test gives (its turns made short):
    `reading_worker(CXHUB_INBOX_SECONDS="1", …)`, then `.start()`; stopped here. The inbox's and
    listening's worker tests."""
    made = []
    broker = os.environ.get("CELERY_BROKER_URL") or "filesystem://"

    def make(**settings: str) -> Worker:
        env = worker_env(
            database=database_url(
                connection.settings_dict,
                application_name=(
                    WORKER_APPLICATION_NAME if connection.vendor == "postgresql" else ""
                ),
            ),
            broker=broker,
            var_dir=tmp_path / "var",
            **settings,
        )
        purge(broker)
        made.append(Worker(env, tmp_path, concurrency=2))
        return made[-1]

    try:
        yield make
    finally:
        for process in made:
            process.stop()
        purge(broker)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "rabbitmq: needs RabbitMQ (runs where CXHUB_TEST_RABBITMQ_URL is set)"
    )


def pytest_collection_modifyitems(config, items):
    if RABBITMQ_URL:
        return
    reason = "needs RabbitMQ: runs in CI's PostgreSQL pass (CXHUB_TEST_RABBITMQ_URL=amqp://…)"
    for item in items:
        if "rabbitmq" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))
