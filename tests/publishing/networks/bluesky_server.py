"""A Bluesky PDS for the tests, written from the atproto lexicons (com.atproto.server
createSession/refreshSession/getSession/deleteSession, com.atproto.repo
uploadBlob/createRecord/getRecord, com.atproto.identity.resolveHandle, app.bsky.feed.post,
app.bsky.embed.images, app.bsky.richtext.facet) and specs/xrpc: it checks the bearer session,
the record key (a TID), the post's shape and limits and each image blob's size, and records
every post it stores. Failures on demand: "401", "429", "400", any 5xx (with `after=True`, the
record is stored first), "drop" (stored, then the connection closed unanswered), "page" (a
proxy's HTML page) and "200" (a success without the record)."""

import hashlib
import io
import itertools
import re
import time
from datetime import datetime
from typing import Any

import regex
from PIL import Image

from .server import Answer, FakeNetwork, Request, answer_json

TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
MAX_BLOB = 1_000_000
FEATURES = {
    "app.bsky.richtext.facet#link": "uri",
    "app.bsky.richtext.facet#mention": "did",
    "app.bsky.richtext.facet#tag": "tag",
}


def _error(status: int, name: str, message: str, headers: dict | None = None) -> Answer:
    return answer_json(status, {"error": name, "message": message}, headers)


class BlueskyServer(FakeNetwork):
    def __init__(self) -> None:
        super().__init__()
        self.handle = "north.test"
        self.did = "did:plc:north4test5pds6aaaaaaaaa"
        self.password = "abcd-efgh-ijkl-mnop"
        self.known_handles = {self.handle: self.did, "friend.test": "did:plc:friend7test"}
        self.access: dict[str, str] = {}
        self.expired: set[str] = set()
        self.refresh: dict[str, str] = {}
        self.blobs: dict[str, dict[str, Any]] = {}
        self.records: dict[str, dict[str, Any]] = {}  # rkey → {"uri", "cid", "value"}
        self.session_calls = 0
        self.refresh_calls = 0
        self.deleted_sessions = 0
        self._numbers = itertools.count(1)

    @property
    def posts(self) -> list[dict[str, Any]]:
        return [r["value"] for r in self.records.values()]

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.expired |= set(self.access)
            self.access.clear()

    def revoke_refresh_tokens(self) -> None:
        with self.lock:
            self.refresh.clear()

    def route(self, request: Request):
        nsid = request.path.removeprefix("/xrpc/")
        handlers = {
            ("POST", "com.atproto.server.createSession"): self.create_session,
            ("POST", "com.atproto.server.refreshSession"): self.refresh_session,
            ("GET", "com.atproto.server.getSession"): self.get_session,
            ("POST", "com.atproto.server.deleteSession"): self.delete_session,
            ("POST", "com.atproto.repo.uploadBlob"): self.upload_blob,
            ("POST", "com.atproto.repo.createRecord"): self.create_record,
            ("GET", "com.atproto.repo.getRecord"): self.get_record,
            ("GET", "com.atproto.identity.resolveHandle"): self.resolve_handle,
        }
        handler = handlers.get((request.method, nsid))
        if handler is None:
            return "other", lambda r: _error(501, "MethodNotImplemented", "Method Not Implemented")
        return nsid, handler

    def failure(self, mode: str, options: dict) -> Answer:
        if mode == "401":
            return _error(401, "AuthenticationRequired", "Authentication Required")
        if mode == "429":
            reset = int(time.time()) + options.get("reset_in", 300)
            return _error(
                429,
                "RateLimitExceeded",
                "Rate Limit Exceeded",
                {
                    "RateLimit-Limit": "5000",
                    "RateLimit-Remaining": "0",
                    "RateLimit-Reset": str(reset),
                    "RateLimit-Policy": "5000;w=3600",
                },
            )
        if mode == "400":
            return _error(400, options.get("error", "InvalidRequest"), options["message"])
        if mode == "page":  # a proxy's page, not the PDS's XRPC error
            body = b"<html><body><h1>Not Found</h1></body></html>"
            return options.get("status", 404), {"Content-Type": "text/html"}, body
        if mode == "200":  # a success without the record
            return answer_json(200, {})
        return _error(int(mode), "InternalServerError", "Internal Server Error")

    # --- sessions --------------------------------------------------------------------------
    def _new_session(self) -> dict[str, Any]:
        number = next(self._numbers)
        access, refresh = f"access-{number}", f"refresh-{number}"
        self.access[access] = self.did
        self.refresh[refresh] = self.did
        return {
            "accessJwt": access,
            "refreshJwt": refresh,
            "handle": self.handle,
            "did": self.did,
            "active": True,
        }

    def create_session(self, request: Request) -> Answer:
        body = request.json() or {}
        with self.lock:
            self.session_calls += 1
            if body.get("identifier") not in (self.handle, self.did) or (
                body.get("password") != self.password
            ):
                return _error(401, "AuthenticationRequired", "Invalid identifier or password")
            return answer_json(200, self._new_session())

    def refresh_session(self, request: Request) -> Answer:
        token = request.bearer()
        with self.lock:
            self.refresh_calls += 1
            if token not in self.refresh:
                return _error(400, "ExpiredToken", "Token has been revoked")
            del self.refresh[token]
            return answer_json(200, self._new_session())

    def get_session(self, request: Request) -> Answer:
        did, refused = self._session(request)
        if refused:
            return refused
        return answer_json(200, {"handle": self.handle, "did": did, "active": True})

    def delete_session(self, request: Request) -> Answer:
        # "Requires auth using the 'refreshJwt' (not the 'accessJwt')".
        token = request.bearer()
        with self.lock:
            if token not in self.refresh:
                return _error(401, "InvalidToken", "Token could not be verified")
            del self.refresh[token]
            self.deleted_sessions += 1
        return 200, {}, b""

    def _session(self, request: Request) -> tuple[str | None, Answer | None]:
        token = request.bearer()
        if token is None:
            return None, _error(401, "AuthenticationRequired", "Authentication Required")
        if token in self.expired:
            return None, _error(400, "ExpiredToken", "Token has expired")
        if token not in self.access:
            return None, _error(401, "InvalidToken", "Token could not be verified")
        return self.access[token], None

    # --- repo ------------------------------------------------------------------------------
    def upload_blob(self, request: Request) -> Answer:
        _, refused = self._session(request)
        if refused:
            return refused
        mime = request.headers.get("Content-Type") or ""
        if not request.body:
            return _error(400, "InvalidRequest", "Request body is empty")
        try:
            image = Image.open(io.BytesIO(request.body))
            sniffed = Image.MIME.get(image.format or "", "")
        except Exception:
            sniffed = "application/octet-stream"
        if mime != sniffed:
            return _error(400, "InvalidRequest", f"Blob is {sniffed}, not {mime}")
        cid = "bafkrei" + hashlib.sha256(request.body).hexdigest()[:52]
        blob = {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime, "size": len(request.body)}
        with self.lock:
            self.blobs[cid] = blob
        return answer_json(200, {"blob": blob})

    def _invalid(self, record: Any) -> str | None:
        """What is wrong with an app.bsky.feed.post record, as the PDS's lexicon check says."""
        if not isinstance(record, dict) or record.get("$type") != "app.bsky.feed.post":
            return "Record/$type must be app.bsky.feed.post"
        text = record.get("text")
        if not isinstance(text, str):
            return 'Record must have the property "text"'
        if len(text.encode()) > 3000:
            return "Record/text must not be longer than 3000 characters"
        if len(regex.findall(r"\X", text)) > 300:
            return "Record/text must not be longer than 300 graphemes"
        try:
            created = datetime.fromisoformat(str(record.get("createdAt")).replace("Z", "+00:00"))
            assert created.tzinfo is not None
        except (ValueError, AssertionError):
            return "Record/createdAt must be an valid atproto datetime"
        size = len(text.encode())
        for n, facet in enumerate(record.get("facets") or []):
            index = facet.get("index") or {}
            start, end = index.get("byteStart"), index.get("byteEnd")
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= size):
                return f"Record/facets/{n}/index is out of the text's bytes"
            features = facet.get("features") or []
            if not features:
                return f"Record/facets/{n}/features must not be empty"
            for feature in features:
                field = FEATURES.get(feature.get("$type"))
                if field is None or not isinstance(feature.get(field), str):
                    return f"Record/facets/{n}/features has an invalid feature"
        embed = record.get("embed")
        if embed is not None:
            if embed.get("$type") != "app.bsky.embed.images":
                return "Record/embed has an unexpected type"
            images = embed.get("images")
            if not isinstance(images, list) or not 1 <= len(images) <= 4:
                return "Record/embed/images must have 1 to 4 items"
            for n, image in enumerate(images):
                if not isinstance(image.get("alt"), str):
                    return f'Record/embed/images/{n} must have the property "alt"'
                blob = image.get("image") or {}
                stored = self.blobs.get((blob.get("ref") or {}).get("$link"))
                if stored is None:
                    return f"Record/embed/images/{n}/image: could not find blob"
                if not stored["mimeType"].startswith("image/"):
                    return f"Record/embed/images/{n}/image has a wrong mime type"
                if stored["size"] > MAX_BLOB:
                    return f"Record/embed/images/{n}/image file too big (max {MAX_BLOB} bytes)"
        return None

    def create_record(self, request: Request) -> Answer:
        did, refused = self._session(request)
        if refused:
            return refused
        body = request.json() or {}
        if body.get("repo") not in (did, self.handle):
            return _error(401, "AuthenticationRequired", "Invalid repo")
        if body.get("collection") != "app.bsky.feed.post":
            return _error(400, "InvalidRequest", "Unexpected collection")
        rkey = body.get("rkey")
        if not isinstance(rkey, str) or not TID.match(rkey):
            return _error(400, "InvalidRequest", f"Invalid record key: {rkey!r} is not a TID")
        problem = self._invalid(body.get("record"))
        if problem:
            return _error(400, "InvalidRequest", f"Invalid app.bsky.feed.post record: {problem}")
        uri = f"at://{did}/app.bsky.feed.post/{rkey}"
        with self.lock:
            if rkey in self.records:
                # As @atproto/pds answers a taken record key (a unique-constraint failure).
                return _error(500, "InternalServerError", "Internal Server Error")
            cid = "bafyrei" + hashlib.sha256(uri.encode()).hexdigest()[:52]
            self.records[rkey] = {"uri": uri, "cid": cid, "value": body["record"]}
        return answer_json(200, {"uri": uri, "cid": cid, "validationStatus": "valid"})

    def get_record(self, request: Request) -> Answer:
        repo, rkey = request.param("repo"), request.param("rkey")
        uri = f"at://{repo}/{request.param('collection')}/{rkey}"
        record = self.records.get(rkey or "")
        if repo not in (self.did, self.handle) or record is None:
            return _error(400, "RecordNotFound", f"Could not locate record: {uri}")
        return answer_json(200, record)

    def resolve_handle(self, request: Request) -> Answer:
        did = self.known_handles.get(request.param("handle") or "")
        if did is None:
            return _error(400, "InvalidRequest", "Unable to resolve handle")
        return answer_json(200, {"did": did})
