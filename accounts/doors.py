"""The door policy: every way in (the sign-in page, the admin, which signs in through it, the
token endpoint, a password change, and the SSO and second-factor steps built on them) asks here
before it checks a password and reports here after, so all share one throttle and one audit
trail.

Counting
- Only password tries are counted. Failures of single sign-on or of a second factor (the methods
  in UNCOUNTED_METHODS) are audited but never counted, and no lock is ever checked before them,
  so no one can lock a person out of a working identity provider or authenticator. Any other
  method name is a password try and is counted.
- Failures are counted per (person, client address) pair. From LOGIN_SLOWDOWN_AFTER failures of
  a pair within LOGIN_FAILURE_WINDOW_SECONDS, the pair's next try must wait
  LOGIN_SLOWDOWN_SECONDS after its last failure, doubling with each further failure; at
  LOGIN_FAILURE_LIMIT failures the pair is locked until the oldest of them leaves the window.
  Failures from address A never hold back the same person at address B: guessing someone's
  password from elsewhere cannot lock them out.
- One address with LOGIN_ADDRESS_FAILURE_LIMIT failures within the window, whatever the
  usernames (password spraying), may not try any password until the oldest leaves the window.
- A try refused for waiting is not checked and not counted; a success clears the pair's failures;
  failures older than the window are forgotten (the audit trail keeps them).
- Known limit: tries that arrive at the same moment are all let through before any of them has
  failed, so a burst can pass the limit by as many tries as the server runs at once.

Audit: `auth.login` (every sign-in, with its method and address), `auth.login_failed`,
`auth.slowdown` and `auth.lockout` (each once, when it starts; `scope` "pair" or "address"),
`auth.logout`.

The client address is REMOTE_ADDR, unless that peer is a trusted proxy (CXHUB_TRUSTED_PROXIES):
then X-Forwarded-For is read from the right, skipping trusted hops, and the first untrusted
address is the client's. When every hop is trusted the leftmost is taken. A malformed entry (a
name, "unknown", garbage) stops the walk at the last trusted hop, which is then taken as the
client: that proxy passed on something we cannot read, and it is the nearest address we can
vouch for (all clients behind it share it rather than any of them choosing its own). An
untrusted peer's X-Forwarded-For is never read: anyone could write it.
"""

import ipaddress
import math
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import record
from cxhub.errors import ApplicationError
from cxhub.locks import lock_for_transaction

from .models import LoginFailure, User

# Ways in that check no password: audited, never counted, never refused by a lock.
UNCOUNTED_METHODS = frozenset(
    {"oidc", "saml", "sso", "totp", "webauthn", "passkey", "recovery", "recovery_code", "otp"}
)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class SignInThrottled(ApplicationError):
    """A password try refused because the pair (or the address) must wait: a 429."""

    status = 429

    def __init__(self, wait: int):
        self.wait = wait
        super().__init__(
            f"Too many failed sign-ins. Try again in {_duration(wait)}.",
            {"retry_after_seconds": wait},
        )


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"about {minutes} minutes"


# The client's address ----------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return tuple(ipaddress.ip_network(net, strict=False) for net in proxies)


def _parse(value: str) -> Address | None:
    """An address as proxies write it: bare, "[v6]" or with a port ("1.2.3.4:80", "[v6]:80")."""
    value = value.strip()
    if value.startswith("["):
        value = value[1 : value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address: Address) -> bool:
    return any(address in net for net in _networks(tuple(settings.TRUSTED_PROXIES)))


def client_address(request) -> str | None:
    """The address of the client behind any trusted proxies (see the module's docstring)."""
    peer = _parse(request.META.get("REMOTE_ADDR") or "")
    if peer is None:
        return None
    if not _trusted(peer):
        return str(peer)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    last_trusted = peer
    for entry in reversed([part for part in forwarded.split(",") if part.strip()]):
        hop = _parse(entry)
        if hop is None:
            break
        if not _trusted(hop):
            return str(hop)
        last_trusted = hop
    return str(last_trusted)


# Throttle ----------------------------------------------------------------------------------------
def _username(username: str) -> str:
    # Case variants of one name count together.
    return username.strip().lower()[:150]


def _window() -> timedelta:
    return timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)


def _slowdown(failures: int) -> timedelta:
    """The pause a pair with this many failures must leave after its last one."""
    steps = failures - settings.LOGIN_SLOWDOWN_AFTER
    seconds = settings.LOGIN_SLOWDOWN_SECONDS * 2 ** min(steps, 30)
    return timedelta(seconds=min(seconds, settings.LOGIN_FAILURE_WINDOW_SECONDS))


def _pair(username: str, address: str | None):
    return LoginFailure.objects.filter(username=username, address=address)


def _until(*, username: str, address: str | None, now: datetime) -> datetime | None:
    """Until when the pair (and its address) may not try, or None."""
    since = now - _window()
    limit = settings.LOGIN_FAILURE_LIMIT
    times = list(
        _pair(username, address)
        .filter(at__gte=since)
        .order_by("-at")
        .values_list("at", flat=True)[:limit]
    )
    candidates = []
    if len(times) >= limit:
        candidates.append(times[limit - 1] + _window())
    elif len(times) >= settings.LOGIN_SLOWDOWN_AFTER:
        candidates.append(times[0] + _slowdown(len(times)))
    if address is not None:
        spray = settings.LOGIN_ADDRESS_FAILURE_LIMIT
        oldest = (
            LoginFailure.objects.filter(address=address, at__gte=since)
            .order_by("-at")
            .values_list("at", flat=True)[spray - 1 : spray]
        )
        candidates.extend(at + _window() for at in oldest)
    until = max(candidates, default=None)
    return until if until is not None and until > now else None


def sign_in_wait(*, request, username: str) -> int:
    """Seconds to wait before another password try as `username` from this client (0: may try
    now). Ask before checking a password; never before SSO or a second factor."""
    now = timezone.now()
    until = _until(username=_username(username), address=client_address(request), now=now)
    return math.ceil((until - now).total_seconds()) if until else 0


@transaction.atomic
def sign_in_failed(*, request, username: str, method: str) -> None:
    """A failed try at a way in: audited always, counted when it was a password try."""
    address = client_address(request)
    now = timezone.now()
    typed = username[:150]
    record(
        actor=None,
        action="auth.login_failed",
        object_type="accounts.user",
        object_id=typed,
        data={"username": typed, "address": address, "method": method},
    )
    if method in UNCOUNTED_METHODS:
        return
    name = _username(username)
    # Failures from one client address (or, without one, as one person) count in turn, so a
    # slowdown or lockout is recorded exactly once, by the failure that starts it. The address
    # covers both counts below: the pair's and the address's.
    lock_for_transaction(f"doors.failure:{address}" if address else f"doors.failure:@{name}")
    LoginFailure.objects.create(username=name, address=address, at=now, method=method[:30])
    since = now - _window()
    LoginFailure.objects.filter(at__lt=since).delete()

    failures = _pair(name, address).filter(at__gte=since).count()
    who = {"username": typed, "address": address, "method": method, "failures": failures}
    if failures == settings.LOGIN_FAILURE_LIMIT:
        record(
            actor=None,
            action="auth.lockout",
            object_type="accounts.user",
            object_id=typed,
            data={**who, "scope": "pair", "until": (now + _window()).isoformat()},
        )
    elif settings.LOGIN_SLOWDOWN_AFTER == failures < settings.LOGIN_FAILURE_LIMIT:
        record(
            actor=None,
            action="auth.slowdown",
            object_type="accounts.user",
            object_id=typed,
            data={**who, "scope": "pair", "wait_seconds": int(_slowdown(failures).total_seconds())},
        )
    if address is not None:
        from_address = LoginFailure.objects.filter(address=address, at__gte=since).count()
        if from_address == settings.LOGIN_ADDRESS_FAILURE_LIMIT:
            record(
                actor=None,
                action="auth.lockout",
                object_type="accounts.user",
                object_id=typed,
                data={
                    "scope": "address",
                    "address": address,
                    "failures": from_address,
                    "method": method,
                    "last_username": typed,
                    "until": (now + _window()).isoformat(),
                },
            )


@transaction.atomic
def sign_in_succeeded(*, request, user: User, method: str) -> None:
    """A person is in (every factor the way in asks for passed): audited, and the pair's
    failures are forgotten."""
    address = client_address(request)
    _pair(_username(user.get_username()), address).delete()
    record(actor=user, action="auth.login", obj=user, data={"address": address, "method": method})


@transaction.atomic
def sign_out_recorded(*, request, user: User) -> None:
    record(actor=user, action="auth.logout", obj=user, data={"address": client_address(request)})
