"""The `rabbitmq` marker, and the networks' Mastodon fixtures for the inbox's and listening's
worker tests.

The `rabbitmq` marker: tests that need a RabbitMQ server run where CXHUB_TEST_RABBITMQ_URL
names one (CI's PostgreSQL pass starts RabbitMQ and sets it) and skip elsewhere, saying why."""

import os

import pytest

# A Mastodon test server and its account, for the inbox's and listening's worker tests
# (test_inbox_worker.py, test_listening_worker.py): the networks' own fixtures, not a copy.
from ..publishing.networks.conftest import mastodon_account, mastodon_server  # noqa: F401

RABBITMQ_URL = os.environ.get("CXHUB_TEST_RABBITMQ_URL", "")


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
