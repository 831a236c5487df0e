#!/usr/bin/env python3
"""Check an export of cxhub's audit trail offline: every event in it is in the tree that a signed
checkpoint commits to. One file, the Python standard library and ``cryptography`` alone (no
Django, nothing else of cxhub), so an auditor can read it whole and run it anywhere:

    python verifier.py audit-2026-01-31.jsonl --key 'cxhub.example/audit+1a2b3c4d+AU3...'
    python verifier.py audit-2026-01-31.csv --key KEY [--key OLD_KEY] [--origin ORIGIN]
        [--expect N] [--all-proven]

Exit 0 with a one-line summary when the export checks out; exit 1 naming each problem.

It is also where cxhub itself takes these rules from (audit.merkle, audit.checkpoint and
audit.hashing import them), so the server and the auditor can never disagree about them:

* RFC 9162 (Certificate Transparency 2.0) §2.1 hashing: a leaf is SHA-256(0x00 || data), an
  interior node SHA-256(0x01 || left || right), the empty tree's root SHA-256(""); inclusion
  proofs (§2.1.3.2) and consistency proofs (§2.1.4.2) are checked step by step, never trusting a
  proof's length.
* C2SP tlog-checkpoint (origin, tree size, base64 root hash, extension lines) inside a C2SP
  signed note with Ed25519 signatures; verifier keys read ``<name>+<hex key ID>+<base64(0x01 ||
  public key)>``, the key ID being SHA-256(name || "\\n" || 0x01 || public key)[:4]. Signatures
  by keys the verifier was not given are ignored, one by a given key that does not verify is an
  error, and at least one given key must have signed (the rules of golang.org/x/mod/sumdb/note).
* An event's leaf data is the canonical JSON of seq, at (UTC, ISO 8601 with microseconds),
  actor_id, actor_name, action, object_type, object_id, team_id and data: sorted keys, compact
  separators, UTF-8 unescaped, no NaN, floats that equal an integer written as that integer.

What an export proves, and what it cannot: each event with a proof is, field for field, leaf
``leaf_index`` of the log whose signed checkpoint the export carries, so an edited event, a
proof that is not its own or a checkpoint not signed by the key you trust is found. An export
is a selection (a team's events, a period, an action), so it cannot prove it is complete: an
event removed from the file leaves the other proofs valid. Compare the count with one you
trust (``--expect N``), or check the whole log with the server's ``audit_verify``. Events newer
than the export's checkpoint carry no proof; they are counted, and ``--all-proven`` refuses them.

Export formats (cxhub's ``?format=jsonl`` and ``?format=csv``):

* JSON Lines: a first line ``{"checkpoint": NOTE, "verifier_keys": [...], "tree_size": N, ...}``,
  then one event a line, each with ``leaf_index``, ``tree_size`` and ``inclusion_proof`` (a list
  of base64 hashes; empty and ``leaf_index`` null for an unproven event).
* CSV: the event columns, then ``leaf_index``, ``tree_size``, ``inclusion_proof`` (base64 hashes
  joined by ``;``), and ``checkpoint`` and ``verifier_keys``, filled in the first data row only.
  Text cells that a spreadsheet would run as a formula, or that start with an apostrophe, carry
  one more apostrophe in front, which is taken off before hashing.
"""

import argparse
import base64
import binascii
import csv
import hashlib
import io
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

EXPORT_FORMAT = "cxhub.audit-export/1"

# --- RFC 9162 Merkle tree hashing and proof verification --------------------------------------

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


class MerkleProofError(ValueError):
    """A proof, root or tree size does not check out; the message says which step failed."""


def leaf_hash(data: bytes) -> bytes:
    """The hash of one log entry: SHA-256(0x00 || data)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise MerkleProofError(f"{what} is not a {HASH_SIZE}-byte hash")


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` leads to from the leaf hash ``leaf`` at ``index`` in a tree of
    ``size`` leaves (RFC 9162 §2.1.3.2 steps 1 to 4); raises if the proof cannot fit the tree."""
    _check_hash(leaf, "the leaf hash")
    if not 0 <= index < size:
        raise MerkleProofError(f"leaf index {index} is outside a tree of {size} leaves")
    fn, sn = index, size - 1
    result = bytes(leaf)
    for position, sibling in enumerate(proof):
        _check_hash(sibling, f"proof hash {position}")
        if sn == 0:
            raise MerkleProofError("the inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise MerkleProofError("the inclusion proof is shorter than the tree is deep")
    return result


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that the leaf hash ``leaf`` is leaf ``index`` of the tree of ``size`` leaves whose
    root is ``root``; raise MerkleProofError otherwise."""
    _check_hash(root, "the root hash")
    if root_from_inclusion_proof(leaf, index, size, proof) != root:
        raise MerkleProofError(
            f"leaf {index} is not in the tree of {size} leaves: the proof leads to another root"
        )


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``first`` leaves with root ``first_root`` is a prefix of the tree
    of ``second`` leaves with root ``second_root`` (RFC 9162 §2.1.4.2); raise MerkleProofError
    otherwise."""
    _check_hash(first_root, "the first root hash")
    _check_hash(second_root, "the second root hash")
    if not 0 <= first <= second:
        raise MerkleProofError(f"a tree of {second} leaves cannot extend one of {first}")
    for position, value in enumerate(proof):
        _check_hash(value, f"proof hash {position}")
    if first == 0:
        if proof:
            raise MerkleProofError("a consistency proof from the empty tree must be empty")
        if first_root != EMPTY_ROOT:
            raise MerkleProofError("the first root is not the empty tree's root")
        return
    if first == second:
        if proof:
            raise MerkleProofError("a consistency proof between equal sizes must be empty")
        if first_root != second_root:
            raise MerkleProofError(f"two different roots for the same size {first}")
        return
    # Step 1.
    if not proof:
        raise MerkleProofError("the consistency proof is empty")
    path = list(proof)
    # Step 2: a first tree that is a perfect subtree is not in the proof; its root stands in.
    if first & (first - 1) == 0:
        path.insert(0, bytes(first_root))
    # Steps 3 and 4.
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for value in path[1:]:
        if sn == 0:
            raise MerkleProofError("the consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(value, fr)
            sr = node_hash(value, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, value)
        fn >>= 1
        sn >>= 1
    # Step 7.
    if sn != 0:
        raise MerkleProofError("the consistency proof is shorter than the tree is deep")
    if fr != first_root:
        raise MerkleProofError(
            f"the first {first} leaves are not those of the first tree: its root differs"
        )
    if sr != second_root:
        raise MerkleProofError(
            f"the tree of {second} leaves does not extend the tree of {first}: its root differs"
        )


# --- C2SP tlog-checkpoint and signed notes (Ed25519) ------------------------------------------

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


def check_key_name(name: str) -> None:
    if not name or "+" in name or _SPACES.search(name):
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")


def b64decode_strict(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as error:
        raise NoteError(f"{what} is not valid base64") from error


def check_note_text(text: str, what: str) -> None:
    for char in text:
        if char != "\n" and (ord(char) < 0x20 or ord(char) == 0x7F):
            raise NoteError(f"{what} holds a control character ({ord(char):#04x})")


def parse_checkpoint(body: str) -> Checkpoint:
    """The fields of a tlog-checkpoint body; NoteError saying which line is wrong."""
    if not body.endswith("\n"):
        raise NoteError("a checkpoint must end with a newline")
    check_note_text(body, "the checkpoint")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("a checkpoint needs at least three lines: origin, tree size, root hash")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise NoteError("line 1 of the checkpoint (the origin) is empty")
    if not re.fullmatch(r"0|[1-9][0-9]*", size_text):
        raise NoteError(f"line 2 of the checkpoint is not a tree size: {size_text!r}")
    root = b64decode_strict(root_text, "line 3 of the checkpoint (the root hash)")
    if len(root) != HASH_SIZE:
        raise NoteError(f"line 3 of the checkpoint is not a {HASH_SIZE}-byte root hash")
    for number, line in enumerate(extensions, start=4):
        if not line:
            raise NoteError(f"line {number} of the checkpoint (an extension) is empty")
    return Checkpoint(origin=origin, size=int(size_text), root=root, extensions=tuple(extensions))


# --- keys -------------------------------------------------------------------------------------


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The 4-byte key ID: SHA-256(name || "\\n" || 0x01 || public key)[:4]."""
    check_key_name(name)
    material = name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + raw_public_key(public_key)
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
        check_key_name(name)
        if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
            raise NoteError("a verifier key's ID must be 8 lowercase hex digits")
        material = b64decode_strict(encoded, "the verifier key")
        if len(material) != 33 or material[0] != ALG_ED25519:
            raise NoteError("the verifier key is not an Ed25519 key (0x01 and 32 bytes)")
        public_key = Ed25519PublicKey.from_public_bytes(material[1:])
        if key_id(name, public_key).hex() != hex_id:
            raise NoteError("the verifier key's ID does not match its name and key")
        return cls(name=name, key_id=bytes.fromhex(hex_id), public_key=public_key)

    @property
    def vkey(self) -> str:
        encoded = base64.b64encode(bytes([ALG_ED25519]) + raw_public_key(self.public_key))
        return f"{self.name}+{self.key_id.hex()}+{encoded.decode('ascii')}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


# --- signed notes -----------------------------------------------------------------------------


def verify_note(note: str, verifiers: list[NoteVerifier]) -> str:
    """The text of ``note`` once a signature by one of ``verifiers`` checks out; NoteError (or
    UnverifiedNoteError when no trusted key signed) otherwise."""
    return _verified_note(note, verifiers)[0]


def _verified_note(note: str, verifiers: list[NoteVerifier]) -> tuple[str, list[NoteVerifier]]:
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as error:
            raise NoteError("the note is not UTF-8") from error
    check_note_text(note, "the note")
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
        check_key_name(name)
        blob = b64decode_strict(encoded, f"signature line {number}")
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
    return body, verified


def verify_checkpoint(note: str, verifiers: list[NoteVerifier], *, origin: str) -> Checkpoint:
    """The checkpoint in a signed note, once its signature and its origin check out."""
    checkpoint = parse_checkpoint(verify_note(note, verifiers))
    if checkpoint.origin != origin:
        raise NoteError(f"the checkpoint is for {checkpoint.origin!r}, not {origin!r}")
    return checkpoint


def signed_checkpoint(
    note: str, verifiers: list[NoteVerifier], *, origins: Iterable[str]
) -> tuple[Checkpoint, list[NoteVerifier]]:
    """The checkpoint in a signed note and the given keys that signed it, once a signature and
    the origin (one of ``origins``) check out."""
    body, signed_by = _verified_note(note, verifiers)
    checkpoint = parse_checkpoint(body)
    origins = list(origins)
    if checkpoint.origin not in origins:
        expected = " or ".join(repr(origin) for origin in origins)
        raise NoteError(f"the checkpoint is for {checkpoint.origin!r}, not {expected}")
    return checkpoint, signed_by


# --- the canonical JSON of an event (its leaf data) -------------------------------------------


def integral_floats_as_ints(value):
    """``value`` with each float that equals an integer as that integer: PostgreSQL's jsonb
    prints 1e16 as 10000000000000000, which reads back as an int, so such floats are hashed as
    the int they equal and a value hashes the same before and after the round trip."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: integral_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [integral_floats_as_ints(item) for item in value]
    return value


def format_at(at: datetime | str) -> str:
    """An event's time as hashed: UTC, ISO 8601 with microseconds (``...T09:00:00.000000+00:00``);
    a string is read as ISO 8601 with an offset (the export's ``at``)."""
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at)
        except ValueError:
            raise ValueError(f"{at!r} is not an ISO 8601 date-time") from None
    if at.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_event(
    *,
    seq: int,
    at: datetime | str,
    actor_id: int | None,
    actor_name: str,
    action: str,
    object_type: str,
    object_id: str,
    team_id: int | None,
    data: dict,
    encoder: type[json.JSONEncoder] | None = None,
) -> str:
    """The canonical JSON of an event's fields (sorted keys, compact separators: jsonb reorders
    keys, so order must not matter). ``encoder`` serves the server, whose data may hold values
    that JSON has no type for; an export holds plain JSON, which needs none."""
    payload = {
        "seq": seq,
        "at": format_at(at),
        "actor_id": actor_id,
        "actor_name": actor_name,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "team_id": team_id,
        "data": integral_floats_as_ints(data),
    }
    return json.dumps(
        payload,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        cls=encoder,
    )


# --- exports ----------------------------------------------------------------------------------

# The fields of an exported event that its leaf is made of (as the API names them), and those
# that prove it.
EVENT_FIELDS = tuple("seq at actor actor_name action object_type object_id team data".split())  # noqa: SIM905
PROOF_FIELDS = ("leaf_index", "tree_size", "inclusion_proof")
# CSV columns that hold numbers or nothing (the others are text, perhaps neutralised).
_CSV_INTEGERS = ("seq", "actor", "team", "leaf_index", "tree_size")
# A spreadsheet runs a cell starting with one of these as a formula (OWASP, "CSV Injection");
# the export puts an apostrophe before such cells, and before cells starting with one.
CSV_ESCAPED_STARTS = frozenset("=+-@\t\r'")


def unneutralise(cell: str) -> str:
    """A CSV text cell as it was before the export protected it from spreadsheets."""
    return cell[1:] if cell[:1] == "'" and cell[1:2] in CSV_ESCAPED_STARTS else cell


class ExportError(ValueError):
    """The export cannot be read at all (not JSON Lines or CSV of the expected shape)."""


@dataclass
class ExportEvent:
    place: str  # where it is in the file: "line 3" of JSON Lines, "row 3" of CSV (header: 1)
    seq: int
    leaf: bytes  # the canonical leaf data, recomputed from the exported fields
    leaf_index: int | None
    tree_size: int | None
    proof: list[bytes]


@dataclass
class Export:
    checkpoint: str | None
    events: list[ExportEvent]
    problems: list[str]  # rows that could not be read, and what else is wrong in the file
    unreadable: int = 0  # how many of its events could not be read


def _integer(value, what: str, *, nullable: bool = False) -> int | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} is not {'an integer or null' if nullable else 'an integer'}")
    return value


def _text(value, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a string")
    return value


def _proof(hashes, what: str) -> list[bytes]:
    if not isinstance(hashes, list):
        raise ValueError(f"{what} is not a list of base64 hashes")
    proof = []
    for position, text in enumerate(hashes):
        try:
            value = b64decode_strict(_text(text, f"{what} hash {position}"), "")
        except NoteError:
            raise ValueError(f"{what} hash {position} is not base64") from None
        if len(value) != HASH_SIZE:
            raise ValueError(f"{what} hash {position} is not a {HASH_SIZE}-byte hash")
        proof.append(value)
    return proof


def export_event(record: dict, place: str) -> ExportEvent:
    """An exported event (a JSON Lines object, or a CSV row already typed), its leaf data
    recomputed from its fields; ValueError naming the field that is missing or of a wrong type."""
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    for name in (*EVENT_FIELDS, *PROOF_FIELDS):
        if name not in record:
            raise ValueError(f"no field {name!r}")
    if not isinstance(record["data"], dict):
        raise ValueError("data is not a JSON object")
    seq = _integer(record["seq"], "seq")
    try:
        leaf = canonical_event(
            seq=seq,
            at=_text(record["at"], "at"),
            actor_id=_integer(record["actor"], "actor", nullable=True),
            actor_name=_text(record["actor_name"], "actor_name"),
            action=_text(record["action"], "action"),
            object_type=_text(record["object_type"], "object_type"),
            object_id=_text(record["object_id"], "object_id"),
            team_id=_integer(record["team"], "team", nullable=True),
            data=record["data"],
        ).encode("utf-8")
    except ValueError as error:
        raise ValueError(f"event seq {seq}: {error}") from None
    return ExportEvent(
        place=place,
        seq=seq,
        leaf=leaf,
        leaf_index=_integer(record["leaf_index"], "leaf_index", nullable=True),
        tree_size=_integer(record["tree_size"], "tree_size", nullable=True),
        proof=_proof(record["inclusion_proof"], "inclusion_proof"),
    )


def read_jsonl(text: str) -> Export:
    # Split at "\n" alone: str.splitlines() would also split inside strings at U+2028 and other
    # separators that JSON leaves unescaped.
    lines = text.split("\n")
    try:
        header = json.loads(lines[0])
    except (IndexError, ValueError):
        raise ExportError("line 1 is not the export's JSON header") from None
    if not isinstance(header, dict) or "checkpoint" not in header:
        raise ExportError('line 1 is not the export\'s header {"checkpoint": ...}')
    checkpoint = header["checkpoint"]
    if checkpoint is not None and not isinstance(checkpoint, str):
        raise ExportError("line 1: the checkpoint is not a signed note (a string)")
    events, problems = [], []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            events.append(export_event(json.loads(line), f"line {number}"))
        except ValueError as error:
            problems.append(f"line {number}: {error}")
    return Export(checkpoint, events, problems, unreadable=len(problems))


def _csv_record(row: dict) -> dict:
    record = {}
    for name, cell in row.items():
        if name is None or cell is None:
            raise ValueError("the row does not have as many cells as the header")
        if name in _CSV_INTEGERS:
            if cell == "":
                record[name] = None
            elif re.fullmatch(r"-?[0-9]+", cell):
                record[name] = int(cell)
            else:
                raise ValueError(f"{name} is not a whole number: {cell!r}")
        else:
            record[name] = unneutralise(cell)
    try:
        record["data"] = json.loads(record.get("data", ""))
    except ValueError:
        raise ValueError("data is not JSON") from None
    proof = record.get("inclusion_proof")
    record["inclusion_proof"] = proof.split(";") if proof else []
    return record


def read_csv(text: str) -> Export:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames or "checkpoint" not in reader.fieldnames:
        raise ExportError("line 1 is not the header of a cxhub audit export with proofs")
    checkpoint, events, problems, unreadable = None, [], [], 0
    # Rows, not lines: the checkpoint cell spans several lines.
    for number, row in enumerate(reader, start=2):
        if number == 2:
            checkpoint = unneutralise(row.get("checkpoint") or "") or None
        elif row.get("checkpoint"):
            problems.append(f"row {number}: a second checkpoint (only the first row holds one)")
        try:
            events.append(export_event(_csv_record(row), f"row {number}"))
        except ValueError as error:
            problems.append(f"row {number}: {error}")
            unreadable += 1
    return Export(checkpoint, events, problems, unreadable=unreadable)


def read_proof(document: dict) -> Export:
    """One event's proof as cxhub's API and verify page give it (``{"event": {...},
    "leaf_index", "tree_size", "inclusion_proof", "leaf", "checkpoint", ...}``)."""
    record = document["event"]
    if not isinstance(record, dict):
        raise ExportError("the proof's event is not a JSON object")
    for name in ("leaf_index", "tree_size", "inclusion_proof"):
        record = {**record, name: document.get(name)}
    checkpoint = document.get("checkpoint")
    if not isinstance(checkpoint, str):
        raise ExportError("the proof has no checkpoint (a signed note)")
    try:
        event = export_event(record, "the proof")
    except ValueError as error:
        return Export(checkpoint, [], [f"the proof: {error}"], unreadable=1)
    problems = []
    if "leaf" in document and document["leaf"] != event.leaf.decode("utf-8"):
        problems.append("the proof's leaf is not the canonical JSON of its event")
    return Export(checkpoint=checkpoint, events=[event], problems=problems)


def read_export(text: str) -> Export:
    """An export, JSON Lines (its first line a JSON object) or CSV, or one event's proof (a
    single JSON object with an ``event``)."""
    if not text.lstrip().startswith("{"):
        return read_csv(text)
    try:
        document = json.loads(text)
    except ValueError:
        return read_jsonl(text)  # more than one line of JSON
    if isinstance(document, dict) and "event" in document:
        return read_proof(document)
    return read_jsonl(text)


@dataclass
class Report:
    events: int = 0
    proven: int = 0
    unproven_seqs: list[int] = field(default_factory=list)
    checkpoint: Checkpoint | None = None
    signed_by: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def unproven(self) -> int:
        return len(self.unproven_seqs)

    def summary(self) -> str:
        if self.checkpoint is None:
            return "OK: the export holds no events"
        text = (
            f"OK: {self.proven} of {self.events} events verified: included in the tree of "
            f"{self.checkpoint.size} events signed by {', '.join(self.signed_by)} "
            f"(origin {self.checkpoint.origin})"
        )
        if self.unproven:
            seqs = ", ".join(str(seq) for seq in self.unproven_seqs[:10])
            more = ", ..." if self.unproven > 10 else ""
            text += f"; {self.unproven} newer than the checkpoint, unproven (seq {seqs}{more})"
        return text


def verify_export(
    text: str,
    verifiers: list[NoteVerifier],
    *,
    origin: str | None = None,
    expect: int | None = None,
    all_proven: bool = False,
) -> Report:
    """Check every event of an export against the signed checkpoint it carries; the report names
    each problem. ``origin`` defaults to the name of one of the keys (cxhub's log origin is its
    signing key's name)."""
    report = Report()
    try:
        export = read_export(text)
    except ExportError as error:
        report.problems.append(str(error))
        return report
    report.problems += export.problems
    report.events = len(export.events) + export.unreadable
    checkpoint = None
    if export.checkpoint is not None:
        origins = [origin] if origin else [verifier.name for verifier in verifiers]
        try:
            checkpoint, signed_by = signed_checkpoint(export.checkpoint, verifiers, origins=origins)
        except NoteError as error:
            report.problems.append(f"the checkpoint does not check out: {error}")
        else:
            report.checkpoint = checkpoint
            report.signed_by = [f"{key.name}+{key.key_id.hex()}" for key in signed_by]
    elif any(event.proof or event.leaf_index is not None for event in export.events):
        report.problems.append("the export has proofs but no checkpoint to check them against")
    elif export.events:
        # Taking the checkpoint out must not turn a tampered export into an unproven one.
        report.problems.append(
            f"the export carries no checkpoint: none of its {report.events} events is proven"
        )
    seen: dict[int, str] = {}
    for event in export.events:
        where = f"{event.place} (event seq {event.seq})"
        if event.leaf_index is None:
            if event.proof:
                report.problems.append(f"{where}: an inclusion proof but no leaf index")
            else:
                report.unproven_seqs.append(event.seq)
            continue
        if event.leaf_index in seen:
            report.problems.append(
                f"{where}: leaf {event.leaf_index} again (already on {seen[event.leaf_index]})"
            )
            continue
        seen[event.leaf_index] = event.place
        if checkpoint is None:
            continue  # the checkpoint's problem is reported once
        if event.tree_size != checkpoint.size:
            report.problems.append(
                f"{where}: proof for a tree of {event.tree_size} events, but the checkpoint is "
                f"of {checkpoint.size}"
            )
            continue
        try:
            verify_inclusion(
                leaf_hash(event.leaf),
                event.leaf_index,
                checkpoint.size,
                event.proof,
                checkpoint.root,
            )
        except MerkleProofError as error:
            report.problems.append(
                f"{where}: not in the signed tree as exported (an edited field, or a proof that "
                f"is not its own): {error}"
            )
            continue
        report.proven += 1
    if all_proven and report.unproven:
        report.problems.append(
            f"{report.unproven} events carry no proof (newer than the checkpoint)"
        )
    if expect is not None and report.events != expect:
        report.problems.append(f"{report.events} events in the export, {expect} expected")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Check a cxhub audit export (CSV or JSON Lines) against its signed checkpoint."
    )
    parser.add_argument("export", help="the exported file")
    parser.add_argument(
        "--key",
        action="append",
        required=True,
        help="a verifier key you trust, <name>+<hex id>+<base64 key> (repeat for old keys)",
    )
    parser.add_argument("--origin", help="the log's origin (default: the name of a key given)")
    parser.add_argument("--expect", type=int, help="how many events the export must hold")
    parser.add_argument(
        "--all-proven", action="store_true", help="refuse events that carry no proof"
    )
    args = parser.parse_args(argv)
    try:
        verifiers = [NoteVerifier.from_vkey(vkey) for vkey in args.key]
    except NoteError as error:
        print(f"FAILED: --key: {error}", file=sys.stderr)
        return 1
    try:
        with open(args.export, encoding="utf-8", newline="") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError) as error:
        print(f"FAILED: cannot read {args.export}: {error}", file=sys.stderr)
        return 1
    report = verify_export(
        text, verifiers, origin=args.origin, expect=args.expect, all_proven=args.all_proven
    )
    if report.ok:
        print(report.summary())
        return 0
    print(f"FAILED: {len(report.problems)} problems in {args.export}:", file=sys.stderr)
    for problem in report.problems:
        print(f"- {problem}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
