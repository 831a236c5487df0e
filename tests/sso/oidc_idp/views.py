"""The provider's own pages around django-oidc-provider's: a sign-in form for its people, and
the tests' controls (make or change a person with their groups; remove one, which ends their
tokens there as removing someone at a real provider does)."""

import json

from django.contrib.auth import authenticate, get_user_model, login
from django.contrib.auth.models import Group
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect
from django.utils.html import escape
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


def sign_in(request):
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


@csrf_exempt
@require_POST
def person_put(request):
    data = json.loads(request.body)
    user, _ = get_user_model().objects.get_or_create(username=data["username"])
    user.first_name = data.get("first_name", "")
    user.last_name = data.get("last_name", "")
    user.email = data.get("email", "")
    user.set_password(data["password"])
    user.save()
    user.groups.set([Group.objects.get_or_create(name=name)[0] for name in data.get("groups", [])])
    return JsonResponse({"sub": str(user.pk)})


@csrf_exempt
@require_POST
def person_remove(request, username):
    deleted, _ = get_user_model().objects.filter(username=username).delete()
    return JsonResponse({"deleted": deleted})


@csrf_exempt
@require_POST
def client_redirect_add(request):
    """Another address of cxhub to answer to (a live server's port is only known at run time)."""
    from oidc_provider.models import Client

    client = Client.objects.get()
    uri = json.loads(request.body)["redirect_uri"]
    if uri not in client.redirect_uris:
        client.redirect_uris = [*client.redirect_uris, uri]
        client.save()
    return JsonResponse({"redirect_uris": client.redirect_uris})
