"""The OpenAPI schema of the API, made to say every answer an operation can give.

drf-spectacular documents the 2xx answer of each operation from its serializers; `AutoSchema`
adds the error answers, all with the one `Error` shape of `cxhub.api.exception_handler`
(`{"message", "extra"}`, field messages in `extra.fields`), decided centrally from what the
operation takes:

- 400 when it takes a body or query parameters (bad input, naming the field);
- 401 and 403 unless anyone may call it (no credentials; a role or a token that does not allow it);
- 404 when its path names an object (absent, or outside your scope: the same answer);
- 413 and 415 when it reads a body (larger than the site's limits; not in a media type it reads);
- 429 when it is throttled.

A view adds what cannot be told from its shape in `error_statuses`, by method (or `"*"`):
`{"post": (409,)}` for an action that depends on the object's state.
"""

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework.permissions import AllowAny

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error answer: a sentence to show, and details for programs.",
    "required": ["message", "extra"],
    "properties": {
        "message": {"type": "string", "description": "What went wrong, for a person."},
        "extra": {
            "type": "object",
            "description": "Details; on a validation error `fields` maps each bad field to its "
            "messages. Other keys depend on the error (`retry_after_seconds` on a 429, "
            "`status` on a 409, `problems` when preflight blocks).",
            "properties": {
                "fields": {
                    "type": "object",
                    "description": "Field name → list of messages (for a nested input, the same "
                    "shape nested: an object, or a list with one entry per item).",
                    "additionalProperties": {
                        "anyOf": [{"type": "array", "items": {}}, {"type": "object"}]
                    },
                }
            },
            "additionalProperties": True,
        },
    },
}

ERROR_DESCRIPTIONS = {
    400: "Bad input: `extra.fields` names each field that is wrong (query parameters included).",
    401: "No credentials, or credentials that are not valid (a session or an API token).",
    403: "Signed in, but not allowed to do this (role, scope, CSRF, or a read-only token).",
    404: "No such object, or one outside your scope (the same answer, so nothing leaks).",
    409: "The object is not in a state that allows this action (`extra.status` says which).",
    413: "The body, or a file in it, is larger than the site's limit.",
    415: "The body's Content-Type is not one this operation reads.",
    429: "Too many attempts: wait before trying again (the `Retry-After` header or "
    "`extra.retry_after_seconds` says how long).",
}

WRITE_METHODS = {"POST", "PUT", "PATCH"}


class AutoSchema(SpectacularAutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        for status in sorted(self.error_statuses(operation)):
            responses.setdefault(str(status), self._error_response(status))
        return operation

    def _map_basic_serializer(self, serializer, direction):
        """An output serializer writes every field it has, null or not: all are required (the
        default marks only the read-only ones, so clients could not tell "absent" from "null")."""
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "response":
            names = [name for name, field in serializer.fields.items() if not field.write_only]
            if names:
                schema["required"] = names
        return schema

    def error_statuses(self, operation: dict) -> set[int]:
        parameters = operation.get("parameters", [])
        statuses: set[int] = set()
        if "requestBody" in operation or self.method in WRITE_METHODS:
            statuses.add(400)
        if "requestBody" in operation:
            statuses |= {413, 415}
        if any(p["in"] == "query" for p in parameters):
            statuses.add(400)
        if not all(isinstance(p, AllowAny) for p in self.view.get_permissions()):
            statuses |= {401, 403}
        if any(p["in"] == "path" for p in parameters):
            statuses.add(404)
        if self.view.get_throttles():
            statuses.add(429)
        declared = getattr(self.view, "error_statuses", {})
        statuses.update(declared.get("*", ()), declared.get(self.method.lower(), ()))
        return statuses

    def _error_response(self, status: int) -> dict:
        component = ResolvedComponent(
            name="Error", type=ResolvedComponent.SCHEMA, object="Error", schema=ERROR_SCHEMA
        )
        self.registry.register_on_missing(component)
        return {
            "description": ERROR_DESCRIPTIONS[status],
            "content": {"application/json": {"schema": component.ref}},
        }
