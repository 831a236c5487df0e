"""Replies, mentions and comments for sandbox accounts, which no network answers: generated, so
that the demo and a training desk show a living inbox (`manage.py sandbox_inbound`, and the demo's
seed). They are stored as any network's are (services.items_store): the same signals, the same
link to our published targets, the same audit event."""

import random
import uuid
from datetime import datetime, timedelta

from django.utils import timezone

from cxhub.errors import ApplicationError
from networks.channels import Inbound
from networks.models import AccountStatus, Channel, SocialAccount
from publishing.models import PostTarget, TargetStatus

from .services import Stored, items_store

# What the public says, by the feeling the writer meant (the analyser decides what is stored).
TEXTS = {
    "positive": [
        "Thank you for the clear update, this is really helpful!",
        "Great work by the team today, the launch was amazing.",
        "Love these photos, thanks for sharing them with us.",
        "Brilliant explanation, my kids loved the visit. Thank you!",
        "Merci beaucoup pour ces informations très utiles !",
    ],
    "neutral": [
        "What time does the visitor centre open on Saturday?",
        "Is the live stream going to be on this page or on the website?",
        "Where can I find the schedule for next month?",
        "¿Dónde puedo encontrar el horario de la próxima semana?",
        "Wann beginnt die Übertragung morgen?",
    ],
    "negative": [
        "This is terrible, I waited two hours and nobody answered my question.",
        "Awful service. The website is broken again and I am angry.",
        "I got a text asking me to pay a fine for the census. Is this a scam? Horrible.",
        "Worst experience ever, the office was closed with no notice. Disgraceful.",
        "Very disappointed and frustrated: my application was lost twice.",
    ],
}
AUTHORS = [
    ("amira.k", "Amira K."),
    ("ben_walks", "Ben"),
    ("chloe.dupont", "Chloé Dupont"),
    ("dev_rao", "Dev Rao"),
    ("eli.m", "Eli M."),
    ("farah", "Farah"),
    ("gus_on_bikes", "Gus"),
    ("hana.s", "Hana S."),
]
# Networks whose public answers are comments on a post, not posts of their own.
_COMMENTING = {Channel.FACEBOOK, Channel.INSTAGRAM, Channel.LINKEDIN}


def sandbox_inbound(
    *,
    account: SocialAccount,
    count: int,
    sentiment: str | None = None,
    now: datetime | None = None,
    seed: int | None = None,
) -> Stored:
    """Make `count` items arrive on a sandbox account (of one feeling, with `sentiment`): replies
    to what it published where it has published, mentions otherwise; comments on the networks
    that have comments. Spread over the last hour, newest last."""
    if not account.sandbox:
        raise ApplicationError(
            f"{account.handle} is not a sandbox account: its inbox comes from its network.",
            {"fields": {"account": ["A sandbox account."]}},
        )
    if sentiment is not None and sentiment not in TEXTS:
        raise ApplicationError(
            f"Unknown sentiment {sentiment!r}.",
            {"fields": {"sentiment": [f"One of {', '.join(TEXTS)}."]}},
        )
    if not 1 <= count <= 10_000:
        raise ApplicationError(
            "Make 1 to 10,000 items at a time.", {"fields": {"count": ["1 to 10,000."]}}
        )
    rng = random.Random(seed)
    now = now or timezone.now()
    ours = list(
        PostTarget.objects.filter(social_account=account, status=TargetStatus.PUBLISHED)
        .exclude(external_id="")
        .order_by("-published_at", "-pk")
        .values_list("external_id", flat=True)[:20]
    )
    items = []
    for index in range(count):
        feeling = sentiment or rng.choice(list(TEXTS))
        handle, name = rng.choice(AUTHORS)
        answered = rng.choice(ours) if ours and rng.random() < 0.7 else ""
        kind = _kind(account, answered)
        text = rng.choice(TEXTS[feeling])
        if kind == "mention":
            text = f"{account.handle} {text}"
        items.append(
            Inbound(
                network_id=f"sandbox:{uuid.uuid4().hex}",
                kind=kind,
                text=text,
                created_at=now - timedelta(seconds=(count - index) * 3600 / max(count, 1)),
                author_handle=handle,
                author_name=name,
                author_id=f"sandbox-{handle}",
                thread_id=answered,
                in_reply_to_id=answered,
                raw={"sandbox": True, "meant": feeling},
            )
        )
    return items_store(account=account, items=items)


def _kind(account: SocialAccount, answered: str) -> str:
    if account.channel in _COMMENTING:
        return "comment"
    return "reply" if answered else "mention"


def sandbox_trickle() -> Stored | None:
    """One item on one sandbox account picked at random (the demo's periodic trickle, so that
    the inbox of `make run` goes on living); None when there is no sandbox account."""
    account = (
        SocialAccount.objects.select_related("team")
        .filter(sandbox=True, status=AccountStatus.CONNECTED)
        .order_by("?")
        .first()
    )
    if account is None:
        return None
    return sandbox_inbound(account=account, count=1, now=timezone.now())
