"""The canonical content of a post: what approvers see and what gets published.

`content_hash` is the SHA-256 of this canonical form. An approval counts only for the hash it
was made on, and the publisher refuses to send anything whose hash is not the approved one.
Time, tags and the urgent flag are not content: changing them does not need a new approval.
"""

import hashlib
import json

from .models import Post


def canonical_content(post: Post) -> dict:
    """The content of `post` as stored now (targets and media read through prefetch if present)."""
    targets = sorted(post.targets.all(), key=lambda target: target.social_account_id)
    media = sorted(post.post_media.all(), key=lambda item: item.position)
    return {
        "body": post.body,
        "link": post.link,
        "targets": [_target(target) for target in targets],
        "media": [
            {"id": item.media_id, "sha256": item.media.sha256, "alt_text": item.media.alt_text}
            for item in media
        ],
    }


def _target(target) -> dict:
    """A target's content; a reply's names the item it answers (approvers approve an answer to
    that item, not to another), and a post of its own keeps the form its hash always had."""
    content = {"social_account": target.social_account_id, "body": target.body}
    if target.in_reply_to:
        content["in_reply_to"] = target.in_reply_to.get("network_id", "")
    return content


def hash_content(content: dict) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
