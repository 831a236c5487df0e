"""Where SSO sign-ins meet every other way in (issue 12, item 3: one throttle, one audit
trail): accounts/doors.py. An SSO sign-in never waits for the password lockout (nothing here
asks `sign_in_wait`), and its failures are audited without counting towards it ("oidc" and
"saml" are in `doors.UNCOUNTED_METHODS`)."""

from accounts import doors


def client_address(request) -> str | None:
    return doors.client_address(request)


def sign_in_succeeded(*, request, user, method: str) -> None:
    doors.sign_in_succeeded(request=request, user=user, method=method)


def sign_in_failed(*, request, username: str, method: str) -> None:
    doors.sign_in_failed(request=request, username=username[:150], method=method)


def signed_out(*, request, user) -> None:
    doors.sign_out_recorded(request=request, user=user)
