"""The one error type services raise; the API and the pages turn it into a 4xx with its message."""


class ApplicationError(Exception):
    """A request that the rules refuse. `status` is the HTTP status the interfaces answer with."""

    status = 400

    def __init__(self, message: str, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class InvalidTransition(ApplicationError):
    """The object is not in a state that allows this action (distinct from "not allowed")."""

    status = 409


class NotAllowed(ApplicationError):
    """The user may see the object but may not do this to it."""

    status = 403
