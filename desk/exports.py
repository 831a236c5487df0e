"""Streamed exports of the audit trail as CSV and JSON Lines: one batch of rows in memory at a
time, however long the trail, and the first rows on their way before the last are read.

Each export carries its proofs, so that audit/verifier.py checks it offline: the signed
checkpoint (a C2SP signed note) that covers the trail when the export starts, the verifier keys,
and with each event its leaf index, the checkpoint's tree size and its RFC 9162 inclusion proof
(base64 hashes). JSON Lines: a header line first, ``{"format", "checkpoint", "origin",
"tree_size", "verifier_keys"}``. CSV: the columns ``leaf_index``, ``tree_size``,
``inclusion_proof`` (the hashes joined by ``;``), and ``checkpoint`` and ``verifier_keys`` (keys
joined by a space), the last two filled in the first data row only. An event newer than the
checkpoint (it committed while the export began) goes out unproven: no leaf index, no proof.
The proofs of a batch are folded from stored nodes fetched in one query (audit.proofs).

``prev_hash`` and ``hash`` stay: they hold the closed chain's links of the events from before the
tree (audit.verify checks them), and the columns keep the API's shape for existing readers.
"""

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.http import StreamingHttpResponse
from django.utils import timezone

from audit.models import AuditCheckpoint
from audit.proofs import b64, batch_proofs, origin
from audit.verifier import CSV_ESCAPED_STARTS, EXPORT_FORMAT, PROOF_FIELDS

# The API's field names, in the API's order; `data` is one column of compact JSON.
COLUMNS = (
    "seq",
    "at",
    "actor",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "team",
    "team_name",
    "data",
    "prev_hash",
    "hash",
    *PROOF_FIELDS,
)
# CSV only: filled in the first data row.
CSV_COLUMNS = (*COLUMNS, "checkpoint", "verifier_keys")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/jsonl; charset=utf-8"}


def neutralise(cell: str) -> str:
    """The cell with a leading apostrophe if a spreadsheet would take it for a formula (OWASP,
    "CSV Injection"), or if it starts with an apostrophe, so that the verifier can take exactly
    one off again (audit.verifier.unneutralise)."""
    return "'" + cell if cell[:1] in CSV_ESCAPED_STARTS else cell


@dataclass(frozen=True)
class ExportProofs:
    """What an export is proved against: a signed checkpoint (None without a signing key: the
    events then go out unproven) and the verifier keys to check it with."""

    checkpoint: AuditCheckpoint | None
    verifier_keys: list[str]

    @property
    def size(self) -> int:
        return self.checkpoint.size if self.checkpoint is not None else 0

    def header(self) -> dict:
        checkpoint = self.checkpoint
        return {
            "format": EXPORT_FORMAT,
            "checkpoint": checkpoint.note if checkpoint is not None else None,
            "origin": origin(checkpoint) if checkpoint is not None else None,
            "tree_size": checkpoint.size if checkpoint is not None else None,
            "verifier_keys": self.verifier_keys,
        }


def _at_format():
    """How the API writes `at` (DRF's DateTimeField: ISO 8601 in the current time zone, "Z" for
    UTC), with the time zone looked up once per export instead of once per row."""
    zone = timezone.get_current_timezone()

    def at(value) -> str:
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return at


def _compact(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def event_records(rows: Iterable[tuple], proofs: ExportProofs) -> Iterator[dict]:
    """Rows of `selectors.EXPORT_FIELDS` as the API shows events, each with its leaf index and
    inclusion proof in the checkpoint's tree (none for an event newer than the checkpoint)."""
    rows = list(rows)
    size = proofs.size
    paths = batch_proofs([row[-1] for row in rows], size) if size else {}
    # Neighbouring events share most of their proof's hashes: each is encoded once.
    encoded = {value: b64(value) for value in {value for path in paths.values() for value in path}}
    at = _at_format()
    for seq, when, actor, actor_name, action, obj_type, obj_id, team, team_name, *rest in rows:
        data, prev_hash, hash_, leaf_index = rest
        path = paths.get(leaf_index)
        yield {
            "seq": seq,
            "at": at(when),
            "actor": actor,
            "actor_name": actor_name,
            "action": action,
            "object_type": obj_type,
            "object_id": obj_id,
            "team": team,
            "team_name": team_name,
            "data": data,
            "prev_hash": prev_hash,
            "hash": hash_,
            "leaf_index": leaf_index if path is not None else None,
            "tree_size": size if path is not None else None,
            "inclusion_proof": [encoded[value] for value in path] if path is not None else [],
        }


def csv_chunks(batches: Iterable[list[tuple]], proofs: ExportProofs) -> Iterator[str]:
    """The header, then one chunk of CSV per batch. Every text cell is neutralised; `data` is one
    cell of compact JSON; the checkpoint and the keys go in the first row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def drained() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield drained()
    first = True
    for batch in batches:
        for record in event_records(batch, proofs):
            record["data"] = _compact(record["data"])
            record["inclusion_proof"] = ";".join(record["inclusion_proof"])
            extra = ["", ""]
            if first:
                note = proofs.checkpoint.note if proofs.checkpoint is not None else ""
                extra, first = [note, " ".join(proofs.verifier_keys)], False
            writer.writerow(
                [
                    neutralise(cell) if cell.__class__ is str else cell
                    for cell in (*record.values(), *extra)
                ]
            )
        yield drained()


def jsonl_chunks(batches: Iterable[list[tuple]], proofs: ExportProofs) -> Iterator[str]:
    """The header line, then one chunk per batch, one JSON object per line."""
    yield _compact(proofs.header()) + "\n"
    for batch in batches:
        yield "".join(_compact(record) + "\n" for record in event_records(batch, proofs))


def streaming_response(
    batches: Iterable[list[tuple]], *, fmt: str, proofs: ExportProofs
) -> StreamingHttpResponse:
    chunks = csv_chunks(batches, proofs) if fmt == "csv" else jsonl_chunks(batches, proofs)
    response = StreamingHttpResponse(chunks, content_type=CONTENT_TYPES[fmt])
    filename = f"audit-{timezone.localdate().isoformat()}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    # Rows go out as they are read: no proxy buffering, no cache keeping a copy.
    response["X-Accel-Buffering"] = "no"
    response["Cache-Control"] = "no-store"
    return response
