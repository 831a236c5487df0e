"""Verify the Merkle tree of the audit trail from the events themselves, against the signed
checkpoints the witnesses hold (and the database's own), and name what differs in an auditor's
words: a rewritten event, a removed tail, a truncated table, a gap, a fork, a replayed or
untrusted checkpoint. ``manage.py audit_verify`` runs it after the closed chain's check.

Design note
-----------
* Nothing the database stores about the tree is trusted for the verdict. One pass reads the
  leaves in index order joined to their events (keyset batches of raw rows, no model objects),
  recomputes each leaf hash from the event's fields (``fast_leaf``, byte for byte
  ``audit.hashing.event_leaf``) and folds it into a compact range (the right edge of perfect
  subtrees, O(log n) memory): the root at every checkpoint's size falls out of the same pass,
  O(n) in all. The stored leaf hash (MerkleNode level 0) is read alongside only to *name* an
  event rewritten by an attacker who did not recompute the tree.
* A checkpoint counts once its signature checks out with a trusted key (the signing key's own,
  CXHUB_AUDIT_VERIFIER_KEYS, ``--key``) and its origin is a trusted key's name. The log must
  extend it: the recomputed root at its size is its root. When it does not, the leaves between
  the last checkpoint that still matches and the first that does not hold the change.
* Two trusted checkpoints that cannot both be prefixes of one log are a fork: shown for a
  checkpoint the log does not extend against a later one it does, with the RFC 9162
  consistency proof computed from the recomputed leaves (a second pass, only then) failing
  ``audit.merkle.verify_consistency``.
"""

import bisect
import contextlib
import hashlib
import json
import multiprocessing
import multiprocessing.util
import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from json.encoder import encode_basestring as _STRING
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from . import merkle
from .checkpoint import NoteError, NoteVerifier, load_signing_key, parse_checkpoint, verify_note
from .models import AuditCheckpoint, AuditEvent, AuditTreeHead
from .sealer import unsealed

BATCH = 10_000
NAMED = 20  # events named one by one per kind of finding; the rest are counted
MISSING = b"\xff" * 32  # stands in for a leaf whose event is gone: never a real hash

# What a finding is, in the words of the report.
REWRITTEN = "rewritten"
REMOVED_TAIL = "removed tail"
TRUNCATED = "truncated"
GAP = "gap"
FORK = "fork"
REPLAYED = "replayed checkpoint"
UNTRUSTED = "untrusted checkpoint"
UNREADABLE = "unreadable checkpoint"
TREE_HEAD = "tree head"
LATE = "late"


@dataclass(frozen=True)
class Finding:
    kind: str
    message: str
    seq: int | None = None
    leaf: int | None = None
    warning: bool = False  # reported, but not a sign of tampering


@dataclass(frozen=True)
class Source:
    """A signed note from somewhere: a witness's file, a file given, the database's row."""

    name: str
    note: str
    witness: bool = True  # False: the database's own AuditCheckpoint row
    row: tuple[int, int, bytes] | None = None  # the database row's (id, size, root)


@dataclass(slots=True)
class _Claim:
    size: int
    root: bytes
    # Where it was found: witnesses by name, the database as a flag (it may hold one
    # checkpoint a minute for years: no note or object is kept per row).
    witnesses: set[str] = field(default_factory=set)
    in_database: bool = False
    matches: bool | None = None  # None: beyond the log

    @property
    def named(self) -> str:
        witnesses = sorted(self.witnesses)
        if self.in_database:
            witnesses.append("the database")
        return ", ".join(witnesses)

    @property
    def witnessed(self) -> bool:
        return bool(self.witnesses)


@dataclass
class TreeReport:
    leaves: int = 0  # leaf positions read (the log's size)
    seconds: float = 0.0
    root: bytes = merkle.EMPTY_ROOT
    checkpoints: list[dict] = field(default_factory=list)  # the witnesses' checkpoints
    database_checkpoints: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(not finding.warning for finding in self.findings)

    @property
    def events_per_second(self) -> float:
        return self.leaves / self.seconds if self.seconds > 0 else float(self.leaves)

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "size": self.leaves,
            "root": self.root.hex(),
            "seconds": round(self.seconds, 6),
            "events_per_second": round(self.events_per_second, 1),
            "checkpoints": self.checkpoints,
            "database_checkpoints": self.database_checkpoints,
            "findings": [asdict(finding) for finding in self.findings],
        }


# Reading checkpoints ---------------------------------------------------------------------------
def sources_from_directory(path: str) -> list[Source]:
    """Every checkpoint file a witness directory holds (its hidden temporary files aside)."""
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"--witness {path}: not a directory")
    return [
        Source(name=f"witness {folder}", note=_read(entry))
        for entry in sorted(folder.iterdir())
        if entry.is_file() and not entry.name.startswith(".")
    ]


def source_from_file(path: str) -> Source:
    entry = Path(path)
    if not entry.is_file():
        raise ValueError(f"--checkpoint {path}: no such file")
    return Source(name=f"checkpoint file {entry}", note=_read(entry))


def _read(entry: Path) -> str:
    return entry.read_bytes().decode("utf-8", errors="replace")


def trusted_verifiers(extra_keys: Iterable[str] = ()) -> list[NoteVerifier]:
    """The signing key's verifier, CXHUB_AUDIT_VERIFIER_KEYS and the keys given; ValueError
    naming the one that is not a verifier key."""
    verifiers = []
    signer = load_signing_key()
    if signer is not None:
        verifiers.append(signer.verifier)
    for where, keys in (
        ("CXHUB_AUDIT_VERIFIER_KEYS", settings.CXHUB_AUDIT_VERIFIER_KEYS),
        ("--key", extra_keys),
    ):
        for vkey in keys:
            try:
                verifiers.append(NoteVerifier.from_vkey(vkey))
            except NoteError as error:
                raise ValueError(f"{where}: {vkey!r} is not a verifier key: {error}") from error
    return verifiers


def _database_sources(batch_size: int) -> Iterable[Source]:
    last = 0
    while True:
        rows = list(
            AuditCheckpoint.objects.filter(id__gt=last)
            .order_by("id")
            .values_list("id", "size", "root", "note")[:batch_size]
        )
        for pk, size, root, note in rows:
            yield Source(
                name=f"the database's checkpoint #{pk}",
                note=note,
                witness=False,
                row=(pk, size, bytes(root)),
            )
        if len(rows) < batch_size:
            return
        last = rows[-1][0]


# Leaves from events ------------------------------------------------------------------------------
def _canonical_float(text: str):
    # As audit.hashing._integral_floats_as_ints, at parse time (no walk over the data).
    value = float(text)
    return int(value) if value.is_integer() else value


# Made once: json.loads/dumps with options build a new decoder/encoder on every call.
_DECODE = json.JSONDecoder(parse_float=_canonical_float).decode
_ENCODE = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


def fast_leaf(
    seq, at_text, actor_id, actor_name, action, object_type, object_id, team_id, data_text
) -> bytes:
    """``audit.hashing.event_leaf`` from raw column values: ``at_text`` already the UTC ISO
    form with microseconds and ``+00:00``, ``data_text`` the stored JSON text. The canonical
    JSON's keys in sorted order, written out directly (the verifier's inner loop)."""
    data = "{}" if data_text == "{}" or not data_text else _ENCODE(_DECODE(data_text))
    actor = "null" if actor_id is None else int(actor_id)
    team = "null" if team_id is None else int(team_id)
    return (
        f'{{"action":{_STRING(action)},"actor_id":{actor},"actor_name":{_STRING(actor_name)},'
        f'"at":"{at_text}","data":{data},"object_id":{_STRING(object_id)},'
        f'"object_type":{_STRING(object_type)},"seq":{int(seq)},"team_id":{team}}}'
    ).encode()


def _sqlite_at(text: str) -> str:
    # Django stores aware datetimes in SQLite as naive UTC "YYYY-MM-DD HH:MM:SS[.ffffff]".
    text = str(text).replace(" ", "T", 1)
    if "." not in text:
        text += ".000000"
    return text + "+00:00"


# Three range reads per batch (the leaves by index, their events by seq, the stored leaf hashes
# by index): each an index range scan, where a join probes two indexes per leaf.
_LEAVES_QUERY = (
    'SELECT "index", event_seq FROM audit_auditleaf WHERE "index" > %s ORDER BY "index" LIMIT %s'
)
_LEAVES_BELOW_QUERY = (
    'SELECT "index", event_seq FROM audit_auditleaf WHERE "index" > %s AND "index" < %s '
    'ORDER BY "index" LIMIT %s'
)
_STORED_QUERY = (
    'SELECT "index", hash FROM audit_merklenode WHERE level = 0 AND "index" BETWEEN %s AND %s'
)
# PostgreSQL formats the time and hands the JSON over as text: no datetime or dict objects.
_EVENTS_POSTGRESQL = (
    "SELECT seq, to_char(\"at\" AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '+00:00', "
    "actor_id, actor_name, action, object_type, object_id, team_id, data::text "
    "FROM audit_auditevent "
)
_EVENTS_OTHER = (
    'SELECT seq, "at", actor_id, actor_name, action, object_type, object_id, team_id, data '
    "FROM audit_auditevent "
)
_SPREAD = 4  # a batch's seqs spread wider than this many times its size: fetched one by one


def _batches(
    cursor, batch_size: int, *, after: int = -1, below: int | None = None
) -> Iterator[list[tuple]]:
    """Lists of (leaf index, event seq, the event's columns or None, stored leaf hash or None),
    in leaf order, ``batch_size`` leaves at a time (keyset on the index), for the leaves after
    index ``after`` and, when given, below index ``below``."""
    postgres = connection.vendor == "postgresql"
    events_query = _EVENTS_POSTGRESQL if postgres else _EVENTS_OTHER
    last = after
    while True:
        if below is None:
            cursor.execute(_LEAVES_QUERY, [last, batch_size])
        else:
            cursor.execute(_LEAVES_BELOW_QUERY, [last, below, batch_size])
        leaves = cursor.fetchall()
        if not leaves:
            return
        seqs = [seq for _, seq in leaves]
        low, high = min(seqs), max(seqs)
        if high - low < _SPREAD * batch_size:
            cursor.execute(events_query + "WHERE seq BETWEEN %s AND %s", [low, high])
        else:
            # Leaves in an order far from seq order (e.g. a tree rebuilt by hand).
            marks = ", ".join(["%s"] * len(seqs))
            cursor.execute(events_query + f"WHERE seq IN ({marks})", seqs)
        events = {row[0]: row for row in cursor.fetchall()}
        cursor.execute(_STORED_QUERY, [leaves[0][0], leaves[-1][0]])
        stored = {index: bytes(value) for index, value in cursor.fetchall()}
        yield [(index, seq, events.get(seq), stored.get(index)) for index, seq in leaves]
        if len(leaves) < batch_size:
            return
        last = leaves[-1][0]


def _prefetched(batches: Iterator[list]) -> Iterator[list]:
    """The batches, the next one read in a thread while the caller hashes the current one: the
    database's work and the hashing overlap (psycopg lets go of the GIL while it waits). Only
    one thread uses the connection at a time: the caller does not touch it meanwhile."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(next, batches, None)
        while True:
            batch = future.result()
            if batch is None:
                return
            future = pool.submit(next, batches, None)
            yield batch


@dataclass(slots=True)
class _Chunk:
    """A run of leaves in index order, hashed: compact, since worker processes send it back.
    ``values`` holds each leaf's hash (MISSING for an event that is gone), 32 bytes each;
    ``missing`` and ``rewritten`` the positions (in the run) of a gone event and of a leaf whose
    stored hash differs from the recomputed one."""

    indexes: list[int]
    seqs: list[int]
    values: bytes
    missing: list[int]
    rewritten: list[int]


def _hashed(batch: list[tuple], postgres: bool) -> _Chunk:
    """A batch of _batches with each event's leaf hash recomputed and compared with the stored
    one."""
    sha256 = hashlib.sha256
    indexes, seqs, values, missing, rewritten = [], [], [], [], []
    for position, (index, event_seq, event, stored) in enumerate(batch):
        indexes.append(index)
        seqs.append(event_seq)
        if event is None:
            missing.append(position)
            values.append(MISSING)
            continue
        if not postgres:
            event = (event[0], _sqlite_at(event[1]), *event[2:])
        value = sha256(b"\x00" + fast_leaf(*event)).digest()
        if stored is not None and stored != value:
            rewritten.append(position)
        values.append(value)
    return _Chunk(indexes, seqs, b"".join(values), missing, rewritten)


# Past this many leaves, on PostgreSQL and outside a transaction, the leaves are hashed by a
# pool of worker processes (one per CPU), each reading its own ranges of leaves on its own
# connection; the folding into the tree stays in order, here. Below it, one process (starting
# the workers costs more than it saves).
PARALLEL_FROM = 200_000


@contextlib.contextmanager
def _hashed_batches(batch_size: int) -> Iterator[Iterator[_Chunk]]:
    """The hashed batches (_Chunk) of every leaf, in leaf order."""
    postgres = connection.vendor == "postgresql"
    workers = min(os.cpu_count() or 1, 8)
    if postgres and workers > 1 and not connection.in_atomic_block:
        below = _leaf_count()
        if below >= PARALLEL_FROM:
            yield _parallel_batches(below, batch_size, workers)
            return
    with transaction.atomic(), connection.cursor() as cursor:
        if postgres:
            # The planner's guess for a long keyset read can switch JIT compilation on, which
            # costs more than the batch itself.
            cursor.execute("SET LOCAL jit = off")
        batches = _batches(cursor, batch_size)
        if postgres:
            batches = _prefetched(batches)
        yield (_hashed(batch, postgres) for batch in batches)


def _leaf_count() -> int:
    """One more than the largest leaf index: where the ranges of the workers end."""
    with connection.cursor() as cursor:
        cursor.execute('SELECT MAX("index") FROM audit_auditleaf')
        (largest,) = cursor.fetchone()
    return 0 if largest is None else largest + 1


def _parallel_batches(below: int, batch_size: int, workers: int) -> Iterator[_Chunk]:
    """Ranges of batch_size leaves hashed by forked workers, back in order; the last range is
    open-ended, so leaves sealed meanwhile are read as the single process would read them."""
    starts = range(0, below, batch_size)
    ranges = [(start - 1, start + batch_size, batch_size) for start in starts]
    ranges[-1] = (ranges[-1][0], None, batch_size)
    # The children must not share this process's connection: it is closed before they fork,
    # and each opens its own (and closes it when it exits).
    connection.close()
    with multiprocessing.get_context("fork").Pool(workers, initializer=_worker_start) as pool:
        yield from pool.imap(_worker_range, ranges)
        pool.close()
        pool.join()


def _worker_start() -> None:
    multiprocessing.util.Finalize(None, connection.close, exitpriority=10)


def _worker_range(task: tuple[int, int | None, int]) -> _Chunk:
    after, below, batch_size = task
    chunks = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        for batch in _batches(cursor, batch_size, after=after, below=below):
            chunks.append(_hashed(batch, True))
    return _Chunk(
        indexes=[index for chunk in chunks for index in chunk.indexes],
        seqs=[seq for chunk in chunks for seq in chunk.seqs],
        values=b"".join(chunk.values for chunk in chunks),
        missing=_shifted(chunks, "missing"),
        rewritten=_shifted(chunks, "rewritten"),
    )


def _shifted(chunks: list[_Chunk], name: str) -> list[int]:
    """The positions ``name`` of several runs, as positions in the runs put end to end."""
    positions, offset = [], 0
    for chunk in chunks:
        positions.extend(offset + position for position in getattr(chunk, name))
        offset += len(chunk.indexes)
    return positions


@dataclass
class _Scan:
    size: int = 0
    root: bytes = merkle.EMPTY_ROOT
    roots: dict = field(default_factory=dict)  # size -> recomputed root
    seqs: dict = field(default_factory=dict)  # leaf index -> event seq, for the wanted ones
    nodes: dict = field(default_factory=dict)  # (level, index) -> hash, for the wanted ones
    rewritten: list = field(default_factory=list)  # (leaf, seq) whose stored hash differs
    rewritten_count: int = 0
    events: int = 0  # leaves whose event is there
    missing_leaves: list = field(default_factory=list)  # (first, last) index ranges
    missing_events: list = field(default_factory=list)  # (leaf, seq) whose event is gone


def _scan(
    *,
    sizes: set[int],
    leaves: set[int],
    nodes: dict[int, set[int]] | None = None,
    batch_size: int = BATCH,
) -> _Scan:
    """One pass over the leaves: the recomputed root at each of ``sizes``, the seq at each of
    ``leaves``, the hash of each wanted perfect subtree ``nodes`` (level -> indexes)."""
    result = _Scan()
    sha256 = hashlib.sha256
    # The compact range: the hashes of the perfect subtrees on the right edge, largest first;
    # their levels are the binary digits of ``count``, so adding leaf i merges as many times
    # as i has trailing one bits.
    edge: list[bytes] = []
    count = 0
    with _hashed_batches(batch_size) as batches:
        for chunk in batches:
            if not chunk.indexes:
                continue
            values = chunk.values
            first, last = chunk.indexes[0], chunk.indexes[-1]
            if first != count or last - first + 1 != len(chunk.indexes):
                # Leaf positions removed: each hole holds no event of the log.
                values = _fill_holes(chunk, count, result)
            for index in leaves:
                if first <= index <= last:
                    position = _position(chunk, index)
                    if position is not None:
                        result.seqs[index] = chunk.seqs[position]
            for position in chunk.missing:
                result.missing_events.append((chunk.indexes[position], chunk.seqs[position]))
            result.rewritten_count += len(chunk.rewritten)
            for position in chunk.rewritten[: NAMED - len(result.rewritten)]:
                result.rewritten.append((chunk.indexes[position], chunk.seqs[position]))
            result.events += len(chunk.indexes) - len(chunk.missing)
            for start in range(0, len(values), 32):
                value = values[start : start + 32]
                if nodes:
                    _add_watched(edge, count, value, nodes, result.nodes)
                else:
                    current = value
                    for _ in range((~count & (count + 1)).bit_length() - 1):
                        current = sha256(b"\x01" + edge.pop() + current).digest()
                    edge.append(current)
                count += 1
                if count in sizes:
                    result.roots[count] = merkle.fold(edge)
    result.size = count
    result.root = merkle.fold(edge) if edge else merkle.EMPTY_ROOT
    if 0 in sizes:
        result.roots[0] = merkle.EMPTY_ROOT
    return result


def _fill_holes(chunk: _Chunk, count: int, result: _Scan) -> bytes:
    """The run's leaf hashes with MISSING at every leaf position its indexes skip (from
    ``count``, the next expected), each hole recorded in ``result.missing_leaves``."""
    values, expected = [], count
    for position, index in enumerate(chunk.indexes):
        if index != expected:
            result.missing_leaves.append((expected, index - 1))
            values.append(MISSING * (index - expected))
        values.append(chunk.values[32 * position : 32 * position + 32])
        expected = index + 1
    return b"".join(values)


def _position(chunk: _Chunk, index: int) -> int | None:
    """Where leaf ``index`` is in the run, or None (a hole)."""
    position = bisect.bisect_left(chunk.indexes, index)
    if position < len(chunk.indexes) and chunk.indexes[position] == index:
        return position
    return None


def _add_watched(edge: list[bytes], count: int, value: bytes, nodes: dict, found: dict) -> None:
    """Add leaf ``count`` to the compact range, keeping the perfect subtrees asked for."""
    if count in nodes.get(0, ()):
        found[0, count] = value
    current = value
    for level in range(1, (~count & (count + 1)).bit_length()):
        current = merkle.node_hash(edge.pop(), current)
        if (count >> level) in nodes.get(level, ()):
            found[level, count >> level] = current
    edge.append(current)


def _consistency_proof(scan: _Scan, first: int, second: int) -> list[bytes]:
    return [
        merkle.fold([scan.nodes[position] for position in merkle.perfect_subtrees(start, end)])
        for start, end in merkle.consistency_ranges(first, second)
    ]


# The verification --------------------------------------------------------------------------------
class _Verifier:
    def __init__(self, *, sources, keys, database, batch_size):
        self.report = TreeReport()
        self.batch_size = batch_size
        self.verifiers = trusted_verifiers(keys)
        self.origins = {verifier.name for verifier in self.verifiers}
        self.claims: dict[tuple[int, bytes], _Claim] = {}
        for source in sources:
            self.take(source)
        if database:
            for source in _database_sources(batch_size):
                self.report.database_checkpoints += 1
                self.take(source)

    def find(self, kind: str, message: str, **fields) -> None:
        self.report.findings.append(Finding(kind, message, **fields))

    def take(self, source: Source) -> None:
        """Check a checkpoint's signature and origin; keep it as a claim on the log if good."""
        entry = {"source": source.name} if source.witness else None
        if not self.verifiers:
            self.find(UNTRUSTED, f"{source.name} cannot be checked: no verifier key is given")
            return
        try:
            checkpoint = parse_checkpoint(verify_note(source.note, self.verifiers))
        except NoteError as error:
            kind = UNTRUSTED if "not signed by any" in str(error) else UNREADABLE
            what = (
                "is not signed by a trusted key"
                if kind == UNTRUSTED
                else f"is not a valid signed checkpoint ({error})"
            )
            self.find(kind, f"the checkpoint in {source.name} {what}")
            if entry is not None:
                self.report.checkpoints.append(entry | {"status": kind})
            return
        if checkpoint.origin not in self.origins:
            self.find(
                UNTRUSTED,
                f"the checkpoint in {source.name} is for the log {checkpoint.origin!r}, "
                f"not this one ({', '.join(sorted(self.origins))})",
            )
            if entry is not None:
                self.report.checkpoints.append(entry | {"status": "wrong origin"})
            return
        if source.row is not None and source.row[1:] != (checkpoint.size, checkpoint.root):
            self.find(
                UNTRUSTED,
                f"{source.name}'s size and root columns ({source.row[1]}, "
                f"{source.row[2].hex()}) differ from its signed note ({checkpoint.size}, "
                f"{checkpoint.root.hex()})",
            )
        claim = self.claims.setdefault(
            (checkpoint.size, checkpoint.root), _Claim(checkpoint.size, checkpoint.root)
        )
        if source.witness:
            claim.witnesses.add(source.name)
        else:
            claim.in_database = True
        if entry is not None:
            entry |= {"size": checkpoint.size, "root": checkpoint.root.hex(), "status": ""}
            self.report.checkpoints.append(entry)

    def run(self) -> TreeReport:
        started = time.perf_counter()
        head = AuditTreeHead.objects.filter(pk=AuditTreeHead.SINGLETON_ID).first()
        head_size = head.size if head is not None else 0
        sizes = {size for size, _ in self.claims} | {head_size}
        leaves = {index for size in sizes for index in (size - 1, size) if index >= 0}
        scan = _scan(sizes=sizes, leaves=leaves, batch_size=self.batch_size)
        self.report.leaves = scan.size
        self.report.root = scan.root
        self.report.seconds = time.perf_counter() - started
        self.check_leaves(scan)
        self.check_head(head, scan)
        horizon = head.horizon if head is not None else 0
        self.check_events(scan, horizon)
        self.check_pending(horizon)
        self.check_claims(scan)
        self.check_forks(scan, leaves)
        self.check_replay()
        for entry in self.report.checkpoints:
            if not entry["status"]:
                claim = self.claims[entry["size"], bytes.fromhex(entry["root"])]
                entry["status"] = {True: "extended", False: "differs", None: "beyond the log"}[
                    claim.matches
                ]
        return self.report

    def seq_at(self, scan: _Scan, index: int) -> str:
        seq = scan.seqs.get(index)
        return f"seq {seq}" if seq is not None else "seq unknown"

    def check_leaves(self, scan: _Scan) -> None:
        for leaf, seq in scan.rewritten:
            self.find(
                REWRITTEN,
                f"event seq {seq} (leaf {leaf}) was rewritten: its fields no longer hash to the "
                "leaf the tree stored for it",
                seq=seq,
                leaf=leaf,
            )
        if scan.rewritten_count > len(scan.rewritten):
            self.find(
                REWRITTEN,
                f"and {scan.rewritten_count - len(scan.rewritten)} more events were rewritten",
            )
        for first, last in scan.missing_leaves[:NAMED]:
            which = f"leaf {first} is" if first == last else f"leaves {first}–{last} are"
            self.find(GAP, f"gap: {which} missing from the tree (their events removed)", leaf=first)
        for leaf, seq in scan.missing_events[:NAMED]:
            self.find(
                GAP,
                f"gap: leaf {leaf} names event seq {seq}, which is gone (event removed)",
                seq=seq,
                leaf=leaf,
            )

    def check_head(self, head: AuditTreeHead | None, scan: _Scan) -> None:
        size = head.size if head is not None else 0
        if size > scan.size:
            self.find(
                REMOVED_TAIL,
                f"removed tail: the tree head says {size} events but only {scan.size} remain: "
                f"the last {size - scan.size} were removed",
                leaf=scan.size,
            )
        elif size < scan.size:
            self.find(
                TREE_HEAD,
                f"the tree head says {size} events but {scan.size} leaves are there: "
                f"{scan.size - size} leaves added behind the sealer's back",
                leaf=size,
            )
        elif size and bytes(head.root) != scan.roots.get(size):
            self.find(
                TREE_HEAD,
                f"the tree head's root for {size} events is not the root the events hash to",
            )

    def check_events(self, scan: _Scan, horizon: int) -> None:
        """Every event is a leaf or, above the sealer's horizon, not sealed yet: counted first
        (the unsealed are few, the leaves were just read), and only when the counts disagree
        are the strays looked for."""
        pending = unsealed(horizon).count()
        count = AuditEvent.objects.count() - scan.events - pending
        if count <= 0:
            return
        stray = AuditEvent.objects.filter(seq__lte=horizon, leaf__isnull=True)
        for seq in stray.order_by("seq").values_list("seq", flat=True)[:NAMED]:
            self.find(
                GAP,
                f"gap: event seq {seq} is not in the tree, though the sealer had sealed every "
                "event up to it (its leaf was removed)",
                seq=seq,
            )
        if count > NAMED:
            self.find(GAP, f"and {count - NAMED} more events are outside the tree")

    def check_pending(self, horizon: int) -> None:
        window = timedelta(seconds=settings.CXHUB_AUDIT_CHECKPOINT_WINDOW_SECONDS)
        late = unsealed(horizon).filter(at__lt=timezone.now() - window)
        count = late.count()
        if count:
            oldest = late.order_by("at").values_list("seq", "at").first()
            self.find(
                LATE,
                f"{count} events wait for the sealer beyond the checkpoint window "
                f"({window.total_seconds():.0f} s), the oldest seq {oldest[0]} since "
                f"{oldest[1].isoformat()}: is the sealer running?",
                seq=oldest[0],
                warning=True,
            )

    def check_claims(self, scan: _Scan) -> None:
        matched, differing = [], []
        for claim in sorted(self.claims.values(), key=lambda claim: claim.size):
            if claim.size > scan.size:
                claim.matches = None
                continue
            claim.matches = scan.roots[claim.size] == claim.root
            (matched if claim.matches else differing).append(claim)
        beyond = [claim for claim in self.claims.values() if claim.matches is None]
        if beyond:
            largest = max(beyond, key=lambda claim: claim.size)
            if scan.size == 0 and not AuditEvent.objects.exists():
                self.find(
                    TRUNCATED,
                    f"truncated: the audit tables are empty, but {largest.named} holds a "
                    f"checkpoint of {largest.size} events",
                )
            else:
                self.find(
                    REMOVED_TAIL,
                    f"removed tail: the log has {scan.size} events, but {largest.named} holds a "
                    f"checkpoint of {largest.size}: the last {largest.size - scan.size} events "
                    "were removed",
                    leaf=scan.size,
                )
        if differing:
            first = differing[0]
            before = [claim.size for claim in matched if claim.size < first.size]
            start = max(before, default=0)
            since = (
                f"the checkpoint of {start} events still matches"
                if before
                else "no earlier checkpoint matches"
            )
            last = first.size - 1
            where = (
                f"the event at leaf {start} ({self.seq_at(scan, start)})"
                if start == last
                else f"an event among leaves {start}–{last} ({self.seq_at(scan, start)} to "
                f"{self.seq_at(scan, last)})"
            )
            self.find(
                REWRITTEN,
                f"rewritten: the log does not extend the checkpoint of {first.size} events held "
                f"by {first.named}; {since}: {where} was changed, removed or inserted",
                seq=scan.seqs.get(start),
                leaf=start,
            )
            if len(differing) > 1:
                self.find(
                    REWRITTEN,
                    f"and {len(differing) - 1} later checkpoints are not extended by it either",
                )

    def check_forks(self, scan: _Scan, leaves: set[int]) -> None:
        """A differing checkpoint against the next one the log extends: the log's own proof
        between the two must fail, or the difference is not a fork."""
        ordered = sorted(self.claims.values(), key=lambda claim: (claim.size, claim.root))
        pairs = []
        for claim in ordered:
            if claim.matches is not False:
                continue
            later = next(
                (
                    other
                    for other in ordered
                    if other.matches and other.size >= claim.size and other is not claim
                ),
                None,
            )
            if later is not None:
                pairs.append((claim, later))
        # Two roots for one size beyond the log: a fork whatever the log holds.
        by_size: dict[int, list[_Claim]] = {}
        for claim in ordered:
            by_size.setdefault(claim.size, []).append(claim)
        for size, claims in by_size.items():
            if len(claims) > 1 and claims[0].matches is None:
                self.find(
                    FORK,
                    f"fork: {claims[0].named} and {claims[1].named} hold checkpoints of "
                    f"{size} events with different roots",
                    leaf=size,
                )
        if not pairs:
            return
        wanted: dict[int, set[int]] = {}
        for claim, later in pairs[:NAMED]:
            for start, end in merkle.consistency_ranges(claim.size, later.size):
                for level, index in merkle.perfect_subtrees(start, end):
                    wanted.setdefault(level, set()).add(index)
        proofs = _scan(sizes=set(), leaves=set(), nodes=wanted, batch_size=self.batch_size)
        for claim, later in pairs[:NAMED]:
            try:
                merkle.verify_consistency(
                    claim.size,
                    later.size,
                    claim.root,
                    later.root,
                    _consistency_proof(proofs, claim.size, later.size),
                )
            except merkle.MerkleProofError:
                self.find(
                    FORK,
                    f"fork: the checkpoint of {claim.size} events held by {claim.named} and "
                    f"the checkpoint of {later.size} events held by {later.named} are both "
                    "signed but cannot be one log (no consistency proof joins them): two "
                    "histories were shown",
                    leaf=claim.size,
                )

    def check_replay(self) -> None:
        database = [claim for claim in self.claims.values() if claim.in_database]
        witnessed = [claim for claim in self.claims.values() if claim.witnessed]
        if not witnessed:
            return
        newest_witnessed = max(witnessed, key=lambda claim: claim.size)
        newest_database = max((claim.size for claim in database), default=None)
        if newest_database is None:
            if not AuditEvent.objects.exists():
                return  # the truncation finding says it all
            self.find(
                REPLAYED,
                "the database holds no checkpoint signed by a trusted key, but "
                f"{newest_witnessed.named} holds one of "
                f"{newest_witnessed.size} events",
            )
        elif newest_database < newest_witnessed.size:
            self.find(
                REPLAYED,
                f"old checkpoint replayed: the database's newest checkpoint is of "
                f"{newest_database} events, but {newest_witnessed.named} holds one of "
                f"{newest_witnessed.size}",
            )


def verify_log(
    *,
    sources: Iterable[Source] = (),
    keys: Iterable[str] = (),
    database: bool = True,
    batch_size: int = BATCH,
) -> TreeReport:
    """Recompute the tree from the events and check it against every checkpoint given (and the
    database's own when ``database``). ValueError for a verifier key that is not one."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    return _Verifier(
        sources=list(sources), keys=list(keys), database=database, batch_size=batch_size
    ).run()
