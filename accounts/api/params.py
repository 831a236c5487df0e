"""Query parameters shared by the APIs of accounts and of the apps above it."""

from drf_spectacular.utils import OpenApiParameter

from cxhub.api import query_choice

from ..models import Role


def role_param(request) -> list[str] | None:
    role = query_choice(request.query_params, "role", Role.values)
    return None if role is None else [role]


ROLE = OpenApiParameter(
    "role", str, enum=Role.values, description="Only where I hold this role (or below it)."
)
