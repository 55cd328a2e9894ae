"""The few named exceptions callers must handle. Library errors are converted at the edge."""

from __future__ import annotations


class HustingsError(Exception):
    """Base for every expected failure; the command prints it without a traceback."""


class SettingsError(HustingsError):
    """A setting is unknown or has a bad value; start-up stops."""


class SchemaError(HustingsError):
    """The database schema is missing or older than this code; run `hustings init`."""


class AggregatorError(HustingsError):
    """A feed could not be refreshed. Carries the URL at fault."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason

    def __reduce__(self):
        # Crosses process boundaries (the parse pool): rebuild from url and reason,
        # then restore the extra fields (status, retry_after_s, ...).
        return (self.__class__.__new__, (self.__class__,), self.__dict__ | {"args": self.args})

    def __setstate__(self, state):
        self.args = state.pop("args")
        self.__dict__.update(state)


class FetchError(AggregatorError):
    """The HTTP exchange failed: network, status, size or time limits.

    ``status`` is the HTTP status when there was one; ``retry_after_s`` is set
    when the server asked us to wait (429/503 with Retry-After); ``gone`` when
    the server said 410.
    """

    def __init__(
        self,
        url: str,
        reason: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
        gone: bool = False,
        bytes_read: int = 0,
    ):
        super().__init__(url, reason)
        self.status = status
        self.retry_after_s = retry_after_s
        self.gone = gone
        self.bytes_read = bytes_read


class BlockedAddress(FetchError):
    """The address guard refused the destination (private, loopback, metadata...)."""


class ParseError(AggregatorError):
    """The body is not a feed we can read anything from."""


class OPMLError(HustingsError):
    """An OPML file could not be read at all."""


class NotFound(HustingsError):
    """A feed or post named on the command line does not exist."""
