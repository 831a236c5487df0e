"""Many rows fast, for the benches: audit events through COPY, and copies of a template row
made by one INSERT … SELECT (every column as the template has it, unless given)."""

import json
from datetime import UTC, datetime, timedelta

ACTIONS = ("post.created", "post.submitted", "approval.decided", "post.published", "team.renamed")


def event_rows(*, count: int, after_seq: int, teams: list[int], actors: list[tuple[int, str]]):
    """`count` events after `after_seq`, of the `teams` and by the `actors` (id, username) in
    turn: one in a thousand carries text a spreadsheet would run, so that neutralising it is
    part of an export's cost."""
    started = datetime(2025, 1, 1, tzinfo=UTC)
    for n in range(count):
        actor_id, actor_name = actors[n % len(actors)]
        body = '=HYPERLINK("http://x")' if n % 1000 == 0 else f"Update number {n} for residents"
        yield {
            "seq": after_seq + 1 + n,
            "at": started + timedelta(milliseconds=250 * n),
            "actor_id": actor_id,
            "actor_name": actor_name,
            "action": ACTIONS[n % len(ACTIONS)],
            "object_type": "publishing.post",
            "object_id": str(n // 5),
            "team_id": teams[n % len(teams)],
            "data": {"body": body, "version": n % 7 + 1},
        }


def copy_events(rows) -> int:
    """COPY `rows` (as `event_rows` makes them, seqs following the last event's) into the audit
    trail, as `record` would have written them but without a transaction per event; move the
    seq sequence past them and analyse the table. Returns the number of rows. The sealer has
    not folded them into the tree yet."""
    from django.db import connection, transaction

    from audit.hashing import EVENT_FIELDS

    count = last = 0
    with transaction.atomic(), connection.cursor() as cursor:
        sql = f"COPY audit_auditevent ({', '.join(EVENT_FIELDS)}, prev_hash) FROM STDIN"
        with cursor.cursor.copy(sql) as copy:
            for row in rows:
                values = [row[column] for column in EVENT_FIELDS]
                values[EVENT_FIELDS.index("data")] = json.dumps(row["data"])
                copy.write_row([*values, ""])
                count, last = count + 1, row["seq"]
        if count:
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('audit_auditevent', 'seq'), %s)", [last]
            )
    analyse("audit_auditevent")
    return count


def analyse(table: str) -> None:
    """VACUUM ANALYZE `table`: the planner's statistics as a table of that size would have."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {table}")


def copy_row(
    model, template_pk: int, *, count: int = 0, parents: list[int] | None = None, **given
) -> list[int]:
    """Copies of `model`'s row `template_pk` in one statement: `count` of them, or one for each
    id of `parents` (`parent` in the expressions); `n` (1, 2, …) numbers them. `given` maps
    columns to SQL expressions over the template `t`, `n` and `parent` (e.g.
    body="t.body || ' ' || n", post_id="parent"); every other column but the primary key is
    the template's. Returns the new rows' ids (PostgreSQL)."""
    from django.db import connection

    table = model._meta.db_table
    pk = model._meta.pk.column
    with connection.cursor() as cursor:
        columns = [
            column.name
            for column in connection.introspection.get_table_description(cursor, table)
            if column.name != pk
        ]
        unknown = set(given) - set(columns)
        if unknown:
            raise ValueError(f"{table} has no column {', '.join(sorted(unknown))}")
        quote = connection.ops.quote_name
        values = ", ".join(given.get(column, f"t.{quote(column)}") for column in columns)
        if parents is None:
            source, arguments = "generate_series(1, %s) AS g(n)", [count]
        else:
            source = "unnest(%s::bigint[]) WITH ORDINALITY AS g(parent, n)"
            arguments = [parents]
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(map(quote, columns))}) SELECT {values} "  # noqa: S608 (names from the model)
            f"FROM {table} t, {source} WHERE t.{pk} = %s RETURNING {pk}",
            [*arguments, template_pk],
        )
        return [row[0] for row in cursor.fetchall()]
