"""Where SSO sign-ins meet every other way in (issue 12, item 3: one throttle, one audit
trail). Until accounts/doors.py lands these call accounts' own sign-in services; then each body
becomes one call: `doors.sign_in_succeeded(request=request, user=user, method=method)` and
`doors.sign_in_failed(request=request, username=username, method=method)`.

An SSO sign-in never waits for the password lockout: nothing here asks login_throttle_wait."""

from accounts import services as accounts


def client_address(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def sign_in_succeeded(*, request, user, method: str) -> None:
    accounts.login_succeeded(user=user, address=client_address(request))


def sign_in_failed(*, request, username: str, method: str) -> None:
    # accounts.login_failed counts a failure towards the password lockout of `username`; an
    # SSO failure names nobody we can trust, so it is recorded under the method instead.
    accounts.login_failed(username=f"{method}:{username}"[:150], address=client_address(request))


def signed_out(*, request, user) -> None:
    accounts.logout_recorded(user=user, address=client_address(request))
