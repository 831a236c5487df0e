"""A watch's figures as files: the rows of `measures.series` as CSV (one row per bucket, the
languages as one column per language seen) and as JSON, shared by the API and the pages."""

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

COLUMNS = (
    "start",
    "volume",
    "positive",
    "neutral",
    "negative",
    "not_scored",
    "authors",
    "new_authors",
)


def series_csv(rows: Sequence[dict[str, Any]]) -> str:
    """CSV with a header: the fixed columns, then `lang_<code>` for every language seen in any
    row (`lang_und` for posts whose language is not known), in code order."""
    languages = sorted({code for row in rows for code in row["languages"]})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*COLUMNS, *(f"lang_{code or 'und'}" for code in languages)])
    for row in rows:
        writer.writerow(
            [
                row["start"].isoformat().replace("+00:00", "Z"),
                *(row[name] for name in COLUMNS[1:]),
                *(row["languages"].get(code, 0) for code in languages),
            ]
        )
    return out.getvalue()


def series_json(rows: Sequence[dict[str, Any]], **extra: Any) -> str:
    return json.dumps({**extra, "buckets": list(rows)}, cls=DjangoJSONEncoder)
