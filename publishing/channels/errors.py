"""Errors a channel raises when it talks to its network, so that dispatch decides what to do
next (retry, fail, reconnect, reconcile) without knowing anything about the network."""


class ChannelError(Exception):
    """Base class: something went wrong talking to a network."""


class RetryableError(ChannelError):
    """The network refused for now (rate limit, 5xx, timeout before sending): try again later.

    `retry_after` is the wait in seconds the network asked for (Retry-After, x-rate-limit-reset),
    or None when it did not say; dispatch then backs off on its own schedule.
    """

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(ChannelError):
    """The network will never accept this post as it is (validation, duplicate, forbidden)."""


class AuthExpired(ChannelError):
    """The account's token is no longer valid and could not be refreshed: reconnect it."""


class UnknownOutcome(ChannelError):
    """The request may have reached the network (e.g. a timeout after sending): reconcile before
    any retry, or the post could go out twice."""
