"""Pages for connecting social accounts: the list of a person's accounts with what they may do
to each, choosing a network, the form for it (team, server, app password), the network's
callback, choosing one of several accounts, reconnecting and disconnecting.

Views parse, call networks.connect or a service, and render: a refusal comes back on the page
with its message and status (400 for what was asked, 403 for who asked); an account the person
cannot see is 404.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts.models import Role
from accounts.selectors import team_get, teams_for
from cxhub.errors import ApplicationError

from . import connect, selectors, services
from .forms import ChooseIdentityForm, ConnectForm
from .models import AccountStatus, SocialAccount


# The list -----------------------------------------------------------------------------------------
@login_required
def social_account_list(request):
    accounts = list(
        selectors.social_accounts_for(user=request.user).order_by("team__path", "channel", "handle")
    )
    may_connect = selectors.social_account_powers(user=request.user, accounts=accounts)
    return render(
        request,
        "networks/social_accounts.html",
        {
            "accounts": accounts,
            "may_connect": may_connect,
            "needing_reconnect": sum(
                1 for a in accounts if a.status == AccountStatus.NEEDS_RECONNECT
            ),
        },
    )


# Connecting ---------------------------------------------------------------------------------------
def _admin_teams(user):
    return list(teams_for(user=user, roles=[Role.ADMIN]).order_by("path"))


def _not_an_admin(request):
    return render(
        request,
        "networks/connect.html",
        {
            "networks": [],
            "error": "Only administrators of a team connect accounts to it. Ask an administrator "
            "of your team.",
        },
        status=403,
    )


def _apply(form, error: ApplicationError) -> None:
    """The refusal on the form: beside the field it names, and its message at the top unless
    that says the same."""
    fields = error.extra.get("fields") or {}
    placed = []
    for name, problems in fields.items():
        if name in form.fields:
            form.add_error(name, problems)
            placed += problems
    if error.message not in placed:
        form.add_error(None, error.message)


def _network_page(request, channel, *, form=None, status=200, reconnect=None, error=""):
    callback = connect.callback_url(request)
    if form is None:
        form = ConnectForm(
            channel=channel,
            teams=_admin_teams(request.user),
            reconnecting=reconnect is not None,
        )
    template = "networks/connect_reconnect.html" if reconnect else "networks/connect_network.html"
    return render(
        request,
        template,
        {
            "channel": channel,
            "account_words": connect.Network(channel).account_words,
            "form": form,
            "problem": connect.network_problem(channel, callback=callback),
            "callback": callback,
            "account": reconnect,
            "error": error,
        },
        status=status,
    )


def _index_error(request, error: ApplicationError):
    return render(
        request,
        "networks/connect.html",
        {
            "networks": connect.networks(callback=connect.callback_url(request)),
            "error": error.message,
        },
        status=error.status,
    )


@login_required
def connect_index(request):
    if not _admin_teams(request.user):
        return _not_an_admin(request)
    return render(
        request,
        "networks/connect.html",
        {"networks": connect.networks(callback=connect.callback_url(request))},
    )


def _connected(request, result: services.ConnectResult):
    account = result.account
    what = "Reconnected" if result.reconnected else "Connected"
    text = f"{what} {account.handle} on {account.get_channel_display()} ({account.team.name})."
    if result.released:
        text += f" {result.released} held post(s) will now go out."
    messages.success(request, text)
    return redirect(reverse("social-accounts") + f"#account-{account.pk}")


@login_required
def connect_network(request, channel: str):
    teams = _admin_teams(request.user)
    if not teams:
        return _not_an_admin(request)
    try:
        network = connect.network(channel)
    except ApplicationError as error:
        return _index_error(request, error)
    if request.method != "POST":
        return _network_page(request, network)
    form = ConnectForm(request.POST, channel=network, teams=teams)
    problem = connect.network_problem(network, callback=connect.callback_url(request))
    if problem:
        form.add_error(None, problem)
        return _network_page(request, network, form=form, status=400)
    if not form.is_valid():
        return _network_page(request, network, form=form, status=400)
    team = team_get(user=request.user, team_id=form.cleaned_data["team"])
    if team is None:
        form.add_error("team", "Choose one of the teams listed.")
        return _network_page(request, network, form=form, status=400)
    values = form.cleaned_data
    try:
        if network.connect_method == "oauth2":
            return redirect(
                connect.oauth_start(
                    request, channel=network, team=team, server=values.get("server", "")
                )
            )
        result = connect.app_password_connect(
            request,
            channel=network,
            team=team,
            server=values.get("server", ""),
            identifier=values["identifier"],
            password=values["password"],
        )
    except ApplicationError as error:
        _apply(form, error)
        return _network_page(request, network, form=form, status=error.status)
    return _connected(request, result)


@login_required
def connect_callback(request):
    try:
        outcome = connect.oauth_finish(request)
    except ApplicationError as error:
        channel = getattr(error, "channel", "")
        if not channel:
            return _index_error(request, error)
        return _network_page(
            request, connect.network(channel), status=error.status, error=error.message
        )
    if isinstance(outcome, connect.Choice):
        return redirect("connect-choose", key=outcome.key)
    return _connected(request, outcome)


@login_required
def connect_choose(request, key: str):
    try:
        choice = connect.pending_choice(request, key)
    except ApplicationError as error:
        return _index_error(request, error)
    network = connect.network(choice.channel)
    form = ChooseIdentityForm(request.POST or None, identities=choice.identities)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                result = connect.choose(request, key=key, external_id=form.cleaned_data["identity"])
            except ApplicationError as error:
                _apply(form, error)
                status = error.status
            else:
                return _connected(request, result)
        else:
            status = 400
    return render(
        request,
        "networks/connect_choose.html",
        {"channel": network, "form": form, "choice": choice},
        status=status,
    )


# One account --------------------------------------------------------------------------------------
def _account(request, account_id: int) -> SocialAccount:
    account = selectors.social_account_get(user=request.user, account_id=account_id)
    if account is None:
        raise Http404
    return account


@login_required
def social_account_reconnect(request, account_id: int):
    account = _account(request, account_id)
    try:
        network = connect.network(account.channel)
        connect.check_may_reconnect(user=request.user, account=account)
    except ApplicationError as error:
        return render(
            request,
            "networks/connect_reconnect.html",
            {"account": account, "channel": None, "error": error.message},
            status=error.status,
        )
    if request.method != "POST":
        return _network_page(request, network, reconnect=account)
    form = ConnectForm(request.POST, channel=network, reconnecting=True)
    if not form.is_valid():
        return _network_page(request, network, form=form, status=400, reconnect=account)
    try:
        if network.connect_method == "oauth2":
            return redirect(
                connect.oauth_start(request, channel=network, team=account.team, account=account)
            )
        result = connect.app_password_connect(
            request,
            channel=network,
            team=account.team,
            password=form.cleaned_data["password"],
            account=account,
        )
    except ApplicationError as error:
        _apply(form, error)
        return _network_page(request, network, form=form, status=error.status, reconnect=account)
    return _connected(request, result)


@login_required
def social_account_disconnect(request, account_id: int):
    account = _account(request, account_id)
    error = None
    status = 200
    if not services.social_account_may_connect(by=request.user, team=account.team):
        error = (
            f"Only administrators of {account.team.name} (or of a team above it) disconnect "
            "its accounts."
        )
        status = 403
    elif account.status == AccountStatus.DISCONNECTED:
        error = f"{account.handle} is disconnected already."
        status = 409
    elif request.method == "POST":
        try:
            services.social_account_disconnect(account=account, by=request.user)
        except ApplicationError as refusal:
            error, status = refusal.message, refusal.status
        else:
            messages.success(
                request,
                f"Disconnected {account.handle} on {account.get_channel_display()}. Its "
                "scheduled posts are held until it is connected again.",
            )
            return redirect(reverse("social-accounts") + f"#account-{account.pk}")
    return render(
        request,
        "networks/connect_disconnect.html",
        {"account": account, "error": error},
        status=status,
    )
