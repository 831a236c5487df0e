"""Building approved posts for the dispatch tests (unit and integration) and the bench."""

from django.utils import timezone

from networks.models import Channel, SocialAccount
from publishing import services
from publishing.content import canonical_content, hash_content
from publishing.models import Post, PostStatus, PostTarget, TargetStatus

SECRET = "webhook-signing-secret"


def webhook_account(team, url: str, *, handle: str, secret: str = SECRET, **extra):
    account = SocialAccount(
        team=team, channel=Channel.WEBHOOK, handle=handle, base_url=url, **extra
    )
    account.set_tokens(access_token=secret)
    account.save()
    return account


def sandbox_account(team, *, handle: str):
    account = SocialAccount(team=team, channel=Channel.SANDBOX, handle=handle, base_url="")
    account.set_tokens(access_token="sandbox")
    account.save()
    return account


def approved_post(*, author, team, accounts, body="Launch window opens at dawn.", now=None):
    """A post made through the services and approved as the approvals app would: scheduled,
    its targets waiting and due now (or at `now`)."""
    post = services.post_create(
        by=author,
        team_id=team.pk,
        body=body,
        targets=[services.TargetInput(social_account_id=account.pk) for account in accounts],
    )
    Post.objects.filter(pk=post.pk).update(status=PostStatus.IN_REVIEW)
    post.refresh_from_db()
    return services.post_approved(post=post, content_hash=post.content_hash, by=None, now=now)


def bulk_due_posts(*, author, team, accounts, posts: int, per_post: int = 1, due=None, text="Post"):
    """Many approved posts at once, written directly (fast): `posts` posts, each with
    `per_post` targets over `accounts` in turn, all due at `due`. Returns the target ids."""
    due = due or timezone.now()
    rows = Post.objects.bulk_create(
        [
            Post(
                team=team,
                author=author,
                body=f"{text} {number}",
                status=PostStatus.SCHEDULED,
                scheduled_at=due,
                content_hash="",
            )
            for number in range(posts)
        ]
    )
    targets = []
    for index, post in enumerate(rows):
        for offset in range(per_post):
            account = accounts[(index * per_post + offset) % len(accounts)]
            targets.append(
                PostTarget(
                    post=post,
                    social_account=account,
                    status=TargetStatus.WAITING,
                    next_attempt_at=due,
                )
            )
    PostTarget.objects.bulk_create(targets)
    fresh = Post.objects.filter(pk__in=[p.pk for p in rows]).prefetch_related(
        "targets", "post_media__media"
    )
    for post in fresh:
        post.content_hash = post.approved_content_hash = hash_content(canonical_content(post))
    Post.objects.bulk_update(fresh, ["content_hash", "approved_content_hash"])
    return list(
        PostTarget.objects.filter(post_id__in=[p.pk for p in rows]).values_list("pk", flat=True)
    )
