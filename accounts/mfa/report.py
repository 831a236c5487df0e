"""Where the second factor tells the door policy about a sign-in that passed or failed.

The one place to rewire when accounts/doors.py arrives: `sign_in_failed(*, request, username,
method)` and `sign_in_succeeded(*, request, user, method)`. Until then the password throttle's
services are used. A wrong code counts as a failure there; nothing here keeps anyone from a
second factor that works (that is django-otp's per-device back-off alone)."""

from .. import services


def _address(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def failed(*, request, user, method: str) -> None:
    services.login_failed(username=user.get_username(), address=_address(request))


def succeeded(*, request, user, method: str) -> None:
    services.login_succeeded(user=user, address=_address(request))
