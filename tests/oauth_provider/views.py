"""The provider's own views around django-oauth-toolkit's: a sign-in page for the person,
dynamic client registration at Mastodon's POST /api/v1/apps, and the two API reads cxhub's
Mastodon channel makes at connect, each behind DOT's bearer-token check (401 as Mastodon
answers, docs.joinmastodon.org methods/apps, methods/accounts, methods/instance)."""

import json
from functools import wraps

from django.contrib.auth import authenticate, login
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect
from django.utils.html import escape
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import get_application_model
from oauth2_provider.oauth2_backends import get_oauthlib_core

MAX_CHARACTERS = 640


def sign_in(request):
    """A person signs in (the provider's own users) before being asked to authorise."""
    error = ""
    if request.method == "POST":
        user = authenticate(
            request,
            username=request.POST.get("username", ""),
            password=request.POST.get("password", ""),
        )
        if user is not None:
            login(request, user)
            return redirect(request.POST.get("next") or "/")
        error = "<p>Wrong username or password.</p>"
    page = (
        "<!doctype html><title>Sign in</title>"
        f"{error}<form method=post>"
        f'<input type=hidden name=csrfmiddlewaretoken value="{get_token(request)}">'
        f'<input type=hidden name=next value="{escape(request.GET.get("next", ""))}">'
        "<input name=username><input name=password type=password><button>Sign in</button>"
        "</form>"
    )
    return HttpResponse(page, status=401 if error else 200)


def _params(request) -> dict:
    if (request.content_type or "") == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    return {key: request.POST.getlist(key) for key in request.POST}


def _first(value) -> str:
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return str(value or "")


@csrf_exempt
@require_POST
def create_app(request):
    """Mastodon's dynamic registration: a confidential client for the authorization-code
    grant, shown no consent screen (skip_authorization), its secret answered once in clear."""
    params = _params(request)
    name = _first(params.get("client_name"))
    uris = params.get("redirect_uris") or []
    uris = [u for value in (uris if isinstance(uris, list) else [uris]) for u in str(value).split()]
    if not name:
        return JsonResponse({"error": "Validation failed: Name can't be blank"}, status=422)
    if not uris or not all("://" in uri for uri in uris):
        return JsonResponse(
            {"error": "Validation failed: Redirect URI must be an absolute URI."}, status=422
        )
    scopes = (_first(params.get("scopes")) or "read").split()
    secret = generate_client_secret()
    Application = get_application_model()
    app = Application.objects.create(
        name=name,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=" ".join(uris),
        client_secret=secret,
        skip_authorization=True,
    )
    return JsonResponse(
        {
            "id": str(app.pk),
            "name": name,
            "scopes": scopes,
            "redirect_uri": "\n".join(uris),
            "redirect_uris": uris,
            "client_id": app.client_id,
            "client_secret": secret,
            "client_secret_expires_at": 0,
        }
    )


def bearer(*scopes: str):
    """DOT's token check (expired, revoked, unknown or missing: 401 with Mastodon's error)."""

    def decorate(view):
        @wraps(view)
        def checked(request, *args, **kwargs):
            valid, oauth_request = get_oauthlib_core().verify_request(request, scopes=list(scopes))
            if not valid:
                return JsonResponse({"error": "The access token is invalid"}, status=401)
            request.resource_owner = oauth_request.user
            return view(request, *args, **kwargs)

        return checked

    return decorate


@require_GET
@bearer("read")
def verify_credentials(request):
    user = request.resource_owner
    return JsonResponse(
        {
            "id": str(user.pk),
            "username": user.username,
            "acct": user.username,
            "display_name": user.get_full_name() or user.username,
            "url": request.build_absolute_uri(f"/@{user.username}"),
        }
    )


@require_GET
@bearer("read")
def instance(request):
    return JsonResponse(
        {
            "domain": "provider.test",
            "title": "django-oauth-toolkit as a Mastodon server",
            "version": "4.3.0",
            "configuration": {
                "statuses": {
                    "max_characters": MAX_CHARACTERS,
                    "max_media_attachments": 4,
                    "characters_reserved_per_url": 23,
                },
                "media_attachments": {
                    "supported_mime_types": ["image/jpeg", "image/png"],
                    "image_size_limit": 8_000_000,
                    "image_matrix_limit": 16_777_216,
                },
            },
        }
    )
