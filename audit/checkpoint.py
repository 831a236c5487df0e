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
* Reading and verifying (parse_checkpoint, NoteVerifier, verify_note, verify_checkpoint) are
  the standalone verifier's (audit/verifier.py), imported from it; this module adds signing and
  the key loader, the only part that touches the project (cxhub.env).
"""

import base64
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .verifier import (  # noqa: F401 (re-exported: the one place these rules are written)
    ALG_ED25519,
    HASH_SIZE,
    MAX_SIGNATURES,
    SIGNATURE_PREFIX,
    Checkpoint,
    NoteError,
    NoteVerifier,
    UnverifiedNoteError,
    b64decode_strict,
    check_key_name,
    check_note_text,
    key_id,
    parse_checkpoint,
    raw_public_key,
    verify_checkpoint,
    verify_note,
)

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
    check_note_text(body, "the checkpoint")
    return body


# --- keys -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoteSigner:
    name: str
    private_key: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self):
        check_key_name(self.name)

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
        check_key_name(name)
        material = b64decode_strict(encoded, "the private key")
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
    check_note_text(body, "the note")


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
