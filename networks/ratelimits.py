"""The networks' rate limits, read from their answers and shared by every worker (issue 16: "more
workers never means more 429s; a 429 slows that host or account, not the others").

Every answer a channel receives passes through `observe` (a hook of the channels' one HTTP
session), which knows whose call it was from `calling(...)` around the send: the account, and the
app (cxhub's registration at that host). What the answer says is kept as the time until which a
scope may not be called:

- `X-RateLimit-Remaining` / `-Reset` (Mastodon and most: an ISO time or a Unix time), X's
  `x-rate-limit-remaining` / `-reset` and Bluesky's `RateLimit-Remaining` / `-Reset` (Unix
  times): at or below CXHUB_RATE_LIMIT_RESERVE calls left, the account waits for the reset;
- Meta's `X-Business-Use-Case-Usage` (per page or account: `estimated_time_to_regain_access` in
  minutes, or a usage at 100 %) and `X-App-Usage` (the app's, in percent): the account, or the
  whole app at that host, waits;
- a 429: the account waits for Retry-After (or the reset header, or a minute).

Before each send, dispatch asks `wait_for(account, host)`: a send that would only earn a 429 is
not made, and its target is due again when the limit resets. The times are kept where every
worker reads them: in Redis when cxhub's cache is Redis (CACHE_URL), else in files under
VAR_DIR/rate-limits (the embedded default: one host).
"""

import contextlib
import contextvars
import email.utils
import json
import logging
import os
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.cache import cache

log = logging.getLogger("cxhub.networks")

# When nothing says how long: a 429 without Retry-After or reset, a Meta usage at 100 %.
DEFAULT_WAIT_SECONDS = 60.0
# A reset further away than this is not believed (a clock gone wrong, a header misread).
LONGEST_WAIT_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class Caller:
    account: str  # e.g. "account:12"
    app: str  # e.g. "app:mastodon:mastodon.social"

    @property
    def reading(self) -> str:
        """The account's reading scope (the inbox's ingestion): it stops while publishing still
        has CXHUB_READ_RESERVE_FRACTION of the calls left, so publishing always goes first."""
        return f"reading:{self.account}"


_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("cxhub_rate_caller")


@contextlib.contextmanager
def calling(*, account_id: int, channel: str, host: str) -> Iterator[None]:
    """The calls made inside are an account's, through cxhub's app at `host`."""
    token = _caller.set(caller(account_id=account_id, channel=channel, host=host))
    try:
        yield
    finally:
        _caller.reset(token)


def caller(*, account_id: int, channel: str, host: str) -> Caller:
    return Caller(account=f"account:{account_id}", app=f"app:{channel}:{host}")


# Reading an answer --------------------------------------------------------------------------------
def waits_in(status: int, headers, *, now: float | None = None) -> dict[str, float]:
    """What an answer says about waiting, as seconds by scope kind ("account", "app", and
    "reading": the account's reads, which leave publishing its reserve); empty when it says
    nothing."""
    now = time.time() if now is None else now
    waits: dict[str, float] = {}
    remaining = _number(
        _either(headers, "X-RateLimit-Remaining", "X-Rate-Limit-Remaining", "RateLimit-Remaining")
    )
    reset = reset_seconds(
        _either(headers, "X-RateLimit-Reset", "X-Rate-Limit-Reset", "RateLimit-Reset"), now=now
    )
    if remaining is not None and remaining <= settings.CXHUB_RATE_LIMIT_RESERVE:
        waits["account"] = reset if reset is not None else DEFAULT_WAIT_SECONDS
    limit = _number(_either(headers, "X-RateLimit-Limit", "X-Rate-Limit-Limit", "RateLimit-Limit"))
    if (
        remaining is not None
        and limit is not None
        and remaining <= limit * settings.CXHUB_READ_RESERVE_FRACTION
    ):
        waits["reading"] = reset if reset is not None else DEFAULT_WAIT_SECONDS
    business = _meta_business_wait(headers.get("X-Business-Use-Case-Usage"))
    if business is not None:
        waits["account"] = max(waits.get("account", 0.0), business)
    if _meta_percent(headers.get("X-App-Usage")) >= 100:
        waits["app"] = DEFAULT_WAIT_SECONDS
    if status == 429:
        asked = retry_after_seconds(headers.get("Retry-After"), now=now)
        if asked is None:
            asked = reset if reset is not None else DEFAULT_WAIT_SECONDS
        waits["account"] = max(waits.get("account", 0.0), asked)
    return {kind: min(wait, LONGEST_WAIT_SECONDS) for kind, wait in waits.items() if wait > 0}


def observe(response, *args, **kwargs):
    """A response hook of the channels' session: what the answer says, kept for the caller's
    scopes (nothing outside `calling`)."""
    whose = _caller.get(None)
    if whose is not None:
        try:
            for kind, wait in waits_in(response.status_code, response.headers).items():
                block(_SCOPES[kind](whose), wait)
        except Exception:  # never the send's failure: at worst a 429 comes and is handled
            log.exception("rate limit headers could not be kept")
    return response


_SCOPES = {
    "account": lambda whose: whose.account,
    "app": lambda whose: whose.app,
    "reading": lambda whose: whose.reading,
}


def _either(headers, *names: str) -> str | None:
    for name in names:
        value = headers.get(name)
        if value not in (None, ""):
            return value
    return None


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def reset_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """A rate-limit reset as seconds from now: an ISO 8601 time (Mastodon's X-RateLimit-Reset),
    a Unix time in seconds (X's, Bluesky's RateLimit-Reset), or a small number of seconds."""
    if not value:
        return None
    value = value.strip()
    now = time.time() if now is None else now
    try:
        number = float(value)
    except ValueError:
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, when.timestamp() - now)
    # Above a billion it is a Unix time; below, already a wait in seconds.
    return max(0.0, number - now) if number > 1_000_000_000 else max(0.0, number)


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Retry-After as seconds: a number of seconds, or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _meta_business_wait(value: str | None) -> float | None:
    """X-Business-Use-Case-Usage: {"<id>": [{"type": …, "call_count": %, "total_cputime": %,
    "total_time": %, "estimated_time_to_regain_access": minutes}]}."""
    if not value:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    wait = None
    for entries in data.values() if isinstance(data, dict) else []:
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            minutes = _number(str(entry.get("estimated_time_to_regain_access", "")))
            if minutes:
                wait = max(wait or 0.0, minutes * 60)
            elif _meta_percent(json.dumps(entry)) >= 100:
                wait = max(wait or 0.0, DEFAULT_WAIT_SECONDS)
    return wait


def _meta_percent(value: str | None) -> float:
    """The largest usage (%) of X-App-Usage or one Business Use Case entry."""
    if not value:
        return 0.0
    try:
        data = json.loads(value)
    except ValueError:
        return 0.0
    if not isinstance(data, dict):
        return 0.0
    found = [
        _number(str(data.get(name, ""))) or 0.0
        for name in ("call_count", "total_cputime", "total_time")
    ]
    return max(found)


# Where the times are kept -----------------------------------------------------------------------
def block(scope: str, seconds: float) -> None:
    """`scope` may not be called for `seconds` (a longer wait already kept stays)."""
    until = time.time() + seconds
    if _shared_cache():
        key = _cache_key(scope)
        if (cache.get(key) or 0.0) < until:
            cache.set(key, until, timeout=int(seconds) + 1)
    else:
        path = _file(scope)
        if _read_file(path) < until:
            temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            temporary.write_text(repr(until))
            temporary.replace(path)
    log.info("rate limit: %s waits %.1f s", scope, seconds)


def blocked_until(scope: str) -> float:
    if _shared_cache():
        return float(cache.get(_cache_key(scope)) or 0.0)
    return _read_file(_file(scope))


def wait_for(whose: Caller, *, reading: bool = False) -> float:
    """Seconds until the account and its app may be called again (0: now); with `reading`,
    until the account may be read from (ingestion), which also waits while publishing's reserve
    is all that is left."""
    scopes = [whose.account, whose.app] + ([whose.reading] if reading else [])
    until = max(blocked_until(scope) for scope in scopes)
    return max(0.0, until - time.time())


def forget(scope: str) -> None:
    if _shared_cache():
        cache.delete(_cache_key(scope))
    else:
        with contextlib.suppress(FileNotFoundError):
            _file(scope).unlink()


def _shared_cache() -> bool:
    return "redis" in settings.CACHES["default"]["BACKEND"].lower()


def _cache_key(scope: str) -> str:
    return f"cxhub:rate:{scope}"


def _file(scope: str) -> Path:
    folder = Path(settings.VAR_DIR) / "rate-limits"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{zlib.crc32(scope.encode()):08x}"


def _read_file(path: Path) -> float:
    try:
        return float(path.read_text() or 0.0)
    except (FileNotFoundError, ValueError):
        return 0.0
