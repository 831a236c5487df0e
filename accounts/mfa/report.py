"""Where the second factor tells the door policy (accounts/doors.py) about a sign-in that passed
or failed. A wrong code is audited there but never counted towards the password lockout (the
second factor's methods are in `doors.UNCOUNTED_METHODS`): nothing keeps anyone from a second
factor that works but django-otp's own per-device back-off."""

from .. import doors


def failed(*, request, user, method: str) -> None:
    doors.sign_in_failed(request=request, username=user.get_username(), method=method)


def succeeded(*, request, user, method: str) -> None:
    doors.sign_in_succeeded(request=request, user=user, method=method)
