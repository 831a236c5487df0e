"""Streamed exports of the audit trail as CSV and JSON Lines: one batch of rows in memory at a
time, however long the trail, and the first rows on their way before the last are read."""

import csv
import io
import json
from collections.abc import Iterable, Iterator

from django.http import StreamingHttpResponse
from django.utils import timezone

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
)
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/jsonl; charset=utf-8"}

# A spreadsheet runs a cell starting with one of these as a formula (OWASP, "CSV Injection").
_FORMULA_STARTS = frozenset("=+-@\t\r")


def neutralise(cell: str) -> str:
    """The cell with a leading apostrophe if a spreadsheet would take it for a formula."""
    return "'" + cell if cell[:1] in _FORMULA_STARTS else cell


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


def event_records(rows: Iterable[tuple]) -> Iterator[dict]:
    """Rows of `selectors.EXPORT_FIELDS` as the API shows events."""
    at = _at_format()
    for seq, when, actor, actor_name, action, obj_type, obj_id, team, team_name, *rest in rows:
        data, prev_hash, hash_ = rest
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
        }


def csv_chunks(batches: Iterable[list[tuple]]) -> Iterator[str]:
    """The header, then one chunk of CSV per batch. Every text cell is neutralised; `data` is one
    cell of compact JSON."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def drained() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(COLUMNS)
    yield drained()
    for batch in batches:
        for record in event_records(batch):
            record["data"] = _compact(record["data"])
            writer.writerow(
                [neutralise(cell) if cell.__class__ is str else cell for cell in record.values()]
            )
        yield drained()


def jsonl_chunks(batches: Iterable[list[tuple]]) -> Iterator[str]:
    """One chunk per batch, one JSON object per line."""
    for batch in batches:
        yield "".join(_compact(record) + "\n" for record in event_records(batch))


def streaming_response(batches: Iterable[list[tuple]], *, fmt: str) -> StreamingHttpResponse:
    chunks = csv_chunks(batches) if fmt == "csv" else jsonl_chunks(batches)
    response = StreamingHttpResponse(chunks, content_type=CONTENT_TYPES[fmt])
    filename = f"audit-{timezone.localdate().isoformat()}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    # Rows go out as they are read: no proxy buffering, no cache keeping a copy.
    response["X-Accel-Buffering"] = "no"
    response["Cache-Control"] = "no-store"
    return response
