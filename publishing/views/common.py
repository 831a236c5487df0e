"""What the publishing pages share."""

import functools
from dataclasses import dataclass

from django.http import Http404

from networks.channels.base import Channel, Limits

from .. import scheduling, selectors
from ..models import Post

PAGE_SIZE = 50
UNSCHEDULED_LIMIT = 50
# A month cell lists this many posts, then links to its week, which lists them all.
MONTH_DAY_LIMIT = 5


@functools.cache
def _timezones() -> list[str]:
    return scheduling.common_timezones()


def _get_post(request, post_id: int) -> Post:
    post = selectors.post_get(user=request.user, post_id=post_id)
    if post is None:
        raise Http404
    return post


@dataclass(frozen=True)
class Counter:
    text: str
    over: bool


def _counter(value: int, limit: int, unit: str) -> Counter:
    # The same words as compose.js writes while typing.
    text = f"{value:,} / {limit:,} {unit}"
    if value > limit:
        text += f" — {value - limit:,} over"
    return Counter(text, value > limit)


def _counters(channel: Channel, text: str, limits: Limits | None = None) -> list[Counter]:
    """The counters of `text` for `channel`, against `limits` (an account's own, such as a
    Mastodon server's) or the network's."""
    limits = limits or channel.limits
    counters = [_counter(channel.count(text), limits.max_text, limits.text_unit)]
    if limits.max_text_bytes is not None:
        counters.append(_counter(channel.text_bytes(text), limits.max_text_bytes, "bytes"))
    return counters


def _indented(teams) -> list:
    top = min((team.depth for team in teams), default=1)
    for team in teams:
        team.indent = "— " * (team.depth - top)
    return teams


# Compose and edit ------------------------------------------------------------------------------
