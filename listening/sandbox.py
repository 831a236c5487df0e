"""The demo's public conversation: sandbox watches hear a made-up steady stream about their
terms (`stream_tick`, on a timer in `make run`), start with a day of it behind them
(`seed_history`), and on `manage.py sandbox_surge` a surge of angry posts about a made-up scam
(`surge`), so a new user sees an alert fire. The posts go through the same store and detectors
as posts read from a network; their network is "sandbox"."""

import random
import uuid
from datetime import datetime, timedelta

from django.utils import timezone

from networks.channels import PublicPost as Found

from . import alerts
from .models import Alert, Watch
from .services import posts_store

NETWORK = "sandbox"
# Posts a minute in a sandbox watch's steady stream, on average.
STEADY_PER_MINUTE = 0.5

_STEADY = [
    "Looking forward to the {term} this week, the kids are excited.",
    "Does anyone know what time the {term} coverage starts?",
    "Our library has a talk about the {term} on Thursday, handy.",
    "Reminder: the {term} schedule is on the agency's site.",
    "Interesting thread on why the {term} matters for weather forecasts.",
    "The {term} helpline answered quickly, thanks!",
    "Is the {term} stream available with captions?",
    "Heard the {term} team is visiting our school next week.",
]
# A made-up scam: texts selling passes or demanding fines, asking for bank details.
_SURGE = [
    "Got a text about the {term}: pay a fine today or be prosecuted. This is a scam, furious!",
    "WARNING: fake {term} messages asking for bank details. Awful, my mum nearly paid.",
    "Another {term} scam text selling viewing passes for bank details. Disgraceful.",
    "The {term} text says pay a fine by link within 24 hours. Terrible, a total fraud.",
    "Scammers are using the {term} to steal bank details. Angry and scared.",
]


def _term(watch: Watch, rng: random.Random) -> str:
    choices = list(watch.terms) + [f"#{tag}" for tag in watch.hashtags]
    plain = [term.rstrip("*") for term in choices if term.strip("*#")]
    return rng.choice(plain) if plain else "launch"


def _post(watch: Watch, rng: random.Random, template: str, at: datetime) -> Found:
    author = f"resident{rng.randint(1, 400)}.example"
    return Found(
        network_id=f"sandbox:{uuid.uuid4()}",
        text=template.format(term=_term(watch, rng)),
        created_at=at,
        author_handle=author,
        author_name=author.split(".")[0].title(),
        url="",
        language="en",
        likes=rng.randint(0, 30),
        reposts=rng.randint(0, 10),
        replies=rng.randint(0, 5),
    )


def _steady(watch: Watch, rng: random.Random, start: datetime, end: datetime) -> list[Found]:
    """A Poisson stream at STEADY_PER_MINUTE from `start` to `end`."""
    posts, at = [], start
    while True:
        at += timedelta(minutes=rng.expovariate(STEADY_PER_MINUTE))
        if at >= end:
            return posts
        posts.append(_post(watch, rng, rng.choice(_STEADY), at))


def seed_history(watch: Watch, *, hours: int = 24, now: datetime | None = None) -> int:
    """A sandbox watch's last `hours` of steady conversation, as if it had listened all along;
    the number of hits."""
    now = now or timezone.now()
    rng = random.Random(f"history:{watch.pk}")
    start = now - timedelta(hours=hours)
    Watch.objects.filter(pk=watch.pk).update(listening_since=start)
    watch.listening_since = start
    posts = _steady(watch, rng, start, now)
    return len(posts_store(watch=watch, network=NETWORK, posts=posts).hits)


def stream_tick(*, now: datetime | None = None, seconds: int = 60) -> int:
    """The last `seconds` of every active sandbox watch's steady stream; the number of hits."""
    now = now or timezone.now()
    rng = random.Random()
    added = 0
    for watch in Watch.objects.filter(sandbox=True, active=True).select_related("team"):
        posts = _steady(watch, rng, now - timedelta(seconds=seconds), now)
        stored = posts_store(watch=watch, network=NETWORK, posts=posts)
        added += len(stored.hits)
        if stored.claims:
            alerts.claims_matched(watch, stored.claims)
        alerts.evaluate(watch, now=now)
    return added


def surge(
    watch: Watch, *, posts: int = 80, minutes: int = 3, now: datetime | None = None
) -> tuple[int, list[Alert]]:
    """`posts` angry posts about a made-up scam over the last `minutes`: the hits stored and the
    alerts raised (the detectors run as after a collection)."""
    now = now or timezone.now()
    rng = random.Random()
    found = [
        _post(watch, rng, rng.choice(_SURGE), now - timedelta(seconds=rng.uniform(0, minutes * 60)))
        for _ in range(posts)
    ]
    if watch.listening_since is None:
        Watch.objects.filter(pk=watch.pk).update(listening_since=now - timedelta(hours=1))
        watch.refresh_from_db(fields=["listening_since"])
    stored = posts_store(watch=watch, network=NETWORK, posts=found)
    raised = alerts.claims_matched(watch, stored.claims) if stored.claims else []
    raised += alerts.evaluate(watch, now=now)
    return len(stored.hits), raised
