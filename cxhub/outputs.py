"""Output serializers that cost a list page little: DRF's own answer, without its per-field toll.

DRF's `Serializer.to_representation` walks every field of every row through several generic
calls (its source lookup, its callable check, the field's own conversion): on a page of 50 posts
with two targets each, that is 2,250 fields and most of the request's time. `FastOutput` reads
the serializer's fields once, when it first writes a row, and turns each one whose conversion it
knows into a direct function of the row (an attribute read and one conversion, exactly the one
DRF would apply); any other field keeps DRF's own path. The answer is the same, key for key and
value for value, as `rest_framework.serializers.Serializer.to_representation` (tests/cxhub/
test_outputs.py holds both to it), and the serializer stays a DRF serializer for its schema.

Known here, by exact class: IntegerField, BigIntegerField, CharField (and URL, e-mail, slug),
ChoiceField, BooleanField, DateTimeField in ISO 8601 and the current time zone, JSONField, a
primary-key relation through a plain foreign key, SerializerMethodField, and a nested
`many=True` serializer (a fast one itself; read from `<source>_list` when the row carries
that list, as a `Prefetch(..., to_attr="targets_list")` leaves it). A source is read directly
only when each step is a field of the model; otherwise, and whenever a direct read finds a
step missing, the field goes DRF's way. A field class of our own may say
`represents_alone = True` when its `to_representation` depends on the value alone: it is then
called directly.
"""

import datetime
import keyword
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils import timezone
from rest_framework import fields, relations, serializers
from rest_framework.fields import SkipField
from rest_framework.relations import PKOnlyObject
from rest_framework.settings import ISO_8601, api_settings

_STRINGS = (fields.CharField, fields.URLField, fields.EmailField, fields.SlugField)
_MISSING = object()
# A page's rows may carry a nested list ready under `<source>_list` (Django's
# `Prefetch(..., to_attr=...)`): read from there, the rows spare Django a queryset each.
LISTED = "_list"


_BROKEN = object()  # a dotted source met None before its end: the field goes DRF's way


def _drf(field) -> Callable:
    """DRF's own path for one field (Serializer.to_representation, one field of it)."""

    def read(instance):
        try:
            attribute = field.get_attribute(instance)
        except SkipField:
            return _MISSING
        check = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
        return None if check is None else field.to_representation(attribute)

    return read


def _model_path(model, source_attrs: list[str]) -> list[str] | None:
    """The attribute names to read for `source_attrs` when every step is a field of the model
    (a forward relation for all but the last); None when one is not (a method, a property, a
    reverse relation): DRF's lookup then, which calls what it finds callable."""
    for position, name in enumerate(source_attrs):
        if model is None:
            return None
        try:
            model_field = model._meta.get_field(name)
        except FieldDoesNotExist:
            return None
        if position < len(source_attrs) - 1:
            if not (model_field.many_to_one or model_field.one_to_one) or model_field.auto_created:
                return None
            model = model_field.related_model
        elif model_field.is_relation and not model_field.concrete:
            return None
    return list(source_attrs)


def _reader(path: list[str]) -> Callable:
    """Reads a dotted source; _BROKEN when a step before the last is None (DRF's way then)."""
    first, rest = path[0], path[1:]

    def read(instance):
        value = getattr(instance, first)
        for name in rest:
            if value is None:
                return _BROKEN
            value = getattr(value, name)
        return value

    return read


def _identity(value):
    return value


def _converter(field) -> Callable | None:
    """The conversion DRF's field applies to a value that is not None; None when unknown."""
    kind = type(field)
    if getattr(field, "represents_alone", False):
        return field.to_representation
    if kind is fields.IntegerField:
        return int
    if kind is fields.BigIntegerField:

        def big(value):
            if getattr(field, "coerce_to_string", api_settings.COERCE_BIGINT_TO_STRING):
                return str(value)
            return int(value)

        return big
    if kind in _STRINGS:
        return str
    if kind is fields.ChoiceField:
        mapping = field.choice_strings_to_values

        def choice(value):
            if value == "":
                return value
            return mapping.get(str(value), value)

        return choice
    if kind is fields.BooleanField:

        def boolean(value):
            return value if type(value) is bool else field.to_representation(value)

        return boolean
    if kind is fields.JSONField and not field.binary:
        return _identity
    if kind is fields.DateTimeField:
        output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
        if hasattr(field, "timezone") or output_format is None:
            return None
        if output_format.lower() != ISO_8601:
            return None

        def moment(value):
            if not (settings.USE_TZ and isinstance(value, datetime.datetime)):
                return field.to_representation(value)
            if value.utcoffset() is None:  # naive: DRF makes it aware first
                return field.to_representation(value)
            try:
                text = value.astimezone(timezone.get_current_timezone()).isoformat()
            except OverflowError:  # DRF names the field in its error
                return field.to_representation(value)
            return text[:-6] + "Z" if text.endswith("+00:00") else text

        return moment
    return None


class FastOutput(serializers.Serializer):
    """Mix into an output (read-only) serializer: same answer as DRF's, a fraction of the cost.
    Put it first among the bases: `class PostOutput(FastOutput, serializers.ModelSerializer)`.

    The plan of a class is made once, from the fields of its first instance: one function that
    writes a row in straight-line code (generated, as `dataclasses` generates its methods), and
    the readings it calls. It is kept on the class when nothing in it depends on that instance
    (its fields come from the class alone and every field has a direct reading): building a
    ModelSerializer's fields again for every request is itself a good part of DRF's cost.
    Methods and nested serializers are bound to each instance."""

    def to_representation(self, instance):
        bound = self.__dict__.get("_fast_bound")
        if bound is None:
            bound = self._bind()
        return bound[0](instance, bound[1])

    def _bind(self) -> tuple[Callable, list[Callable]]:
        cls = type(self)
        plan = cls.__dict__.get("_fast_spec")
        if plan is None:
            spec = self._spec()
            plan = (_writer(spec), spec)
            if self._shareable(spec):
                cls._fast_spec = plan
        write, spec = plan
        calls = []
        for _, kind, payload in spec:
            if kind == "method":
                calls.append(getattr(self, payload))
            elif kind == "nested":
                calls.append(_nested_reader(*payload, context=self.context))
            elif kind == "generic":
                calls.append(payload)
        self._fast_bound = (write, calls)
        return self._fast_bound

    def _shareable(self, spec) -> bool:
        cls = type(self)
        own_fields = cls.get_fields in (
            serializers.Serializer.get_fields,
            serializers.ModelSerializer.get_fields,
        )
        own_init = cls.__init__ is serializers.BaseSerializer.__init__
        return own_fields and own_init and all(kind != "generic" for _, kind, _ in spec)

    def _spec(self) -> list[tuple[str, str, object]]:
        model = getattr(getattr(self, "Meta", None), "model", None)
        return [
            (field.field_name, *self._field_spec(field, model)) for field in self._readable_fields
        ]

    def _field_spec(self, field, model) -> tuple[str, object]:
        generic = ("generic", _drf(field))
        if isinstance(field, serializers.SerializerMethodField):
            return ("method", field.method_name)
        if field.source == "*" or not field.source_attrs or field.default is not fields.empty:
            return generic
        if isinstance(field, serializers.ListSerializer):
            return self._nested_spec(field, model) or generic
        if type(field) is relations.PrimaryKeyRelatedField and field.pk_field is None:
            attname = _foreign_key_attname(model, field.source_attrs)
            return ("column", attname) if attname else generic
        convert = _converter(field)
        path = _model_path(model, field.source_attrs) if model is not None else None
        if convert is None or path is None:
            return generic
        return ("read", (path, convert, generic[1]))

    def _nested_spec(self, field, model) -> tuple[str, object] | None:
        child = field.child
        if not isinstance(child, FastOutput) or len(field.source_attrs) != 1 or model is None:
            return None
        name = field.source_attrs[0]
        try:
            if not model._meta.get_field(name).is_relation:
                return None
        except FieldDoesNotExist:
            return None
        return ("nested", (name, type(child)))


def _attribute(name: str) -> str:
    """`instance.name` in generated code, for a name that can be written so."""
    if name.isidentifier() and not keyword.iskeyword(name):
        return f"instance.{name}"
    return f"getattr(instance, {name!r})"


def _writer(spec) -> Callable:
    """One function that writes a row for the whole spec: for each field an attribute read, a
    None check and DRF's conversion, with no loop and no call it can do without. Bound
    callables (methods, nested lists, DRF's own path) come in `calls`, in the spec's order."""
    names: dict[str, object] = {"_MISSING": _MISSING, "_BROKEN": _BROKEN}
    lines = ["def write(instance, calls):", "    row = {}"]
    bound = 0
    for index, (name, kind, payload) in enumerate(spec):
        key = repr(name)
        if kind in ("method", "nested"):
            lines.append(f"    row[{key}] = calls[{bound}](instance)")
            bound += 1
        elif kind == "generic":
            lines.append(f"    value = calls[{bound}](instance)")
            lines.append(f"    if value is not _MISSING: row[{key}] = value")
            bound += 1
        elif kind == "column":
            lines.append(f"    row[{key}] = {_attribute(payload)}")
        else:  # "read"
            path, convert, fallback = payload
            if convert is int or convert is str:
                converted = f"{convert.__name__}(value)"
            elif convert is _identity:
                converted = "value"
            else:
                names[f"convert{index}"] = convert
                converted = f"convert{index}(value)"
            if len(path) == 1:
                lines.append(f"    value = {_attribute(path[0])}")
                lines.append(f"    row[{key}] = None if value is None else {converted}")
            else:
                names[f"read{index}"] = _reader(path)
                names[f"fallback{index}"] = fallback
                lines.append(f"    value = read{index}(instance)")
                lines.append("    if value is _BROKEN:")
                lines.append(f"        value = fallback{index}(instance)")
                lines.append(f"        if value is not _MISSING: row[{key}] = value")
                lines.append(f"    else: row[{key}] = None if value is None else {converted}")
    lines.append("    return row")
    exec("\n".join(lines), names)  # noqa: S102 (our own code: names from the model's fields)
    return names["write"]


def _nested_reader(name: str, child_class: type, *, context) -> Callable:
    """A nested `many=True` list, as DRF's ListSerializer writes it, by a fast child."""
    write = child_class(context=context).to_representation
    listed = name + LISTED

    def read(instance):
        items = getattr(instance, listed, None)
        if items is None:
            items = getattr(instance, name)
            if items is None:
                return None
            if isinstance(items, models.manager.BaseManager):
                items = items.all()
        return [write(item) for item in items]

    return read


def _foreign_key_attname(model, source_attrs: list[str]) -> str | None:
    """The column of a plain foreign key (`team_id` for `team`): DRF's primary-key relation
    reads the same value without loading the related row."""
    if model is None or len(source_attrs) != 1:
        return None
    try:
        model_field = model._meta.get_field(source_attrs[0])
    except FieldDoesNotExist:
        return None
    if not (model_field.many_to_one or model_field.one_to_one) or not model_field.concrete:
        return None
    return model_field.attname
