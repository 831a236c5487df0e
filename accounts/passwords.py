"""Password flows: a person changes their own password, or asks for a reset link by e-mail and
sets a new password through it. Both are audited and throttled, and both tell the person by
e-mail (in case it was not them).

Reset links carry Django's PasswordResetTokenGenerator token: an HMAC over the person's id, the
current password hash, the last login and a timestamp, so a link stops working once used (the
hash changes) and after PASSWORD_RESET_TIMEOUT seconds; nothing about it is stored. Requests
are limited per client address and per e-mail address, counted whether or not an account has
that address, and the e-mail is sent by a task, so neither the answer nor its timing tells
whether one exists.
"""

import hashlib
import math
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from audit.services import record
from cxhub.errors import ApplicationError

from . import doors
from .models import LoginFailure, PasswordResetRequest, User
from .notifications import notify


class PasswordResetThrottled(ApplicationError):
    status = 429

    def __init__(self, wait: int):
        self.wait = wait
        minutes = max(1, math.ceil(wait / 60))
        super().__init__(
            f"Too many reset requests. Try again in about {minutes} minute(s).",
            {"retry_after_seconds": wait},
        )


def _checked(password: str, *, user: User, field: str) -> None:
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ApplicationError(
            "Choose another password.", {"fields": {field: list(exc.messages)}}
        ) from None


def _tell(user: User, title: str, address: str | None) -> None:
    notify(
        users=[user],
        kind="security",
        title=title,
        body=(
            f"From address {address or 'unknown'}. If this was not you, ask an administrator to "
            "lock your account and reset your password now."
        ),
    )


# Change ------------------------------------------------------------------------------------------
def password_change(*, request, user: User, old_password: str, new_password: str) -> User:
    """Change a signed-in person's own password. The current password is a password try: it is
    throttled and counted by the door policy like any sign-in (a stolen session cannot be used to
    guess it). Not atomic as a whole: a counted failure must stay when the change is refused."""
    wait = doors.sign_in_wait(request=request, username=user.get_username())
    if wait:
        raise doors.SignInThrottled(wait)
    if not user.check_password(old_password):
        doors.sign_in_failed(
            request=request, username=user.get_username(), method="password_change"
        )
        raise ApplicationError(
            "Your current password is not right.",
            {"fields": {"old_password": ["Not your current password."]}},
        )
    _checked(new_password, user=user, field="new_password")
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        address = doors.client_address(request)
        _tell(user, "Your cxhub password was changed", address)
        record(actor=user, action="auth.password_changed", obj=user, data={"address": address})
    return user


# Reset -------------------------------------------------------------------------------------------
def _digest(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def _reset_wait(*, digest: str, address: str | None, now) -> int:
    since = now - timedelta(seconds=settings.PASSWORD_RESET_WINDOW_SECONDS)
    window = timedelta(seconds=settings.PASSWORD_RESET_WINDOW_SECONDS)
    checks = [({"email_digest": digest}, settings.PASSWORD_RESET_EMAIL_LIMIT)]
    if address is not None:
        checks.append(({"address": address}, settings.PASSWORD_RESET_ADDRESS_LIMIT))
    wait = 0
    for filters, limit in checks:
        for at in (
            PasswordResetRequest.objects.filter(at__gte=since, **filters)
            .order_by("-at")
            .values_list("at", flat=True)[limit - 1 : limit]
        ):
            wait = max(wait, math.ceil((at + window - now).total_seconds()))
    return wait


def password_reset_request(*, request, email: str) -> None:
    """Ask for a reset link for `email`. Accepted the same way whether or not an account has the
    address; the link goes out from a task (password_reset_send) after the commit."""
    email = email.strip()
    if not email:
        raise ApplicationError("Give your e-mail address.", {"fields": {"email": ["Required."]}})
    address = doors.client_address(request)
    digest = _digest(email)
    now = timezone.now()
    wait = _reset_wait(digest=digest, address=address, now=now)
    if wait:
        raise PasswordResetThrottled(wait)
    base_url = (settings.CXHUB_PUBLIC_URL or request.build_absolute_uri("/")).rstrip("/")
    with transaction.atomic():
        record(
            actor=None,
            action="auth.password_reset_requested",
            object_type="accounts.user",
            object_id=email[:254],
            data={"email": email[:254], "address": address},
        )
        PasswordResetRequest.objects.create(email_digest=digest, address=address, at=now)
        since = now - timedelta(seconds=settings.PASSWORD_RESET_WINDOW_SECONDS)
        PasswordResetRequest.objects.filter(at__lt=since).delete()
        for scope, filters, limit in (
            ("reset_email", {"email_digest": digest}, settings.PASSWORD_RESET_EMAIL_LIMIT),
            ("reset_address", {"address": address}, settings.PASSWORD_RESET_ADDRESS_LIMIT),
        ):
            if scope == "reset_address" and address is None:
                continue
            if PasswordResetRequest.objects.filter(at__gte=since, **filters).count() == limit:
                record(
                    actor=None,
                    action="auth.lockout",
                    object_type="accounts.user",
                    object_id=email[:254],
                    data={"scope": scope, "email": email[:254], "address": address},
                )
        # The task by its name, as in notifications.notify: accounts.tasks imports this module.
        task = current_app.tasks["accounts.tasks.send_password_reset"]
        transaction.on_commit(lambda: task.delay(email=email, base_url=base_url))


def password_reset_send(*, email: str, base_url: str) -> int:
    """E-mail a reset link to each active person with this address and a password (a person who
    signs in only through single sign-on has none to reset). Returns how many were sent."""
    users = [
        user
        for user in User.objects.filter(email__iexact=email.strip(), is_active=True).order_by("pk")
        if user.has_usable_password()
    ]
    for user in users:
        path = reverse(
            "password-reset-confirm",
            kwargs={
                "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
                "token": default_token_generator.make_token(user),
            },
        )
        hours = settings.PASSWORD_RESET_TIMEOUT / 3600
        send_mail(
            subject="[cxhub] Reset your password",
            message=(
                f"Someone, hopefully you, asked to reset the cxhub password of {user.username}.\n\n"
                f"Choose a new password here (the link works once, for {hours:g} hour(s)):\n"
                f"{base_url}{path}\n\n"
                "If you did not ask, ignore this message: your password stays as it is."
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[user.email],
        )
        with transaction.atomic():
            record(actor=None, action="auth.password_reset_sent", obj=user, data={})
    return len(users)


def password_reset_user(*, uidb64: str, token: str) -> User | None:
    """The person a reset link is for, or None when the link is wrong, used or expired."""
    try:
        pk = int(force_str(urlsafe_base64_decode(uidb64)))
    except (TypeError, ValueError, OverflowError):
        return None
    user = User.objects.filter(pk=pk, is_active=True).first()
    if user is None or not default_token_generator.check_token(user, token):
        return None
    return user


def password_reset_complete(*, request, uidb64: str, token: str, new_password: str) -> User:
    """Set a new password through a reset link; the link dies with the old password."""
    user = password_reset_user(uidb64=uidb64, token=token)
    if user is None:
        raise ApplicationError(
            "This reset link is wrong, used or expired. Ask for a new one.",
            {"fields": {"token": ["Wrong, used or expired."]}},
        )
    _checked(new_password, user=user, field="new_password")
    address = doors.client_address(request)
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        # The person proved they hold the mailbox: their failed tries no longer count.
        LoginFailure.objects.filter(username=user.get_username().lower()).delete()
        _tell(user, "Your cxhub password was reset", address)
        record(actor=user, action="auth.password_reset", obj=user, data={"address": address})
    return user
