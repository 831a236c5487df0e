"""Deprovisioning at the next request that checks: a session signed in through OpenID Connect
is checked with the provider once its last check is older than CXHUB_SSO_RECHECK_SECONDS (every
request, pages, POSTs and API calls alike). A person the provider refuses is deactivated by
sso.services (every other session and API token of theirs dies too) and this request is
answered as signed out."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import JsonResponse
from django.shortcuts import redirect

from . import services
from .models import Identity, Provider
from .oidc import check_with_provider

GONE_MESSAGE = "Your sign-in has ended: the identity provider no longer knows you."


class SsoRecheckMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        state = session.get("sso") if session is not None else None
        if (
            isinstance(state, dict)
            and state.get("provider") == Provider.OIDC
            and time.time() - float(state.get("checked_at") or 0)
            >= settings.CXHUB_SSO_RECHECK_SECONDS
            and request.user.is_authenticated
        ):
            answer = self._recheck(request, state)
            if answer is not None:
                return answer
        return self.get_response(request)

    def _recheck(self, request, state: dict):
        identity = Identity.objects.filter(pk=state.get("identity"), user=request.user).first()
        status = (
            services.sso_identity_recheck(identity=identity, check=check_with_provider)
            if identity is not None
            else "gone"
        )
        if status != "gone":
            request.session["sso"] = {**state, "checked_at": time.time()}
            return None
        logout(request)
        if request.path.startswith("/api/"):
            return JsonResponse({"message": GONE_MESSAGE, "extra": {}}, status=401)
        messages.error(request, GONE_MESSAGE)
        return redirect(settings.LOGIN_URL)
