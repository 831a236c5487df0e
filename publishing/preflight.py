"""Preflight: every problem with a post, per target, each with a severity and a message a
person understands. Errors block submission (and publishing); warnings do not.

The network rules come from networks/channels; the organisation's own rules (banned terms,
plain-language reading grade, the alt-text rule) are applied here.
"""

import dataclasses
import re
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from networks.channels import get_channel, limits_from_mastodon_instance
from networks.channels.base import Limits, MediaInfo
from networks.models import Channel, SocialAccount

from .models import BannedTerm, Post
from .readability import reading_grade

# Networks that show the post's link inside the text (and count it there).
LINK_IN_TEXT = {"mastodon", "bluesky", "x", "webhook", "sandbox"}


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # "error" | "warning"
    message: str
    field: str
    social_account: int | None = None
    channel: str | None = None

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "field": self.field,
            "social_account": self.social_account,
            "channel": self.channel,
        }


def published_text(post: Post, channel: str, variant: str) -> str:
    """The text an account will receive: its variant or the master, plus the link where the
    network shows links inside the text."""
    text = variant or post.body
    if post.link and channel in LINK_IN_TEXT and post.link not in text:
        text = f"{text.rstrip()}\n\n{post.link}" if text.strip() else post.link
    return text


def delivery_channel(account: SocialAccount) -> str:
    """Where an account's posts really go: a training account (`sandbox`) keeps its network's
    rules and rendering but delivers to the sandbox feed."""
    return Channel.SANDBOX if account.sandbox else account.channel


def _media_infos(post: Post, channel: str) -> list[MediaInfo]:
    infos = []
    for item in post.post_media.all():
        media = item.media
        # A rendition made for this network is what will be sent.
        rendition = next((r for r in media.renditions.all() if r.channel == channel), None)
        source = rendition or media
        infos.append(
            MediaInfo(
                format=source.format,
                width=source.width,
                height=source.height,
                bytes=source.bytes,
                alt_text=media.alt_text,
                animated=media.animated,
            )
        )
    return infos


def _banned_terms(post: Post) -> list[BannedTerm]:
    step = post.team.steplen
    ancestors = [post.team.path[:end] for end in range(step, len(post.team.path) + 1, step)]
    return list(
        BannedTerm.objects.filter(team__isnull=True)
        | BannedTerm.objects.filter(team__path__in=ancestors)
    )


def account_limits(account: SocialAccount) -> Limits | None:
    """The limits of the account's own server where it announced them at connect (a Mastodon
    instance's GET /api/v2/instance, kept in network_settings); None: the network's defaults."""
    instance = (account.network_settings or {}).get("instance")
    if account.channel == "mastodon" and isinstance(instance, dict):
        return limits_from_mastodon_instance(instance)
    return None


def run(*, post: Post, now=None) -> list[Finding]:
    """All findings for `post` as stored now."""
    now = now or timezone.now()
    post = (
        Post.objects.select_related("team")
        .prefetch_related("targets__social_account", "post_media__media__renditions")
        .get(pk=post.pk)
    )
    findings: list[Finding] = []
    require_alt = settings.CXHUB_REQUIRE_ALT_TEXT

    if post.scheduled_at is not None and post.scheduled_at <= now:
        findings.append(
            Finding(
                "schedule_in_past",
                "error",
                "The scheduled time has passed. Choose a time in the future, or clear it to "
                "publish as soon as the post is approved.",
                "scheduled_at",
            )
        )

    terms = _banned_terms(post)
    for target in post.targets.all():
        account = target.social_account
        channel = get_channel(account.channel)
        text = published_text(post, account.channel, target.body)
        where = f"targets[{account.pk}]"
        if account.status != SocialAccount.Status.CONNECTED:
            findings.append(
                Finding(
                    "account_disconnected",
                    "error",
                    f"{account.handle} on {channel.label} is "
                    f"{account.get_status_display().lower()}: an administrator must reconnect "
                    "it before anything can be published there.",
                    f"{where}.social_account",
                    account.pk,
                    account.channel,
                )
            )
        if target.in_reply_to and not get_channel(delivery_channel(account)).replies:
            findings.append(
                Finding(
                    "replies_unsupported",
                    "error",
                    f"{account.handle}: cxhub cannot publish replies on {channel.label}.",
                    f"{where}.social_account",
                    account.pk,
                    account.channel,
                )
            )
        limits = account_limits(account)
        if target.in_reply_to:
            # A reply never needs an image, and a comment takes none.
            limits = dataclasses.replace(limits or channel.limits, requires_media=False)
            if not channel.reply_media and post.post_media.all():
                findings.append(
                    Finding(
                        "reply_media_unsupported",
                        "error",
                        f"{account.handle}: a reply on {channel.label} is a comment and takes "
                        "no images; remove them.",
                        "media",
                        account.pk,
                        account.channel,
                    )
                )
        for problem in channel.validate(text, _media_infos(post, account.channel), limits=limits):
            severity = problem.severity
            if problem.code == "alt_text_missing" and not require_alt:
                severity = "warning"
            findings.append(
                Finding(
                    problem.code,
                    severity,
                    f"{account.handle} ({channel.label}): {problem.message}",
                    f"{where}.{problem.field}",
                    account.pk,
                    account.channel,
                )
            )
        for term in terms:
            if re.search(rf"(?<!\w){re.escape(term.term)}(?!\w)", text, re.IGNORECASE):
                reason = f" ({term.reason})" if term.reason else ""
                findings.append(
                    Finding(
                        "banned_term",
                        term.severity,
                        f"{account.handle}: “{term.term}” is on the organisation's list of "
                        f"terms not to publish{reason}.",
                        f"{where}.body" if target.body else "body",
                        account.pk,
                        account.channel,
                    )
                )

    grade = reading_grade(post.body)
    target_grade = settings.CXHUB_READING_GRADE_MAX
    if grade is not None and grade > target_grade:
        findings.append(
            Finding(
                "reading_grade",
                "warning",
                f"The text reads at grade {grade:.0f}; the organisation aims for grade "
                f"{target_grade} or below. Shorter sentences and simpler words help.",
                "body",
            )
        )
    return findings
