"""Connecting a team's social accounts (DESIGN §2): the OAuth 2 authorization-code grant
(RFC 6749 §4.1, with `state` and RFC 7636 PKCE) run with requests-oauthlib, the app-password
sign-in of Bluesky, and the choice between several accounts one grant can reach (a Facebook
user's Pages). The views parse and render; networks.services keeps what this finds.

What lives between the two legs of the grant (state, PKCE verifier, team, network, server) is
kept in the person's session under its state, for FLOW_SECONDS and used once; tokens waiting for
a choice are kept there too, encrypted with the token keys. A refusal is a ConnectError (400)
or NotAllowed (403) with a message for people; nothing is stored until the service keeps it.
"""

import base64
import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.urls import reverse
from oauthlib.oauth2 import InsecureTransportError, OAuth2Error
from requests_oauthlib import OAuth2Session

from accounts.crypto import decrypt_token, encrypt_token
from accounts.models import Team, User
from cxhub.errors import ApplicationError, NotAllowed

from . import services
from .channels import all_channels, get_channel
from .channels.base import Channel, Identity, OAuthClient, OAuthSpec, TokenSet
from .channels.errors import ChannelError, PermanentError, RetryableError
from .channels.http import check_server, network_base_url, network_timeout
from .channels.oauth import revoke_oauth2
from .models import AccountStatus, SocialAccount

log = logging.getLogger("cxhub.connect")

FLOWS_KEY = "cxhub_connect_flows"
CHOICES_KEY = "cxhub_connect_choices"
# How long a person may take at the network before the answer is refused.
FLOW_SECONDS = 600
# Connects started in other tabs are kept side by side, the newest few.
MAX_FLOWS = 5


class ConnectError(ApplicationError):
    """A connect that cannot go on; `channel` names the network whose page shows it."""

    status = 400

    def __init__(self, message: str, field: str = "", *, channel: str = ""):
        super().__init__(message, {"fields": {field: [message]}} if field else {})
        self.channel = channel


# What the pages show ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Network:
    channel: Channel
    # Why it cannot be connected now ("" when it can), with what to set.
    problem: str = ""

    @property
    def name(self) -> str:
        return self.channel.name

    @property
    def label(self) -> str:
        return self.channel.label

    @property
    def account_words(self) -> str:
        """ "a Mastodon account", "an Instagram account"."""
        article = "an" if self.label[:1].upper() in "AEIOU" else "a"
        return f"{article} {self.label} account"


def callback_url(request) -> str:
    """Where the networks send the person back: CXHUB_PUBLIC_URL when set (the address the
    networks know cxhub by), else this request's own origin."""
    path = reverse("connect-callback")
    if settings.CXHUB_PUBLIC_URL:
        return settings.CXHUB_PUBLIC_URL + path
    return request.build_absolute_uri(path)


def network_problem(channel: Channel, *, callback: str) -> str:
    """Why `channel` cannot be connected from these pages now, with what to do; "" if it can.
    A network with one registration for all (X, Meta, LinkedIn) needs it in
    CXHUB_OAUTH_CLIENTS; one whose servers each register cxhub (Mastodon) needs nothing."""
    if channel.connect_method == "none":
        return (
            f"{channel.label} accounts are not signed in to: an administrator adds them in the "
            "admin pages, with their address and secret."
        )
    if channel.connect_method == "app_password":
        return "" if hasattr(channel, "sign_in") else f"cxhub cannot connect {channel.label} yet."
    base_url = network_base_url(channel)
    try:
        channel.oauth_spec(base_url)
        if not channel.needs_server:  # reads settings only; a server's own is made at start
            channel.oauth_client(base_url, redirect_uri=callback)
    except NotImplementedError:
        return f"cxhub cannot connect {channel.label} accounts yet."
    except ChannelError as exc:
        return (
            f"{exc} The registration's callback address (redirect URI) at {channel.label} is "
            f"{callback}."
        )
    return ""


def networks(*, callback: str) -> list[Network]:
    """Every network a person may connect an account of, each with what stops it, if anything."""
    return [
        Network(channel, network_problem(channel, callback=callback))
        for channel in all_channels()
        if channel.connect_method != "none"
    ]


def network(name: str) -> Channel:
    try:
        channel = get_channel(name)
    except KeyError:
        raise ConnectError(f"cxhub has no network called {name!r}.", "channel") from None
    if channel.connect_method == "none":
        raise ConnectError(
            f"{channel.label} accounts are added by an administrator in the admin pages, not "
            "connected here.",
            "channel",
            channel=channel.name,
        )
    return channel


# Who may ------------------------------------------------------------------------------------------
def check_may_connect(*, user: User, team: Team) -> None:
    if not services.social_account_may_connect(by=user, team=team):
        raise NotAllowed(
            f"Only administrators of {team.name} (or of a team above it) connect accounts to it.",
            {"fields": {"team": ["You are not an administrator of this team."]}},
        )


def check_may_reconnect(*, user: User, account: SocialAccount) -> None:
    if account.status == AccountStatus.DISCONNECTED:
        if not services.social_account_may_connect(by=user, team=account.team):
            raise NotAllowed(
                f"{account.handle} was disconnected; only administrators of "
                f"{account.team.name} (or of a team above it) connect it again.",
                {"fields": {"account": ["You are not an administrator of its team."]}},
            )
    elif not services.social_account_may_reconnect(by=user, account=account):
        raise NotAllowed(
            f"Only administrators of {account.team.name} and the people who draft for "
            f"{account.handle} reconnect it.",
            {"fields": {"account": ["You may not reconnect this account."]}},
        )


# The server a person typed --------------------------------------------------------------------
def server_address(channel: Channel, typed: str) -> str:
    """The origin of the server the account lives on: the one typed (a Mastodon server, a
    Bluesky PDS), or the network's own. Refused before any request when it is not https or
    not a public address (channels.http.check_server)."""
    typed = (typed or "").strip()
    if not channel.needs_server:
        return network_base_url(channel)
    if not typed:
        typed = network_base_url(channel)
    if not typed:
        raise ConnectError(
            f"Give the address of the {channel.label} server the account is on.",
            "server",
            channel=channel.name,
        )
    if "://" not in typed:
        typed = f"https://{typed}"
    parts = urlsplit(typed)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConnectError(f"{typed!r} is not a server address.", "server", channel=channel.name)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        raise ConnectError(
            f"{typed!r} is not a server address.", "server", channel=channel.name
        ) from None
    base = f"{parts.scheme}://{parts.hostname.lower()}{port}"
    try:
        check_server(base, what=f"{channel.label} server")
    except (PermanentError, RetryableError) as exc:
        raise ConnectError(str(exc), "server", channel=channel.name) from None
    return base


# The OAuth 2 grant --------------------------------------------------------------------------------
def _pkce_pair() -> tuple[str, str]:
    """An RFC 7636 code verifier (43–128 unreserved characters) and its S256 challenge."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _client(channel: Channel, base_url: str, redirect_uri: str) -> tuple[OAuthSpec, OAuthClient]:
    try:
        spec = channel.oauth_spec(base_url)
        client = channel.oauth_client(base_url, redirect_uri=redirect_uri)
    except NotImplementedError:
        raise ConnectError(
            f"cxhub cannot connect {channel.label} accounts yet.", "channel", channel=channel.name
        ) from None
    except RetryableError as exc:
        raise ConnectError(
            f"{channel.label} could not be reached ({exc}). Nothing was connected: try again.",
            "server",
            channel=channel.name,
        ) from None
    except ChannelError as exc:
        raise ConnectError(str(exc), "server", channel=channel.name) from None
    return spec, client


def oauth_start(
    request, *, channel: Channel, team: Team, server: str = "", account: SocialAccount | None = None
) -> str:
    """The address of the network's authorize page for this connect (or reconnect of
    `account`); what the callback will need is kept in the session under the grant's state."""
    user = request.user
    if account is not None:
        check_may_reconnect(user=user, account=account)
        base_url, team = account.base_url, account.team
    else:
        check_may_connect(user=user, team=team)
        base_url = server_address(channel, server)
    if channel.connect_method != "oauth2":
        raise ConnectError(
            f"{channel.label} is not connected by signing in at {channel.label}.",
            "channel",
            channel=channel.name,
        )
    redirect_uri = callback_url(request)
    spec, client = _client(channel, base_url, redirect_uri)
    oauth = OAuth2Session(
        client.client_id,
        redirect_uri=redirect_uri,
        scope=spec.scope_separator.join(spec.scopes),
    )
    params: dict[str, str] = dict(spec.extra_authorize_params)
    verifier = ""
    if spec.pkce:
        verifier, challenge = _pkce_pair()
        params.update(code_challenge=challenge, code_challenge_method="S256")
    try:
        url, state = oauth.authorization_url(spec.authorize_url, **params)
    except InsecureTransportError:
        raise _insecure(channel, spec.authorize_url) from None
    flows = dict(request.session.get(FLOWS_KEY) or {})
    flows[state] = {
        "channel": channel.name,
        "base_url": base_url,
        "team": team.pk,
        "account": account.pk if account is not None else None,
        "redirect_uri": redirect_uri,
        "client_id": client.client_id,
        "verifier": verifier,
        "started_at": time.time(),
    }
    newest = sorted(flows.items(), key=lambda item: item[1]["started_at"])[-MAX_FLOWS:]
    request.session[FLOWS_KEY] = dict(newest)
    return url


def _insecure(channel: Channel, url: str) -> ConnectError:
    return ConnectError(
        f"{url} is not https: cxhub sends codes and tokens over https only. (For a test "
        "server on this machine, OAUTHLIB_INSECURE_TRANSPORT=1 allows http.)",
        "server",
        channel=channel.name,
    )


def _tokens(token: dict[str, Any]) -> TokenSet:
    expires_at = None
    if token.get("expires_at"):
        try:
            expires_at = datetime.fromtimestamp(float(token["expires_at"]), tz=UTC)
        except (TypeError, ValueError, OverflowError):
            expires_at = None
    return TokenSet(
        access_token=str(token.get("access_token") or ""),
        refresh_token=str(token.get("refresh_token") or ""),
        expires_at=expires_at,
    )


def _exchange(
    channel: Channel, spec: OAuthSpec, client: OAuthClient, flow: dict, code: str, state: str
) -> TokenSet:
    """The code for tokens at the token endpoint (RFC 6749 §4.1.3), with a timeout."""
    oauth = OAuth2Session(client.client_id, redirect_uri=flow["redirect_uri"], state=state)
    kwargs: dict[str, Any] = {}
    if flow.get("verifier"):
        kwargs["code_verifier"] = flow["verifier"]
    if spec.client_auth == "basic" and client.client_secret:
        kwargs.update(
            auth=requests.auth.HTTPBasicAuth(client.client_id, client.client_secret),
            include_client_id=False,
        )
    else:
        kwargs.update(include_client_id=True, client_secret=client.client_secret or None)
    label = channel.label
    try:
        if channel.needs_server:
            check_server(spec.token_url, what=f"{label} server")
        token = oauth.fetch_token(spec.token_url, code=code, timeout=network_timeout(), **kwargs)
    except InsecureTransportError:
        raise _insecure(channel, spec.token_url) from None
    except OAuth2Error as exc:
        detail = f"{exc.error}: {exc.description}" if exc.description else exc.error
        raise ConnectError(
            f"{label} refused to give cxhub its tokens ({detail}). Nothing was connected: "
            "start again.",
            "code",
            channel=channel.name,
        ) from None
    except requests.Timeout:
        raise ConnectError(
            f"{label} did not answer within {network_timeout():g} s. Nothing was connected: "
            "try again.",
            "server",
            channel=channel.name,
        ) from None
    except requests.RequestException as exc:
        raise ConnectError(
            f"{label} could not be reached ({exc}). Nothing was connected: try again.",
            "server",
            channel=channel.name,
        ) from None
    except (ChannelError, ValueError, Warning) as exc:
        raise ConnectError(
            f"{label} answered in a way cxhub cannot use ({exc}). Nothing was connected.",
            "server",
            channel=channel.name,
        ) from None
    tokens = _tokens(token)
    if not tokens.access_token:
        raise ConnectError(
            f"{label} answered without an access token. Nothing was connected.",
            "code",
            channel=channel.name,
        )
    return tokens


@dataclass(frozen=True)
class Choice:
    """A grant that reaches several accounts: the person picks one (`key` names the wait)."""

    key: str
    channel: str
    identities: list[Identity]


def _refused(params) -> str:
    error = params.get("error", "")
    if error == "access_denied":
        return "cxhub was not given access (you, or the network, refused)."
    detail = params.get("error_description", "")
    return f"the network answered with an error: {error}" + (f" ({detail})" if detail else "")


def oauth_finish(request) -> services.ConnectResult | Choice:
    """The network's answer at the callback: state checked and spent, code exchanged for
    tokens, the account(s) read, and kept (or a Choice to make first)."""
    params = request.GET
    state = params.get("state", "")
    flows = dict(request.session.get(FLOWS_KEY) or {})
    flow = flows.pop(state, None) if state else None
    request.session[FLOWS_KEY] = flows
    if flow is None:
        raise ConnectError(
            "This answer does not belong to a connect started in this browser session: its "
            "state is unknown or was used already, or the session ended. Nothing was "
            "connected: start again.",
            "state",
        )
    channel = network(flow["channel"])
    label = channel.label
    if time.time() - float(flow["started_at"]) > FLOW_SECONDS:
        raise ConnectError(
            f"The sign-in at {label} took longer than {FLOW_SECONDS // 60} minutes. Nothing "
            "was connected: start again.",
            "state",
            channel=channel.name,
        )
    if params.get("error"):
        raise ConnectError(
            f"{label}: {_refused(params)} Nothing was connected.", "code", channel=channel.name
        )
    code = params.get("code", "")
    if not code:
        raise ConnectError(
            f"{label} sent no authorization code. Nothing was connected: start again.",
            "code",
            channel=channel.name,
        )
    team, account = _flow_objects(channel, flow)
    base_url = flow["base_url"]
    spec, client = _client(channel, base_url, flow["redirect_uri"])
    tokens = _exchange(channel, spec, client, flow, code, state)
    try:
        identities = channel.identify(base_url, tokens)
    except (ChannelError, NotImplementedError) as exc:
        _forget(spec, client, tokens)
        raise ConnectError(
            f"{label} gave access, but cxhub could not read which account it is ({exc}). "
            "Nothing was connected.",
            "server",
            channel=channel.name,
        ) from None
    if not identities:
        _forget(spec, client, tokens)
        raise ConnectError(
            f"The {label} sign-in reaches no account cxhub can publish to. Nothing was connected.",
            "identity",
            channel=channel.name,
        )
    if account is not None:
        # Reconnecting one account: the grant's matching identity, if it reaches several.
        same = [i for i in identities if i.external_id == account.external_id]
        identities = same or identities[:1]
    pending = {
        "channel": channel.name,
        "base_url": base_url,
        "team": team.pk,
        "account": account.pk if account is not None else None,
        "client_id": client.client_id,
        "tokens": _seal(tokens),
    }
    if len(identities) == 1:
        return _keep(request.user, pending, identities[0], tokens, spec=spec, client=client)
    key = secrets.token_urlsafe(16)
    pending["identities"] = [_identity_json(identity) for identity in identities]
    pending["started_at"] = time.time()
    choices = dict(request.session.get(CHOICES_KEY) or {})
    choices[key] = pending
    newest = sorted(choices.items(), key=lambda item: item[1]["started_at"])[-MAX_FLOWS:]
    request.session[CHOICES_KEY] = dict(newest)
    return Choice(key=key, channel=channel.name, identities=identities)


def _flow_objects(channel: Channel, flow: dict) -> tuple[Team, SocialAccount | None]:
    team = Team.objects.filter(pk=flow["team"]).first()
    account = None
    if flow.get("account"):
        account = SocialAccount.objects.select_related("team").filter(pk=flow["account"]).first()
        if account is None:
            raise ConnectError(
                "The account to reconnect no longer exists. Nothing was connected.",
                "account",
                channel=channel.name,
            )
        team = account.team
    if team is None:
        raise ConnectError(
            "The team no longer exists. Nothing was connected.", "team", channel=channel.name
        )
    return team, account


def _forget(spec: OAuthSpec, client: OAuthClient, tokens: TokenSet) -> None:
    """Best effort: give back tokens that will not be kept (nothing half-made is left)."""
    try:
        revoke_oauth2(spec, client, tokens.access_token, hint="access_token")
    except ChannelError as exc:
        log.info("could not revoke an unused token: %s", exc)


def _seal(tokens: TokenSet) -> str:
    return encrypt_token(
        json.dumps(
            {
                "access_token": tokens.access_token,
                "refresh_token": tokens.refresh_token,
                "expires_at": tokens.expires_at.timestamp() if tokens.expires_at else None,
            }
        )
    )


def _unseal(sealed: str) -> TokenSet:
    data = json.loads(decrypt_token(sealed))
    expires = data.get("expires_at")
    return TokenSet(
        access_token=data["access_token"],
        refresh_token=data.get("refresh_token") or "",
        expires_at=datetime.fromtimestamp(expires, tz=UTC) if expires else None,
    )


def _identity_json(identity: Identity) -> dict[str, Any]:
    return {
        "handle": identity.handle,
        "external_id": identity.external_id,
        "display_name": identity.display_name,
        "settings": dict(identity.settings),
        "tokens": _seal(identity.tokens) if identity.tokens else "",
    }


def _identity_from_json(data: dict[str, Any]) -> Identity:
    return Identity(
        handle=data["handle"],
        external_id=data["external_id"],
        display_name=data.get("display_name") or "",
        settings=data.get("settings") or {},
        tokens=_unseal(data["tokens"]) if data.get("tokens") else None,
    )


def _keep(
    user: User,
    pending: dict,
    identity: Identity,
    tokens: TokenSet,
    *,
    spec: OAuthSpec | None = None,
    client: OAuthClient | None = None,
) -> services.ConnectResult:
    team = Team.objects.get(pk=pending["team"])
    account = None
    if pending.get("account"):
        account = SocialAccount.objects.select_related("team").get(pk=pending["account"])
    own = identity.tokens or tokens
    network_settings = dict(identity.settings)
    if pending.get("client_id"):
        network_settings["oauth_client_id"] = pending["client_id"]
    try:
        return services.social_account_connect(
            by=user,
            team=team,
            channel=pending["channel"],
            base_url=pending["base_url"],
            handle=identity.handle,
            external_id=identity.external_id,
            display_name=identity.display_name,
            access_token=own.access_token,
            refresh_token=own.refresh_token,
            expires_at=own.expires_at,
            network_settings=network_settings,
            reconnect=account,
        )
    except ApplicationError:
        if spec is not None and client is not None:
            _forget(spec, client, own)
        raise


def pending_choice(request, key: str) -> Choice:
    pending = (request.session.get(CHOICES_KEY) or {}).get(key)
    if pending is None or time.time() - float(pending["started_at"]) > FLOW_SECONDS:
        raise ConnectError(
            "This choice is not waiting any more (it was made already, or took too long). "
            "Nothing was connected: start again.",
            "identity",
        )
    return Choice(
        key=key,
        channel=pending["channel"],
        identities=[_identity_from_json(i) for i in pending["identities"]],
    )


def choose(request, *, key: str, external_id: str) -> services.ConnectResult:
    """Keep the account the person picked among those the grant reaches."""
    choice = pending_choice(request, key)
    picked = next((i for i in choice.identities if i.external_id == external_id), None)
    if picked is None:
        raise ConnectError("Choose one of the accounts listed.", "identity", channel=choice.channel)
    choices = dict(request.session.get(CHOICES_KEY) or {})
    pending = choices.pop(key)
    request.session[CHOICES_KEY] = choices
    return _keep(request.user, pending, picked, _unseal(pending["tokens"]))


# App passwords (Bluesky) --------------------------------------------------------------------------
def app_password_connect(
    request,
    *,
    channel: Channel,
    team: Team,
    server: str = "",
    identifier: str = "",
    password: str,
    account: SocialAccount | None = None,
) -> services.ConnectResult:
    """Sign in once with an app password (never stored) and keep the session's tokens."""
    user = request.user
    if channel.connect_method != "app_password":
        raise ConnectError(
            f"{channel.label} is not connected with an app password.",
            "channel",
            channel=channel.name,
        )
    if account is not None:
        check_may_reconnect(user=user, account=account)
        base_url, team, identifier = account.base_url, account.team, account.handle
    else:
        check_may_connect(user=user, team=team)
        base_url = server_address(channel, server)
    if not identifier.strip():
        raise ConnectError(
            f"Give the {channel.label} handle of the account.", "identifier", channel=channel.name
        )
    if not password:
        raise ConnectError(
            f"Give an app password of the {channel.label} account.",
            "password",
            channel=channel.name,
        )
    try:
        tokens, identities = channel.sign_in(base_url, identifier=identifier, password=password)
    except ChannelError as exc:
        raise ConnectError(str(exc), "password", channel=channel.name) from None
    identity = identities[0]
    if account is not None:
        identity = next((i for i in identities if i.external_id == account.external_id), identity)
    pending = {"channel": channel.name, "base_url": base_url, "team": team.pk}
    pending["account"] = account.pk if account is not None else None
    try:
        return _keep(user, pending, identity, tokens)
    except ApplicationError:
        try:
            channel.revoke(_Unsaved(base_url, tokens))
        except ChannelError as exc:
            log.info("could not end an unused session: %s", exc)
        raise


class _Unsaved:
    """Just enough of an account for Channel.revoke: the tokens of a session not kept."""

    def __init__(self, base_url: str, tokens: TokenSet):
        self.base_url = base_url
        self.access_token = tokens.access_token
        self.refresh_token = tokens.refresh_token
        self.refresh_token_encrypted = "set" if tokens.refresh_token else ""
        self.network_settings: dict[str, Any] = {}
