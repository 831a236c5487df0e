"""The suite's settings, plus the task of tests/integration/broker_tasks.py for the workers that
tests/integration/test_broker_worker.py starts."""

from tests.settings import *  # noqa: F403

CELERY_IMPORTS = ["tests.integration.broker_tasks"]
