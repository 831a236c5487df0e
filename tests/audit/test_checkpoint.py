"""Signed checkpoints (audit.checkpoint): the C2SP tlog-checkpoint body and signed-note format,
checked against the published example of golang.org/x/mod/sumdb/note (the PeterNeumann key and
note, used here as test data), round trips, refusals, and the key loader."""

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import merkle
from audit.checkpoint import (
    Checkpoint,
    NoteError,
    NoteSigner,
    NoteVerifier,
    UnverifiedNoteError,
    checkpoint_body,
    load_signing_key,
    parse_checkpoint,
    sign_note,
    sign_note_with,
    verify_checkpoint,
    verify_note,
)
from cxhub.env import ImproperlyConfiguredEnv

# The example of the signed-note reference implementation's documentation and tests.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2p"
    "ZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)

ROOT = merkle.mth([b"a", b"b", b"c"])
ORIGIN = "cxhub.example.gov/audit"


@pytest.fixture
def signer():
    return NoteSigner.generate(ORIGIN)


def test_the_published_example_verifies_and_signs_byte_for_byte():
    verifier = NoteVerifier.from_vkey(GO_VKEY)
    assert verify_note(GO_NOTE, [verifier]) == GO_TEXT
    signer = NoteSigner.from_skey(GO_SKEY)
    assert signer.vkey == GO_VKEY
    assert signer.skey == GO_SKEY
    # Ed25519 is deterministic: the same key and text give the published note.
    assert sign_note(GO_TEXT, signer.name, signer.private_key) == GO_NOTE


def test_key_id_is_the_hash_of_name_newline_algorithm_and_key():
    verifier = NoteVerifier.from_vkey(GO_VKEY)
    assert verifier.key_id.hex() == "c74f20a3"
    with pytest.raises(NoteError, match="ID does not match"):
        NoteVerifier.from_vkey(GO_VKEY.replace("c74f20a3", "c74f20a4"))
    with pytest.raises(NoteError, match="ID does not match"):
        NoteVerifier.from_vkey(GO_VKEY.replace("PeterNeumann", "PeterNeuman"))
    for bad in ("PeterNeumann+c74f20a3", "Peter Neumann+c74f20a3+AAAA", "a+b+c+d"):
        with pytest.raises(NoteError):
            NoteVerifier.from_vkey(bad)
    with pytest.raises(NoteError, match="not an Ed25519 key"):
        NoteVerifier.from_vkey("x+00000000+" + base64.b64encode(b"\x02" + b"k" * 32).decode())


def test_checkpoint_round_trip(signer):
    body = checkpoint_body(ORIGIN, 3, ROOT)
    assert body == f"{ORIGIN}\n3\n{base64.b64encode(ROOT).decode()}\n"
    note = sign_note(body, signer.name, signer.private_key)
    assert note.startswith(body + "\n\u2014 " + ORIGIN + " ")
    assert verify_note(note, [signer.verifier]) == body
    assert verify_checkpoint(note, [signer.verifier], origin=ORIGIN) == Checkpoint(
        origin=ORIGIN, size=3, root=ROOT
    )
    with_extension = checkpoint_body(ORIGIN, 3, ROOT, ("time 2026-12-06T22:00:00Z",))
    assert parse_checkpoint(with_extension).extensions == ("time 2026-12-06T22:00:00Z",)
    # A verifier given only the published vkey string (as an auditor would be) accepts it.
    assert verify_note(note, [NoteVerifier.from_vkey(signer.vkey)]) == body


def test_wrong_key_altered_body_and_other_origin_are_refused(signer):
    note = sign_note(checkpoint_body(ORIGIN, 3, ROOT), signer.name, signer.private_key)
    stranger = NoteSigner.generate(ORIGIN)
    with pytest.raises(UnverifiedNoteError):
        verify_note(note, [stranger.verifier])
    with pytest.raises(UnverifiedNoteError):
        verify_note(note, [])
    altered = note.replace(f"{ORIGIN}\n3\n", f"{ORIGIN}\n4\n")
    with pytest.raises(NoteError, match="does not match the note's text"):
        verify_note(altered, [signer.verifier])
    # A signature claiming the trusted key's name and ID, made by another key.
    forged = sign_note_with(checkpoint_body(ORIGIN, 4, ROOT), [stranger])
    forged = forged.replace(
        forged.split(" ")[-1],
        base64.b64encode(signer.key_id + base64.b64decode(forged.split(" ")[-1])[4:]).decode()
        + "\n",
    )
    with pytest.raises(NoteError, match="does not match"):
        verify_note(forged, [signer.verifier])
    with pytest.raises(NoteError, match="not 'other.example/audit'"):
        verify_checkpoint(note, [signer.verifier], origin="other.example/audit")


def test_rotation_two_signatures_either_key_verifies(signer):
    new = NoteSigner.generate(ORIGIN)
    note = sign_note_with(checkpoint_body(ORIGIN, 3, ROOT), [signer, new])
    assert verify_note(note, [signer.verifier])
    assert verify_note(note, [new.verifier])
    assert verify_note(note, [NoteSigner.generate("other").verifier, new.verifier])


@pytest.mark.parametrize(
    "note, message",
    [
        ("origin\n1\n", "no blank line"),
        ("origin\n1\n\n", "no signatures"),
        ("origin\n1\n\n\u2014 name AAAA", "end with a newline"),
        ("origin\n1\n\n- name AAAAAAAAAAAA\n", "em dash"),
        ("origin\n1\n\n\u2014 name !!!!\n", "not valid base64"),
        ("origin\n1\n\n\u2014 name AAAA\n", "too short"),
        ("origin\x07\n1\n\n\u2014 name AAAAAAAA\n", "control character"),
    ],
)
def test_malformed_notes_say_what_is_wrong(note, message, signer):
    with pytest.raises(NoteError, match=message):
        verify_note(note, [signer.verifier])


@pytest.mark.parametrize(
    "body, message",
    [
        ("origin\n1\n", "at least three lines"),
        ("origin\n1\nAAAA", "end with a newline"),
        ("\n1\n" + base64.b64encode(ROOT).decode() + "\n", "origin"),
        ("origin\n01\n" + base64.b64encode(ROOT).decode() + "\n", "not a tree size"),
        ("origin\n-1\n" + base64.b64encode(ROOT).decode() + "\n", "not a tree size"),
        ("origin\n1\nnot base64!\n", "not valid base64"),
        ("origin\n1\nAAAA\n", "32-byte"),
        ("origin\n1\n" + base64.b64encode(ROOT).decode() + "\n\n", "extension"),
    ],
)
def test_malformed_checkpoints_say_which_line(body, message):
    with pytest.raises(NoteError, match=message):
        parse_checkpoint(body)


def test_checkpoint_body_refuses_bad_fields():
    with pytest.raises(NoteError, match="origin"):
        checkpoint_body("", 1, ROOT)
    with pytest.raises(NoteError, match="tree size"):
        checkpoint_body(ORIGIN, -1, ROOT)
    with pytest.raises(NoteError, match="32-byte"):
        checkpoint_body(ORIGIN, 1, b"short")
    with pytest.raises(NoteError, match="extension"):
        checkpoint_body(ORIGIN, 1, ROOT, ("",))
    with pytest.raises(NoteError, match="empty line"):
        sign_note("a\n\nb\n", "name", Ed25519PrivateKey.generate())
    with pytest.raises(NoteError, match="spaces or"):
        sign_note("a\n", "two words", Ed25519PrivateKey.generate())


def test_signing_key_from_env_or_file(monkeypatch, tmp_path):
    for name in (
        "CXHUB_AUDIT_SIGNING_KEY",
        "CXHUB_AUDIT_SIGNING_KEY_FILE",
        "CXHUB_AUDIT_SIGNING_KEY_NAME",
    ):
        monkeypatch.delenv(name, raising=False)
    assert load_signing_key() is None

    monkeypatch.setenv("CXHUB_AUDIT_SIGNING_KEY", GO_SKEY)
    assert load_signing_key().vkey == GO_VKEY

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = tmp_path / "audit-signing.pem"
    path.write_bytes(pem)
    monkeypatch.delenv("CXHUB_AUDIT_SIGNING_KEY")
    monkeypatch.setenv("CXHUB_AUDIT_SIGNING_KEY_FILE", str(path))
    with pytest.raises(ImproperlyConfiguredEnv, match="CXHUB_AUDIT_SIGNING_KEY_NAME"):
        load_signing_key()
    monkeypatch.setenv("CXHUB_AUDIT_SIGNING_KEY_NAME", ORIGIN)
    loaded = load_signing_key()
    assert loaded.name == ORIGIN
    note = sign_note(checkpoint_body(ORIGIN, 1, ROOT), loaded.name, loaded.private_key)
    assert verify_note(note, [NoteSigner(name=ORIGIN, private_key=key).verifier])

    monkeypatch.setenv("CXHUB_AUDIT_SIGNING_KEY", "not a key")
    with pytest.raises(ImproperlyConfiguredEnv, match="CXHUB_AUDIT_SIGNING_KEY must be"):
        load_signing_key()
    monkeypatch.setenv("CXHUB_AUDIT_SIGNING_KEY", GO_SKEY.replace("c74f20a3", "00000000"))
    with pytest.raises(ImproperlyConfiguredEnv, match="ID does not match"):
        load_signing_key()
    rsa_like = "-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n"
    monkeypatch.setenv("CXHUB_AUDIT_SIGNING_KEY", rsa_like)
    with pytest.raises(ImproperlyConfiguredEnv, match="PEM"):
        load_signing_key()


def test_merkle_and_checkpoint_run_without_django():
    """The standalone verifier needs them with the standard library and cryptography alone."""
    code = (
        "import sys; import audit.merkle, audit.checkpoint; "
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('django', 'cxhub', 'celery')]; "
        "assert not loaded, loaded"
    )
    root = Path(__file__).resolve().parents[2]
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    subprocess.run([sys.executable, "-c", code], cwd=root, env=env, check=True)
