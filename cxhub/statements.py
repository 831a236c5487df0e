"""Queries built with the ORM once per shape, then run as their SQL.

Building and compiling a queryset costs Django 1–2 ms a query, often more than the database
takes to answer it; on a page of the API read hundreds of times a second, that is most of the
price of a small query. A `Statement` keeps the SQL its queryset compiles to, for each shape
of its arguments, and each time after that only puts the arguments in their places, runs the
SQL and applies the converters Django would have (SQLite's times, JSON). The ORM still writes
every statement: nothing here is SQL by hand.

    targets_of = Statement(
        lambda post_ids: PostTarget.objects.filter(post_id__in=post_ids).values_list("id", "body")
    )
    rows = targets_of(page_ids)  # a list of tuples, as values_list would give

The positional arguments are the parameters: whole numbers, strings, aware times, lists of
them, or None; the ORM must pass each to the database unchanged (ids, choices) or, for a time,
as the database's backend adapts a time (SQLite's text), and compiling refuses
(ValueError) unless it finds among the parameters each stand-in it built the queryset with, so
that an argument the ORM would change or drop cannot land in the wrong place (one it uses twice
is put in both places). The shape is the type of each argument, the length of each list, and
the keyword arguments, which are passed to `build` as they are (flags, orderings, slice bounds:
hashable values that change the SQL itself). A queryset that the ORM knows matches nothing (an
empty `__in`) is an empty list for its shape, without a query, as with the ORM.

`Page` answers for a Statement what DRF's CursorPagination asks of a queryset.
"""

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from threading import Lock

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import QuerySet

# Stand-ins: negative and far from any id, or strings no one writes, so that no constant of a
# query is taken for one.
_FIRST_STAND_IN = -(10**15)
_STAND_IN_TEXT = "\x1fcxhub statement argument {}\x1f"
_STAND_IN_MOMENT = datetime.datetime(1001, 1, 1, tzinfo=datetime.UTC)
_KINDS = (int, str, datetime.datetime)
_EMPTY = object()  # the compiled form of a shape that matches nothing
# Shapes kept a statement (lists of 1 to 500 ids are 500 shapes); past it, the oldest go.
MAX_SHAPES = 600


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    # For each parameter of the SQL: (the argument, the position in it or None if it is not a
    # list, how the backend adapts it or None), or (None, a constant of the query, None).
    slots: tuple[tuple[int | None, object, Callable | None], ...]
    converters: tuple[tuple[int, list, object], ...]  # (column, its converters, its expression)
    alias: str


class Statement:
    def __init__(self, build: Callable[..., QuerySet]):
        self._build = build
        self._compiled: dict[tuple, _Compiled] = {}
        self._lock = Lock()

    def __call__(self, *args, **shape_keys) -> list[tuple]:
        shape = (tuple(_shape(argument) for argument in args), tuple(sorted(shape_keys.items())))
        compiled = self._compiled.get(shape)
        if compiled is None:
            compiled = self._compile(shape, shape_keys)
        if compiled is _EMPTY:
            return []
        params = []
        for argument, held, adapt in compiled.slots:
            if argument is None:
                params.append(held)
                continue
            value = args[argument] if held is None else args[argument][held]
            params.append(value if adapt is None else adapt(value))
        connection = connections[compiled.alias]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        if compiled.converters:
            rows = [_converted(row, compiled.converters, connection) for row in rows]
        return rows

    def _compile(self, shape: tuple, shape_keys: dict) -> _Compiled:
        numbers = count()
        stand_ins: dict[object, tuple[int, int | None, None]] = {}
        args = []
        for argument, (kind, length) in enumerate(shape[0]):
            if kind is type(None):
                args.append(None)
            elif length is None:
                value = _stand_in(kind, next(numbers))
                stand_ins[value] = (argument, None, None)
                args.append(value)
            else:
                values = [_stand_in(kind, next(numbers)) for _ in range(length)]
                stand_ins.update({v: (argument, i, None) for i, v in enumerate(values)})
                args.append(values)
        queryset = self._build(*args, **shape_keys)
        compiler = queryset.query.get_compiler(queryset.db)
        adapt = compiler.connection.ops.adapt_datetimefield_value
        forms = dict(stand_ins)  # a time may reach the SQL as the backend adapts it
        for value, (argument, index, _) in stand_ins.items():
            if type(value) is datetime.datetime:
                forms.setdefault(adapt(value), (argument, index, adapt))
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:
            self._keep(shape, _EMPTY)
            return _EMPTY
        slots = []
        seen = set()
        for param in params:
            found = forms.get(param) if type(param) in _KINDS else None
            if found is None:
                slots.append((None, param, None))
                continue
            seen.add(found[:2])
            slots.append(found)
        if len(seen) != len(stand_ins):
            raise ValueError(f"{self._build!r}: an argument does not reach the SQL as itself")
        columns = [selected[0] for selected in compiler.select[: compiler.col_count]]
        compiled = _Compiled(
            sql=sql,
            slots=tuple(slots),
            converters=tuple(
                (column, found, expression)
                for column, (found, expression) in compiler.get_converters(columns).items()
            ),
            alias=queryset.db,
        )
        self._keep(shape, compiled)
        return compiled

    def _keep(self, shape: tuple, compiled) -> None:
        with self._lock:
            if len(self._compiled) >= MAX_SHAPES:
                self._compiled.pop(next(iter(self._compiled)))
            self._compiled[shape] = compiled


def _shape(argument) -> tuple[type, int | None]:
    if argument is None or type(argument) in _KINDS:
        _aware(argument)
        return (type(argument), None)
    if isinstance(argument, list | tuple):
        kinds = {type(item) for item in argument}
        if len(kinds) <= 1 and kinds <= set(_KINDS):
            for item in argument:
                _aware(item)
            return (kinds.pop() if kinds else int, len(argument))
    raise TypeError(
        f"A statement's argument is a whole number, a string, a time or a list of them: "
        f"{argument!r}"
    )


def _converted(row: tuple, converters, connection) -> tuple:
    """A row as the ORM's values_list gives it (SQLCompiler.apply_converters)."""
    values = list(row)
    for column, found, expression in converters:
        value = values[column]
        for converter in found:
            value = converter(value, expression, connection)
        values[column] = value
    return tuple(values)


def _aware(argument) -> None:
    if type(argument) is datetime.datetime and argument.utcoffset() is None:
        raise TypeError(f"A statement's time carries its offset: {argument!r}")


def _stand_in(kind: type, number: int):
    if kind is int:
        return _FIRST_STAND_IN - number
    if kind is str:
        return _STAND_IN_TEXT.format(number)
    return _STAND_IN_MOMENT + datetime.timedelta(microseconds=number)


class Page:
    """What DRF's CursorPagination asks of a queryset (`order_by`, one `filter` on the position,
    a slice, iteration, `model`), answered by a Statement: `build` takes the page's `ordering`,
    position `lookup` (e.g. "id__lt", or None) and the slice's `start` and `stop` as keywords,
    after the statement's own; the position is its last positional argument (None without one).
    Each row becomes an item through `make`."""

    def __init__(self, statement: Statement, model, make: Callable, *args, **shape_keys):
        self.model = model
        self._statement = statement
        self._make = make
        self._args = args
        self._shape_keys = {"ordering": (), "lookup": None, "position": None, **shape_keys}
        self._slice = (0, None)

    def _with(self, **changes) -> "Page":
        page = Page(self._statement, self.model, self._make, *self._args, **self._shape_keys)
        page._shape_keys.update({k: v for k, v in changes.items() if k != "slice"})
        page._slice = changes.get("slice", self._slice)
        return page

    def order_by(self, *ordering: str) -> "Page":
        return self._with(ordering=ordering)

    def filter(self, **lookups) -> "Page":
        ((lookup, value),) = lookups.items()  # the pagination filters on its position alone
        name = lookup.rsplit("__", 1)[0]
        return self._with(lookup=lookup, position=self.model._meta.get_field(name).to_python(value))

    def __getitem__(self, bounds: slice) -> "Page":
        if not isinstance(bounds, slice) or bounds.step is not None or bounds.stop is None:
            raise TypeError("A page is cut by a slice with its end")
        return self._with(slice=(bounds.start or 0, bounds.stop))

    def __iter__(self):
        keys = dict(self._shape_keys)
        position = keys.pop("position")
        start, stop = self._slice
        rows = self._statement(*self._args, position, **keys, start=start, stop=stop)
        return map(self._make, rows)
