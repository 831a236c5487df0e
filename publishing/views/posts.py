"""The post page and its actions (the page itself is drawn by post_page.py), and the posts list."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from accounts.selectors import teams_for
from cxhub.errors import ApplicationError
from networks.channels import get_channel
from networks.selectors import social_accounts_for

from .. import selectors, services
from ..dispatch import sweep
from ..forms import CancelForm, PostFilterForm
from ..models import Post, PostStatus
from .common import PAGE_SIZE, _get_post, _indented
from .post_page import _render_post


@login_required
def post_detail(request, post_id: int):
    return _render_post(request, _get_post(request, post_id))


@login_required
@require_POST
def post_submit(request, post_id: int):
    post = _get_post(request, post_id)
    try:
        services.post_submit(post=post, by=request.user)
    except ApplicationError as error:
        return _render_post(
            request, _get_post(request, post_id), error=error.message, status=error.status
        )
    messages.success(request, "Submitted for approval.")
    return redirect("post-detail", post_id=post.pk)


@login_required
@require_POST
def post_cancel(request, post_id: int):
    post = _get_post(request, post_id)
    form = CancelForm(request.POST)
    if not form.is_valid():
        return _render_post(
            request,
            post,
            error="The reason has at most 1,000 characters.",
            status=400,
            cancel_form=form,
        )
    was_publishing = post.status == PostStatus.PUBLISHING
    try:
        post = services.post_cancel(post=post, by=request.user, reason=form.cleaned_data["reason"])
    except ApplicationError as error:
        return _render_post(
            request, _get_post(request, post_id), error=error.message, status=error.status
        )
    if was_publishing and post.status != PostStatus.CANCELLED:
        messages.success(
            request,
            "Publishing is stopped: the accounts it had not reached yet are cancelled. What "
            "went out stays out, and a send already under way finishes.",
        )
    else:
        messages.success(request, "The post is cancelled.")
    return redirect("post-detail", post_id=post.pk)


@login_required
@require_POST
def post_target_decide(request, post_id: int, target_id: int):
    """A person's word on a target held because reconcile could not tell (dispatch)."""
    post = _get_post(request, post_id)
    target = next((t for t in post.targets.all() if t.pk == target_id), None)
    if target is None:
        raise Http404
    try:
        sweep.target_decide(
            target=target,
            by=request.user,
            decision=request.POST.get("decision", ""),
            external_id=request.POST.get("external_id", ""),
        )
    except ApplicationError as error:
        return _render_post(
            request, _get_post(request, post_id), error=error.message, status=error.status
        )
    messages.success(request, "Decided. The post's history records who decided what.")
    return redirect("post-detail", post_id=post.pk)


@login_required
@require_POST
def post_duplicate(request, post_id: int):
    post = _get_post(request, post_id)
    try:
        copy = services.post_duplicate(post=post, by=request.user)
    except ApplicationError as error:
        return _render_post(request, post, error=error.message, status=error.status)
    messages.success(request, f"A new draft copied from post {post.pk}. Edit it, then submit it.")
    return redirect("post-edit", post_id=copy.pk)


# Filters shared by the posts list and the calendar ---------------------------------------------
def _filters(request, *, extra_errors: dict | None = None):
    """(form, teams, accounts, errors). The selects list the user's teams and accounts; a team or
    account that is not among them is a 404, as any object outside the user's scope."""
    user = request.user
    teams = _indented(list(teams_for(user=user)))
    accounts = list(social_accounts_for(user=user).order_by("channel", "handle", "pk"))
    form = PostFilterForm(request.GET)
    errors: dict[str, list[str]] = dict(extra_errors or {})
    selection = {}
    if not form.is_valid():
        errors.update({name: list(found) for name, found in form.errors.items()})
    else:
        team_id = form.cleaned_data.get("team")
        account_id = form.cleaned_data.get("account")
        team = next((team for team in teams if team.pk == team_id), None)
        if team_id is not None and team is None:
            raise Http404
        if account_id is not None and all(account.pk != account_id for account in accounts):
            raise Http404
        selection = {"status": form.statuses(), "team": team, "account_id": account_id}
    given = {name: request.GET.get(name, "") for name in ("status", "team", "account")}
    return selection, teams, accounts, errors, given


def _networks(post: Post) -> list[str]:
    seen: list[str] = []
    for target in post.targets.all():
        label = get_channel(target.social_account.channel).label
        if label not in seen:
            seen.append(label)
    return seen


@login_required
def post_list(request):
    selection, teams, accounts, errors, given = _filters(request)
    context = {
        "teams": teams,
        "accounts": accounts,
        "statuses": PostStatus.choices,
        "given": given,
        "errors": errors,
        "posts": [],
    }
    if errors:
        return render(request, "publishing/post_list.html", context, status=400)
    before = request.GET.get("before", "")
    valid = before.isascii() and before.isdecimal() and len(before) < 19
    before_id = int(before) if valid else None
    posts = selectors.post_list_page(
        user=request.user, before_id=before_id, size=PAGE_SIZE, **selection
    )
    has_more = len(posts) > PAGE_SIZE
    posts = posts[:PAGE_SIZE]
    for post in posts:
        post.networks = _networks(post)
        post.first_line = next((line for line in post.body.splitlines() if line.strip()), "")
    query = [(name, value) for name, value in given.items() if value]
    context.update(
        posts=posts,
        older_url=f"?{urlencode([*query, ('before', posts[-1].pk)])}" if has_more else None,
        newest_url=f"?{urlencode(query)}" if before_id is not None else None,
    )
    return render(request, "publishing/post_list.html", context)


# The calendar ----------------------------------------------------------------------------------
