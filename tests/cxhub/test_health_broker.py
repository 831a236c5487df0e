"""/healthz's broker check (cxhub/health.py) on the embedded broker."""

import pytest
from django.conf import settings

from cxhub.health import check_broker

pytestmark = pytest.mark.skipif(
    not settings.CELERY_BROKER_URL.startswith("filesystem://"),
    reason="the embedded pass's broker (CELERY_BROKER_URL unset)",
)


def test_the_embedded_broker_is_reported_up():
    check = check_broker()

    assert check.ok, check.detail
    assert check.detail == "cxhub.broker:Transport"
