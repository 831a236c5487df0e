"""Hooks: the one way a lower layer lets the layers above it act, without importing them.

The apps are layered (pyproject.toml, the import-linter contracts): an app imports only the apps
below it. When a change in a lower app must cause something in an app above it — a post edited
in publishing voids its approvals, an account reconnected in networks releases the targets that
waited for it — the lower app declares a Hook in its ``hooks`` module, fires it from its service,
and the upper app connects a handler in its ``AppConfig.ready()``.

The rules (the firing service's rules, since the handler is part of it):
* A handler runs synchronously, inside the firing service's transaction, in the order connected:
  what it writes commits or rolls back with the change, and an error in it fails the service.
* A handler records its own audit events (audit.services.record), in that same transaction.
* A hook the lower app cannot do without (``required``) refuses to fire with no handler: a post
  submitted with nobody to open its approval request must fail loudly, not wait for ever.
* A hook may also ask: ``send`` returns the handlers' answers, in order.

Django's signals would do much of this; a Hook adds what this needs of them: a handler can be
required, and the handlers of every hook are connected in one plain place, the upper app's
ready().
"""

from collections.abc import Callable
from typing import Any


class HookNotConnected(RuntimeError):
    """A required hook fired with no handler: the app that should handle it is not installed or
    did not connect in its AppConfig.ready()."""


class Hook:
    def __init__(self, name: str, *, required: bool = False):
        self.name = name
        self.required = required
        self._handlers: list[Callable[..., Any]] = []

    def __repr__(self) -> str:
        return f"<Hook {self.name}: {len(self._handlers)} handler(s)>"

    def connect(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """Add a handler (once: ready() may run more than once in tests); returns it, so that
        it can be used as a decorator."""
        if handler not in self._handlers:
            self._handlers.append(handler)
        return handler

    def disconnect(self, handler: Callable[..., Any]) -> None:
        self._handlers.remove(handler)

    @property
    def handlers(self) -> tuple[Callable[..., Any], ...]:
        return tuple(self._handlers)

    def send(self, **kwargs: Any) -> list[Any]:
        """Call every handler with these keyword arguments; their answers, in order."""
        if self.required and not self._handlers:
            raise HookNotConnected(
                f"hook {self.name} has no handler: the app that handles it must connect one in "
                "its AppConfig.ready()"
            )
        return [handler(**kwargs) for handler in self._handlers]
