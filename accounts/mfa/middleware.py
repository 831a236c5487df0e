"""Pages, the admin and session-authenticated API calls are closed to a session that owes a
second factor: it is sent to verify (it holds one) or to enrol (it must, and holds none), and
reaches nothing else but signing out. Token-authenticated API calls are not sessions: their
token was only issued past the second factor (check_for_token)."""

from urllib.parse import quote

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve, reverse

from . import session

# URL names each state may reach (besides static files and the health check).
_ALWAYS = {"login", "logout", "mfa-verify", "healthz", "otp_webauthn:js-i18n-catalog"}
_OPEN = {
    session.VERIFY: _ALWAYS
    | {
        "otp_webauthn:credential-authentication-begin",
        "otp_webauthn:credential-authentication-complete",
    },
    session.ENROL: _ALWAYS
    | {
        "mfa-security",
        "mfa-totp-add",
        "otp_webauthn:credential-registration-begin",
        "otp_webauthn:credential-registration-complete",
    },
}


def _url_name(path: str) -> str | None:
    try:
        match = resolve(path)
    except Resolver404:
        return None
    return match.view_name


class SecondFactorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        state = session.state(request)
        # The base template leaves out the navigation while a second factor is owed.
        request.mfa_state = state
        if state is None or request.path_info.startswith("/" + settings.STATIC_URL.lstrip("/")):
            return self.get_response(request)
        if _url_name(request.path_info) in _OPEN[state]:
            return self.get_response(request)
        target = (
            session.verify_url(request.get_full_path())
            if state == session.VERIFY
            else f"{reverse('mfa-security')}?next={quote(request.get_full_path())}"
        )
        if request.path_info.startswith("/api/"):
            message = (
                "This session has not passed its second factor: verify at /login/verify/."
                if state == session.VERIFY
                else "Your role needs a second factor: add one at /security/ first."
            )
            return JsonResponse({"message": message, "extra": {"url": target}}, status=403)
        return redirect(target)
