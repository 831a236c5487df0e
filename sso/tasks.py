"""Periodic work of single sign-on: re-checking with the provider the people who use cxhub only
through API tokens, whom no browser session re-checks (sso/middleware.py does that for
sessions), so that a person removed at the provider loses their tokens within about one
CXHUB_SSO_RECHECK_SECONDS even if they never open a page."""

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from . import selectors, services
from .config import oidc_config
from .oidc import check_with_provider

log = logging.getLogger(__name__)

# People asked per run; the rest wait for the next run (oldest check first).
BATCH = 200


@shared_task(name="sso.tasks.recheck_token_holders", ignore_result=True)
def recheck_token_holders() -> dict:
    if oidc_config() is None:
        return {"asked": 0}
    due = selectors.identities_due_for_recheck(
        now=timezone.now(), interval_seconds=settings.CXHUB_SSO_RECHECK_SECONDS, limit=BATCH
    )
    outcomes: dict[str, int] = {}
    for identity in due:
        try:
            status = services.sso_identity_recheck(identity=identity, check=check_with_provider)
        except Exception:  # one person's failure must not stop the others' checks
            log.exception("re-check of SSO identity %s failed", identity.pk)
            status = "error"
        outcomes[status] = outcomes.get(status, 0) + 1
    return {"asked": len(due), **outcomes}
