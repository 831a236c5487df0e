"""Pages for API tokens: my tokens (list, make one and see its secret once, revoke one), and
the tokens of the people an administrator administers, which they may revoke.

Views parse, call a selector or a service of accounts.tokens, and render. A token the person may
not see is 404. The answer that shows a new secret is not cached anywhere.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods

from cxhub.errors import ApplicationError

from . import selectors, tokens
from .forms import ApiTokenForm
from .models import Role

PAGE_SIZE = 50


def _page(request, rows):
    """One keyset page of `rows` (ordered newest id first) from ?before=<id>: no COUNT, no
    OFFSET, one query."""
    before = request.GET.get("before", "")
    before_id = (
        int(before) if before.isascii() and before.isdecimal() and len(before) < 19 else None
    )
    if before_id is not None:
        rows = rows.filter(pk__lt=before_id)
    items = list(rows[: PAGE_SIZE + 1])
    has_more = len(items) > PAGE_SIZE
    items = items[:PAGE_SIZE]
    return {
        "items": items,
        "older_url": f"?{urlencode({'before': items[-1].pk})}" if has_more else None,
        "paged": before_id is not None,
    }


def _form(data=None) -> ApiTokenForm:
    return ApiTokenForm(
        data,
        default_days=settings.CXHUB_API_TOKEN_DAYS,
        max_days=settings.CXHUB_API_TOKEN_MAX_DAYS,
    )


def _is_admin(user) -> bool:
    return Role.ADMIN in selectors.roles_of(user=user)


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request):
    user = request.user
    form = _form(request.POST if request.method == "POST" else None)
    issued = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                issued = tokens.api_token_create(
                    user=user,
                    name=form.cleaned_data["name"],
                    expires_in_days=form.cleaned_data["expires_in_days"],
                    read_only=form.cleaned_data["read_only"],
                    by=user,
                )
            except ApplicationError as error:
                _apply(form, error)
                status = error.status
            else:
                form = _form()
        else:
            status = 400
    context = {
        **_page(request, selectors.api_tokens_of(user=user)),
        "form": form,
        "issued": issued,
        "now": timezone.now(),
    }
    response = render(request, "accounts/tokens.html", context, status=status)
    if issued is not None:
        add_never_cache_headers(response)  # the secret: no cache or proxy keeps a copy
    return response


def _apply(form, error: ApplicationError) -> None:
    fields = error.extra.get("fields") or {}
    placed = []
    for name, problems in fields.items():
        if name in form.fields:
            form.add_error(name, problems)
            placed += problems
    if error.message not in placed:
        form.add_error(None, error.message)


@login_required
def token_people(request):
    user = request.user
    if not _is_admin(user):
        return render(request, "accounts/tokens_people.html", {"not_admin": True}, status=403)
    now = timezone.now()
    live = selectors.api_tokens_managed_by(user=user).filter(
        revoked_at__isnull=True, expires_at__gt=now
    )
    context = {**_page(request, live), "now": now}
    return render(request, "accounts/tokens_people.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def token_revoke(request, token_id: int):
    user = request.user
    token = selectors.api_token_get(user=user, token_id=token_id)
    if token is None:
        raise Http404
    back = "tokens" if token.user_id == user.pk else "tokens-people"
    if request.method == "POST":
        try:
            tokens.api_token_revoke(token=token, by=user)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            whose = "" if token.user_id == user.pk else f" of {token.user.get_username()}"
            messages.success(
                request,
                f"Revoked the token “{token.name}” ({token.prefix}…){whose}: it no longer works.",
            )
        return redirect(back)
    return render(
        request,
        "accounts/token_revoke.html",
        {"token": token, "back": back, "mine": token.user_id == user.pk},
    )
