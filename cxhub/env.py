"""Small typed readers for settings from the environment.

Each one fails loudly and names the variable, so a bad deployment stops at start-up
instead of misbehaving later.
"""

import ipaddress
import json
import os
from pathlib import Path


class ImproperlyConfiguredEnv(Exception):
    """A setting read from the environment is missing or malformed."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    """The value of NAME, or the contents of the file NAME_FILE points to (for secrets)."""
    value = os.environ.get(name)
    if value is not None:
        return value
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfiguredEnv(f"{name}_FILE={path!r} cannot be read: {exc}") from exc
    return None


def env_str(name: str, default: str | None = None) -> str:
    value = _raw(name)
    if value is None:
        if default is None:
            raise ImproperlyConfiguredEnv(f"{name} must be set")
        return default
    return value


def env_bool(name: str, default: bool = False) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfiguredEnv(
        f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no)"
    )


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfiguredEnv(f"{name}={value!r} is not a whole number") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfiguredEnv(f"{name}={number} must be at least {minimum}")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    value = _raw(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfiguredEnv(f"{name}={value!r} is not a number") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfiguredEnv(f"{name}={number} must be at least {minimum}")
    return number


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_networks(name: str, default: list[str] | None = None) -> list[str]:
    """Comma-separated networks in CIDR notation (a bare address is its own /32 or /128),
    each checked, returned normalised ("10.0.0.0/8")."""
    networks = []
    for item in env_list(name, default):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ImproperlyConfiguredEnv(
                f"{name}: {item!r} is not a network (use CIDR, e.g. 10.0.0.0/8 or 2001:db8::/32)"
            ) from None
    return networks


def env_secret(name: str, *, debug_default: str | None, debug: bool) -> str:
    """A secret that must be set when DEBUG is off; in DEBUG a fixed development value is used."""
    value = _raw(name)
    if value:
        return value
    if debug and debug_default is not None:
        return debug_default
    raise ImproperlyConfiguredEnv(
        f"{name} must be set when DEBUG is off (or give {name}_FILE pointing to a file holding it)"
    )


def env_json_object(name: str, default: dict | None = None) -> dict:
    """A JSON object (e.g. {"x": {"client_id": "…", "client_secret": "…"}}); NAME_FILE works
    too, for values holding secrets."""
    value = _raw(name)
    if value is None or value.strip() == "":
        return dict(default or {})
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise ImproperlyConfiguredEnv(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ImproperlyConfiguredEnv(f"{name} must be a JSON object, not {type(data).__name__}")
    return data
