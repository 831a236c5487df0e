"""Errors a channel raises when it talks to its network, so that dispatch decides what to do
next (retry, fail, reconnect, reconcile) without knowing anything about the network."""


class ChannelError(Exception):
    """Base class: something went wrong talking to a network."""


class RetryableError(ChannelError):
    """The network refused for now, or nothing reached it: a rate limit (429), a connection
    never opened, a read that failed (a read changes nothing). Try again later.

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
    """A call that creates a post may have done so: a timeout or a dropped connection after
    the request was sent, a 5xx answer (a server may record the post, then fail to answer), or
    a success in a shape we cannot read. Reconcile before any retry, or the post could go out
    twice. `retry_after` is a wait the network asked for (Retry-After on a 503), if any."""

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Candidate:
    """A post on the network that may be the one we sent: shown to a person who decides."""

    __slots__ = ("external_id", "external_url", "text", "created_at", "why")

    def __init__(
        self,
        external_id: str,
        *,
        external_url: str = "",
        text: str = "",
        created_at: str = "",
        why: str = "",
    ) -> None:
        self.external_id = str(external_id)[:255]
        self.external_url = str(external_url or "")[:2000]
        # As the network shows it (plain text), shortened for the page.
        self.text = str(text or "")[:1000]
        # ISO 8601, as the network gave it ("" when it did not say).
        self.created_at = str(created_at or "")
        # For the person: "same text", "text differs: …", "same text, 1 image instead of 2".
        self.why = str(why or "")[:300]

    def as_dict(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self) -> str:
        return f"Candidate({self.external_id!r}, why={self.why!r})"


class AmbiguousMatch(ChannelError):
    """Reconcile cannot tell whether the post went out: two or more posts could be ours, or one
    nearly matches. The target is not sent again blind; a person decides between `candidates`
    (or that none of them is ours)."""

    def __init__(self, message: str = "", *, candidates: "list[Candidate]") -> None:
        super().__init__(message)
        self.candidates = list(candidates)
