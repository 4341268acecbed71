"""The exception tree of mchat-actors.

    MchatActorsError
    +-- ConfigError (ValueError)           bad settings; fatal at start, never retried
    +-- MattermostError                    anything the Mattermost side did
    |   +-- MattermostAuthError            token rejected (401/403 on users/me, no hello)
    |   +-- MattermostUnavailable          network error, 5xx, refused or stalled socket
    |   |   +-- MattermostCertificateError the server's TLS certificate is not trusted
    |   +-- RateLimited                    429 with the server's retry-after
    |   +-- MattermostApiError             any other non-2xx answer (status, error id)
    |   +-- MalformedEvent                 a WebSocket frame we cannot understand
    +-- ChatServiceError                   the ChatService (embedded or remote) failed
    |   +-- ChatServiceTimeout
    |   +-- ChatServiceRejected
    +-- StoreError                         SQLite failed (a bug: bad SQL, constraint)
    |   +-- StoreUnavailable               busy, locked, full or unreadable: worth retrying
    +-- SupervisionError                   an actor exceeded its restart intensity

Third-party exceptions (httpx, trio-websocket, sqlite3) are converted only in the adapter that
called them, with ``raise ... from exc``.
"""

from __future__ import annotations


class MchatActorsError(Exception):
    """Base class of every error raised on purpose by mchat-actors."""


class ConfigError(MchatActorsError, ValueError):
    """Invalid configuration. ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str] | tuple[str, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


class MattermostError(MchatActorsError):
    """Something went wrong talking to Mattermost."""


class MattermostAuthError(MattermostError):
    """The bot token was rejected. Fatal: retrying cannot help."""


class MattermostUnavailable(MattermostError):
    """The server cannot be reached, answered 5xx, or stopped answering."""


class MattermostCertificateError(MattermostUnavailable):
    """The server's TLS certificate failed verification (wrong CA, name, expiry).

    Fatal at start (exit status 5); later a reconnect retries it like an outage, and the
    reconnect state shows this message."""


class RateLimited(MattermostError):
    """The server answered 429; ``retry_after_s`` says when to try again."""

    def __init__(self, retry_after_s: float) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"rate limited by the server, retry after {retry_after_s:.1f} s")


class MattermostApiError(MattermostError):
    """A non-2xx answer that is neither 401/429 nor 5xx."""

    def __init__(self, status: int, error_id: str, message: str = "") -> None:
        self.status = status
        self.error_id = error_id
        super().__init__(f"Mattermost answered {status} {error_id}: {message}".rstrip(": "))


class MalformedEvent(MattermostError):
    """A WebSocket frame or REST payload that does not parse as what it claims to be."""


class ChatServiceError(MchatActorsError):
    """The ChatService failed to handle a message."""


class ChatServiceTimeout(ChatServiceError):
    """The ChatService did not answer within its timeout."""


class ChatServiceRejected(ChatServiceError):
    """The ChatService (or the remote backend) refused the request."""


class StoreError(MchatActorsError):
    """The SQLite database failed. Not transient unless it is a ``StoreUnavailable``."""


class StoreUnavailable(StoreError):
    """The database is busy, locked, full or cannot be read: trying again later can help."""


class PostAlreadyHandled(MchatActorsError):
    """A unit of work found the post already recorded as handled and wrote nothing (a
    duplicate delivery: the caller drops it)."""


class LeaseLost(MchatActorsError):
    """Replicas: a write for a channel whose lease this replica no longer holds (it expired
    while the replica was paused or cut off, and another replica may own it now) was refused
    in its own transaction, so nothing of it was written. The caller drops what it was doing
    for that channel: its owner reads the channel again from the durable cursor."""


class AnswerOverBudget(MchatActorsError):
    """A question's read inside the storage actor's request ran past its time budget and was
    interrupted (nothing of the request was written): the caller reads outside it instead."""


class SupervisionError(MchatActorsError):
    """An actor crashed more often than its restart policy allows."""

    def __init__(self, actor: str, restarts: int, within_s: float) -> None:
        self.actor = actor
        super().__init__(
            f"actor {actor!r} crashed {restarts} times within {within_s:g} s; giving up"
        )
