"""Re-encrypting stored secrets under the newest key of CXHUB_TOKEN_KEYS, one way for all of
them (network tokens, server registrations' secrets, authenticator-app keys, SSO refresh tokens).

In batches, each its own transaction with its rows locked and its own audit event, so it can run
while the system is live, a failure part way leaves a true record of what was rewritten, and a
re-run finishes the job."""

from collections.abc import Sequence

from django.db import transaction
from django.db.models import QuerySet

from audit.services import record

from .crypto import rotate_token


def rotate_encrypted_fields(
    *,
    queryset: QuerySet,
    fields: Sequence[str],
    action: str,
    data_key: str,
    by,
    batch_size: int = 500,
    also_save: Sequence[str] = (),
) -> int:
    """Rewrite each non-empty `fields` value of the rows of `queryset`; one `action` event per
    batch naming the rows under `data_key`. `also_save` names fields saved along (auto_now).
    Raises TokenCipherError, rolling back the batch at hand only. Returns how many rows."""
    model = queryset.model
    object_type = f"{model._meta.app_label}.{model._meta.model_name}"
    rotated = 0
    last_id = 0
    while True:
        with transaction.atomic():
            batch = list(
                queryset.select_for_update().filter(pk__gt=last_id).order_by("pk")[:batch_size]
            )
            if not batch:
                break
            rewritten = []
            for row in batch:
                changed = [field for field in fields if getattr(row, field)]
                for field in changed:
                    setattr(row, field, rotate_token(getattr(row, field)))
                if changed:
                    row.save(update_fields=[*changed, *also_save])
                    rewritten.append(row.pk)
            if rewritten:
                record(
                    actor=by,
                    action=action,
                    object_type=object_type,
                    object_id=f"{rewritten[0]}..{rewritten[-1]}",
                    data={data_key: rewritten},
                )
            rotated += len(rewritten)
            last_id = batch[-1].pk
    return rotated
