"""A Mastodon server for the tests, written from docs.joinmastodon.org (methods/media,
methods/statuses, methods/accounts, api/rate-limits, entities/Error): it checks the bearer
token, the multipart upload and its description length, the status's length and media, honours
Idempotency-Key, and records every status it makes."""

import email.parser
import email.policy
import html
import io
import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from PIL import Image

from publishing.channels.mastodon import MastodonChannel

from .server import Answer, FakeNetwork, Request, answer_json

MAX_DESCRIPTION = 1_500
MAX_IMAGE_BYTES = 16 * 1024 * 1024
MAX_MEDIA = 4
_URL = re.compile(r"https?://[^\s<]+")
_MENTION = re.compile(r"(?<![=/\w])@([a-z0-9_]+)(?:@([\w.-]+\w))?", re.IGNORECASE)
_ENTITY = re.compile(f"{_URL.pattern}|{_MENTION.pattern}", re.IGNORECASE)


def _multipart(request: Request) -> dict[str, tuple[str | None, str | None, bytes]]:
    """name → (filename, content type, bytes)."""
    head = f"Content-Type: {request.headers.get('Content-Type')}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        fields[name] = (
            part.get_filename(),
            part.get_content_type(),
            part.get_payload(decode=True) or b"",
        )
    return fields


def _link(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return (
        f'<a href="{html.escape(url)}" rel="nofollow noopener" target="_blank">'
        f'<span class="invisible">{scheme}://</span><span class="ellipsis">'
        f'{html.escape(rest[:30])}</span><span class="invisible">{html.escape(rest[30:])}'
        "</span></a>"
    )


def _mention(match: re.Match) -> str:
    user, server = match.group(1), match.group(2) or "local.example"
    return (
        f'<span class="h-card"><a href="https://{server}/@{user}" class="u-url mention">'
        f"@<span>{user}</span></a></span>"
    )


def _html(text: str) -> str:
    """Roughly as Mastodon renders a status: paragraphs, <br />, links with hidden spans."""
    paragraphs = []
    for paragraph in text.split("\n\n"):
        out, last = [], 0
        for match in _ENTITY.finditer(paragraph):
            out.append(html.escape(paragraph[last : match.start()], quote=False))
            if match.group().startswith("@"):
                out.append(_mention(_MENTION.fullmatch(match.group())))
            else:
                out.append(_link(match.group()))
            last = match.end()
        out.append(html.escape(paragraph[last:], quote=False))
        paragraphs.append("<p>" + "".join(out).replace("\n", "<br />") + "</p>")
    return "".join(paragraphs)


class MastodonServer(FakeNetwork):
    def __init__(self) -> None:
        super().__init__()
        self.account_id = "109"
        self.username = "north"
        self.tokens = {"good-token"}
        self.media: dict[str, dict[str, Any]] = {}
        self.statuses: list[dict[str, Any]] = []
        self.idempotency: dict[str, str] = {}
        # How many polls a new upload answers 206 for (0: processed at once, answered 200).
        self.processing_polls = 0
        self._ids = itertools.count(110_000_000_000_000_001)

    def route(self, request: Request):
        path, method = request.path, request.method
        if method == "POST" and path == "/api/v2/media":
            return "media", self.upload
        if method == "GET" and path.startswith("/api/v1/media/"):
            return "media_get", self.media_get
        if method == "POST" and path == "/api/v1/statuses":
            return "statuses", self.create_status
        if method == "GET" and path == "/api/v1/accounts/verify_credentials":
            return "verify", self.verify
        if method == "GET" and re.fullmatch(r"/api/v1/accounts/[^/]+/statuses", path):
            return "account_statuses", self.account_statuses
        return "other", self.not_found

    def failure(self, mode: str, options: dict) -> Answer:
        if mode == "401":
            return answer_json(401, {"error": "The access token is invalid"})
        if mode == "429":
            reset = datetime.now(UTC) + timedelta(seconds=options.get("reset_in", 120))
            return answer_json(
                429,
                {"error": "Too many requests"},
                {
                    "X-RateLimit-Limit": "300",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": reset.isoformat(timespec="milliseconds").replace(
                        "+00:00", "Z"
                    ),
                },
            )
        if mode == "422":
            return answer_json(422, {"error": options.get("error", "Validation failed")})
        return answer_json(int(mode), {"error": "We're sorry, but something went wrong"})

    def _authorised(self, request: Request) -> bool:
        return request.bearer() in self.tokens

    def _unauthorised(self) -> Answer:
        return answer_json(401, {"error": "The access token is invalid"})

    # --- media -----------------------------------------------------------------------------
    def upload(self, request: Request) -> Answer:
        if not self._authorised(request):
            return self._unauthorised()
        if not (request.headers.get("Content-Type") or "").startswith("multipart/form-data"):
            return answer_json(422, {"error": "Validation failed: File can't be blank"})
        fields = _multipart(request)
        if "file" not in fields or not fields["file"][2]:
            return answer_json(422, {"error": "Validation failed: File can't be blank"})
        _, mime, data = fields["file"]
        description = fields.get("description", (None, None, b""))[2].decode()
        if len(description) > MAX_DESCRIPTION:
            return answer_json(
                422,
                {
                    "error": "Validation failed: Description is too long (maximum is "
                    f"{MAX_DESCRIPTION} characters)"
                },
            )
        if len(data) > MAX_IMAGE_BYTES:
            return answer_json(422, {"error": "Validation failed: File file size must be less"})
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except Exception:
            return answer_json(
                422,
                {
                    "error": "Validation failed: File has contents that are "
                    "not what they are reported to be"
                },
            )
        media_id = str(next(self._ids))
        with self.lock:
            item = {
                "id": media_id,
                "type": "image",
                "url": None if self.processing_polls else f"{self.url}/files/{media_id}.png",
                "description": description,
                "mime": mime,
                "bytes": len(data),
                "meta": {"original": {"width": image.width, "height": image.height}},
                "polls_left": self.processing_polls,
                "attached": False,
            }
            self.media[media_id] = item
        return answer_json(202 if self.processing_polls else 200, self._media_json(item))

    def _media_json(self, item: dict[str, Any]) -> dict[str, Any]:
        keys = ("id", "type", "url", "description", "meta")
        return {k: item[k] for k in keys} | {"preview_url": item["url"]}

    def media_get(self, request: Request) -> Answer:
        if not self._authorised(request):
            return self._unauthorised()
        item = self.media.get(request.path.rsplit("/", 1)[1])
        if item is None:
            return answer_json(404, {"error": "Record not found"})
        with self.lock:
            if item["polls_left"] > 0:
                item["polls_left"] -= 1
                return answer_json(206, self._media_json(item))
            item["url"] = f"{self.url}/files/{item['id']}.png"
        return answer_json(200, self._media_json(item))

    # --- statuses --------------------------------------------------------------------------
    def create_status(self, request: Request) -> Answer:
        if not self._authorised(request):
            return self._unauthorised()
        body = request.json() or {}
        text = body.get("status") or ""
        media_ids = [str(m) for m in body.get("media_ids") or []]
        key = request.headers.get("Idempotency-Key")
        with self.lock:
            if key and key in self.idempotency:
                existing = next(s for s in self.statuses if s["id"] == self.idempotency[key])
                return answer_json(200, existing)
            if not text.strip() and not media_ids:
                return answer_json(422, {"error": "Validation failed: Text can't be blank"})
            if MastodonChannel().count(text) > 500:
                return answer_json(
                    422, {"error": "Validation failed: Text character limit of 500 exceeded"}
                )
            if len(media_ids) > MAX_MEDIA:
                return answer_json(
                    422, {"error": "Validation failed: Media attachments too many (maximum 4)"}
                )
            attachments = []
            for media_id in media_ids:
                item = self.media.get(media_id)
                if item is None or item["attached"]:
                    return answer_json(422, {"error": "Validation failed: Media not found"})
                if item["url"] is None:
                    return answer_json(
                        422,
                        {
                            "error": "Cannot attach files that have not finished processing. "
                            "Try again in a moment!"
                        },
                    )
                attachments.append(item)
            for item in attachments:
                item["attached"] = True
            status_id = str(next(self._ids))
            status = {
                "id": status_id,
                "created_at": datetime.now(UTC).isoformat(),
                "uri": f"{self.url}/users/{self.username}/statuses/{status_id}",
                "url": f"{self.url}/@{self.username}/{status_id}",
                "visibility": body.get("visibility") or "public",
                "content": _html(text),
                "media_attachments": [self._media_json(item) for item in attachments],
                "account": {"id": self.account_id, "username": self.username},
            }
            self.statuses.insert(0, status)
            if key:
                self.idempotency[key] = status_id
        return answer_json(200, status)

    def verify(self, request: Request) -> Answer:
        if not self._authorised(request):
            return self._unauthorised()
        return answer_json(200, {"id": self.account_id, "username": self.username})

    def account_statuses(self, request: Request) -> Answer:
        if not self._authorised(request):
            return self._unauthorised()
        account_id = request.path.split("/")[4]
        limit = min(int(request.param("limit") or 20), 40)
        found = [s for s in self.statuses if s["account"]["id"] == account_id]
        return answer_json(200, found[:limit])
