"""The inbox's section of the post page (publishing.hooks.post_page_sections): for a reply, the
item it answers; for a post, what came back on it (the items that answer it or sit in its
conversation), the newest first. Only the items the person may see."""

from publishing.models import Post
from publishing.views.post_page import PageSection

from . import selectors

# Items shown on the page; the rest are a link away, in the inbox.
SHOWN = 10


def post_page_section(*, user, post: Post) -> PageSection | None:
    items = selectors.inbox_items(user=user)
    if post.is_reply:
        target = post.targets.first()
        network_id = (target.in_reply_to or {}).get("network_id") if target else None
        answered = (
            items.filter(account_id=target.social_account_id, network_id=network_id).first()
            if network_id
            else None
        )
        return PageSection(
            template="inbox/_post_section.html",
            context={"post": post, "answered": answered, "heard": [], "more": 0},
        )
    heard = list(items.filter(target__post=post)[: SHOWN + 1])
    if not heard:
        return None
    return PageSection(
        template="inbox/_post_section.html",
        context={
            "post": post,
            "answered": None,
            "heard": heard[:SHOWN],
            "more": len(heard) > SHOWN,
        },
    )
