"""Signed checkpoints of the audit tree in the C2SP formats that transparency-log tools read:
the tlog-checkpoint body (https://c2sp.org/tlog-checkpoint) inside a signed note
(https://c2sp.org/signed-note) with Ed25519 signatures, so that golang.org/x/mod/sumdb/note,
witnesses and other verifiers can check them with the published verifier key alone.

Design note
-----------
* A checkpoint body is three lines, each ending in a newline: the log's origin (a unique,
  schema-less URL-like name), the tree size in decimal, and the root hash in standard base64;
  then optional non-empty extension lines (a later session may put the checkpoint's time there).
* A signed note is the body, a blank line, and one line per signature:
  ``— <key name> <base64(4-byte key ID || 64-byte Ed25519 signature)>``. The signature covers the
  body's UTF-8 bytes. An Ed25519 key's ID is the first 4 bytes of
  SHA-256(name || 0x0A || 0x01 || 32-byte public key).
* Keys: the verifier key is ``<name>+<hex key ID>+<base64(0x01 || public key)>`` (what
  auditors and witnesses are given); the private key is read by ``load_signing_key`` from
  ``CXHUB_AUDIT_SIGNING_KEY`` or the file ``CXHUB_AUDIT_SIGNING_KEY_FILE`` names, either in the
  note form ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || 32-byte seed)>`` or as a PKCS#8 PEM
  Ed25519 key, whose name then comes from ``CXHUB_AUDIT_SIGNING_KEY_NAME``. It is never stored in
  the database. Rotation: sign with the new key, publish its verifier key to the auditors and
  witnesses beside the old one; a verifier accepts a note signed by any key it was given, so
  checkpoints signed by either verify through the change (``verify_note`` takes a list).
* ``verify_note`` follows the Go implementation's rules: signatures by keys the verifier does
  not know are ignored, a signature by a known key that does not verify is an error, and at
  least one known key must have signed.
* Only the key loader touches the project (cxhub.env); the rest needs the standard library and
  ``cryptography`` alone, like audit.merkle, so a standalone verifier can use both as they are.
"""

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from .merkle import HASH_SIZE

ALG_ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "  # an em dash and a space
MAX_SIGNATURES = 100
_SPACES = re.compile(r"\s")


class NoteError(ValueError):
    """A note, checkpoint or key is malformed, or its signature does not check out."""


class UnverifiedNoteError(NoteError):
    """No key the verifier trusts signed the note."""


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = field(default=())


def _check_name(name: str) -> None:
    if not name or "+" in name or _SPACES.search(name):
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as error:
        raise NoteError(f"{what} is not valid base64") from error


def _check_text(text: str, what: str) -> None:
    for char in text:
        if char != "\n" and (ord(char) < 0x20 or ord(char) == 0x7F):
            raise NoteError(f"{what} holds a control character ({ord(char):#04x})")


# --- checkpoint bodies ------------------------------------------------------------------------


def checkpoint_body(origin: str, size: int, root: bytes, extensions: tuple[str, ...] = ()) -> str:
    """The tlog-checkpoint body: origin, size, base64 root, extension lines, each ending "\\n"."""
    if not origin or "\n" in origin:
        raise NoteError("a checkpoint's origin must be one non-empty line")
    if not isinstance(size, int) or size < 0:
        raise NoteError(f"a checkpoint's tree size must be a non-negative integer, not {size!r}")
    if len(root) != HASH_SIZE:
        raise NoteError(f"a checkpoint's root must be a {HASH_SIZE}-byte hash")
    for line in extensions:
        if not line or "\n" in line:
            raise NoteError("a checkpoint's extension lines must be single non-empty lines")
    lines = [origin, str(size), base64.b64encode(root).decode("ascii"), *extensions]
    body = "".join(f"{line}\n" for line in lines)
    _check_text(body, "the checkpoint")
    return body


def parse_checkpoint(body: str) -> Checkpoint:
    """The fields of a tlog-checkpoint body; NoteError saying which line is wrong."""
    if not body.endswith("\n"):
        raise NoteError("a checkpoint must end with a newline")
    _check_text(body, "the checkpoint")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("a checkpoint needs at least three lines: origin, tree size, root hash")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise NoteError("line 1 of the checkpoint (the origin) is empty")
    if not re.fullmatch(r"0|[1-9][0-9]*", size_text):
        raise NoteError(f"line 2 of the checkpoint is not a tree size: {size_text!r}")
    root = _b64decode(root_text, "line 3 of the checkpoint (the root hash)")
    if len(root) != HASH_SIZE:
        raise NoteError(f"line 3 of the checkpoint is not a {HASH_SIZE}-byte root hash")
    for number, line in enumerate(extensions, start=4):
        if not line:
            raise NoteError(f"line {number} of the checkpoint (an extension) is empty")
    return Checkpoint(origin=origin, size=int(size_text), root=root, extensions=tuple(extensions))


# --- keys -------------------------------------------------------------------------------------


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The 4-byte key ID: SHA-256(name || "\\n" || 0x01 || public key)[:4]."""
    _check_name(name)
    material = name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + _raw_public(public_key)
    return hashlib.sha256(material).digest()[:4]


@dataclass(frozen=True)
class NoteVerifier:
    name: str
    key_id: bytes
    public_key: Ed25519PublicKey

    @classmethod
    def from_vkey(cls, vkey: str) -> "NoteVerifier":
        """A verifier from ``<name>+<hex key ID>+<base64(0x01 || public key)>``."""
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError("a verifier key reads <name>+<hex key ID>+<base64 key>")
        name, hex_id, encoded = parts
        _check_name(name)
        if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
            raise NoteError("a verifier key's ID must be 8 lowercase hex digits")
        material = _b64decode(encoded, "the verifier key")
        if len(material) != 33 or material[0] != ALG_ED25519:
            raise NoteError("the verifier key is not an Ed25519 key (0x01 and 32 bytes)")
        public_key = Ed25519PublicKey.from_public_bytes(material[1:])
        if key_id(name, public_key).hex() != hex_id:
            raise NoteError("the verifier key's ID does not match its name and key")
        return cls(name=name, key_id=bytes.fromhex(hex_id), public_key=public_key)

    @property
    def vkey(self) -> str:
        encoded = base64.b64encode(bytes([ALG_ED25519]) + _raw_public(self.public_key))
        return f"{self.name}+{self.key_id.hex()}+{encoded.decode('ascii')}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class NoteSigner:
    name: str
    private_key: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self):
        _check_name(self.name)

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.private_key.public_key())

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier(
            name=self.name, key_id=self.key_id, public_key=self.private_key.public_key()
        )

    @property
    def vkey(self) -> str:
        return self.verifier.vkey

    @property
    def skey(self) -> str:
        """The note private-key form, ``PRIVATE+KEY+<name>+<hex ID>+<base64(0x01 || seed)>``."""
        seed = self.private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        encoded = base64.b64encode(bytes([ALG_ED25519]) + seed).decode("ascii")
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def from_skey(cls, skey: str) -> "NoteSigner":
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("a note private key reads PRIVATE+KEY+<name>+<hex key ID>+<base64>")
        _, _, name, hex_id, encoded = parts
        _check_name(name)
        material = _b64decode(encoded, "the private key")
        if len(material) != 33 or material[0] != ALG_ED25519:
            raise NoteError("the private key is not an Ed25519 key (0x01 and a 32-byte seed)")
        signer = cls(name=name, private_key=Ed25519PrivateKey.from_private_bytes(material[1:]))
        if signer.key_id.hex() != hex_id:
            raise NoteError("the private key's ID does not match its name and key")
        return signer

    @classmethod
    def generate(cls, name: str) -> "NoteSigner":
        return cls(name=name, private_key=Ed25519PrivateKey.generate())


def load_signing_key() -> NoteSigner | None:
    """The checkpoint signing key from ``CXHUB_AUDIT_SIGNING_KEY`` (or the file named by
    ``CXHUB_AUDIT_SIGNING_KEY_FILE``): a note private key, or a PKCS#8 PEM Ed25519 key named by
    ``CXHUB_AUDIT_SIGNING_KEY_NAME``. None when neither is set; ImproperlyConfiguredEnv, naming
    the variable, when the value is not a usable key."""
    # Imported here: the rest of this module runs without Django (the standalone verifier).
    from cxhub.env import ImproperlyConfiguredEnv, env_str

    text = env_str("CXHUB_AUDIT_SIGNING_KEY", "").strip()
    if not text:
        return None
    if text.startswith("PRIVATE+KEY+"):
        try:
            return NoteSigner.from_skey(text)
        except NoteError as error:
            raise ImproperlyConfiguredEnv(f"CXHUB_AUDIT_SIGNING_KEY: {error}") from error
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
        except (ValueError, TypeError) as error:
            raise ImproperlyConfiguredEnv(
                f"CXHUB_AUDIT_SIGNING_KEY is not a readable unencrypted PEM key: {error}"
            ) from error
        if not isinstance(key, Ed25519PrivateKey):
            raise ImproperlyConfiguredEnv("CXHUB_AUDIT_SIGNING_KEY must be an Ed25519 key")
        name = env_str("CXHUB_AUDIT_SIGNING_KEY_NAME", "").strip()
        if not name:
            raise ImproperlyConfiguredEnv(
                "CXHUB_AUDIT_SIGNING_KEY_NAME must name a PEM signing key (the log's origin)"
            )
        try:
            return NoteSigner(name=name, private_key=key)
        except NoteError as error:
            raise ImproperlyConfiguredEnv(f"CXHUB_AUDIT_SIGNING_KEY_NAME: {error}") from error
    raise ImproperlyConfiguredEnv(
        "CXHUB_AUDIT_SIGNING_KEY must be a note private key (PRIVATE+KEY+...) or a PEM key"
    )


# --- signed notes -----------------------------------------------------------------------------


def _signature_line(signer: NoteSigner, body: str) -> str:
    signature = signer.private_key.sign(body.encode("utf-8"))
    encoded = base64.b64encode(signer.key_id + signature).decode("ascii")
    return f"{SIGNATURE_PREFIX}{signer.name} {encoded}\n"


def _check_body(body: str) -> None:
    if not body.endswith("\n"):
        raise NoteError("a note's text must end with a newline")
    if "\n\n" in body or body.startswith("\n"):
        # The last blank line separates text and signatures; an empty text line would make
        # "text\n\n— ..." parse differently by readers that split at the first one.
        raise NoteError("a note's text must not hold an empty line")
    _check_text(body, "the note")


def sign_note(body: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """The signed note of ``body`` by the Ed25519 key ``private_key`` named ``name``."""
    return sign_note_with(body, [NoteSigner(name=name, private_key=private_key)])


def sign_note_with(body: str, signers: list[NoteSigner]) -> str:
    """The signed note of ``body``, one signature line per signer (e.g. old and new key while
    rotating)."""
    _check_body(body)
    if not signers:
        raise NoteError("a note needs at least one signer")
    return body + "\n" + "".join(_signature_line(signer, body) for signer in signers)


def verify_note(note: str, verifiers: list[NoteVerifier]) -> str:
    """The text of ``note`` once a signature by one of ``verifiers`` checks out; NoteError (or
    UnverifiedNoteError when no trusted key signed) otherwise."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as error:
            raise NoteError("the note is not UTF-8") from error
    _check_text(note, "the note")
    if not note.endswith("\n"):
        raise NoteError("a signed note must end with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("the note has no blank line before its signatures")
    body, signature_block = note[: split + 1], note[split + 2 :]
    lines = signature_block[:-1].split("\n") if signature_block else []
    if not lines:
        raise NoteError("the note has no signatures")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"the note has more than {MAX_SIGNATURES} signatures")
    known = {(verifier.name, verifier.key_id): verifier for verifier in verifiers}
    verified = []
    message = body.encode("utf-8")
    for number, line in enumerate(lines, start=1):
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError(f"signature line {number} does not start with an em dash and space")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].rpartition(" ")
        _check_name(name)
        blob = _b64decode(encoded, f"signature line {number}")
        if len(blob) < 5:
            raise NoteError(f"signature line {number} is too short to hold a key ID and signature")
        verifier = known.get((name, blob[:4]))
        if verifier is None:
            continue
        if not verifier.verify(message, blob[4:]):
            raise NoteError(
                f"the signature by {name}+{blob[:4].hex()} does not match the note's text"
            )
        verified.append(verifier)
    if not verified:
        raise UnverifiedNoteError("the note is not signed by any of the keys given")
    return body


def verify_checkpoint(note: str, verifiers: list[NoteVerifier], *, origin: str) -> Checkpoint:
    """The checkpoint in a signed note, once its signature and its origin check out."""
    checkpoint = parse_checkpoint(verify_note(note, verifiers))
    if checkpoint.origin != origin:
        raise NoteError(f"the checkpoint is for {checkpoint.origin!r}, not {origin!r}")
    return checkpoint
