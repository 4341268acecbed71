"""The ChatService interface the runtime calls, and the records it returns.

Two implementations: the embedded service on SQLite (``chat.embedded``) and an adapter for an
existing AI Memory Agent (``chat.remote``). The runtime (mapper and invoker) only ever sees this
Protocol. Every method may raise ``ChatServiceError`` (or a subclass); the invoker turns those
into a short apology, never a crash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from ..messages import AgentUserId, RoomId

# Called by the service with an emoji name while it works on a slow request (the summary's
# "hourglass_flowing_sand" at start, "white_check_mark" when done). Best effort.
ReactFn = Callable[[str], Awaitable[None]]


@attrs.frozen(kw_only=True)
class ChatUser:
    id: AgentUserId
    name: str
    email: str | None = None


@attrs.frozen(kw_only=True)
class ChatRoom:
    id: RoomId
    name: str
    kind: str = "channel"  # channel | private | direct | group


@attrs.frozen(kw_only=True)
class StoredMessage:
    id: str
    room_id: RoomId
    user_id: AgentUserId
    content: str
    mchat_post_id: str | None
    created_at_ms: int
    is_new: bool = True  # False when the post id was already stored (a duplicate)


@attrs.frozen(kw_only=True)
class MemoryRecord:
    id: str
    content: str
    scope: str  # "room" | "personal" | "team" (remote: a room-less memory for one team)
    room_id: RoomId | None
    owner_id: AgentUserId | None
    source_post_id: str | None = None
    permalink: str | None = None
    created_at_ms: int = 0
    updated_at_ms: int = 0
    score: float = 0.0  # set by searches
    # Versions (embedded service): who wrote it, since when it holds, and until when (None:
    # current); ``superseded_by`` names the newer version.
    author_id: AgentUserId | None = None
    kind: str = "remember"
    subject: str = ""
    valid_from_ms: int = 0
    valid_to_ms: int | None = None
    superseded_by: str | None = None
    forgotten_at_ms: int | None = None
    # Filled in for answers: the author's and the room's names, the version this one replaced.
    author_name: str = ""
    room_name: str = ""
    previous_content: str | None = None
    team_id: str | None = None  # scope "team": the Mattermost team it is meant for
    # Filled in by a hybrid search: the cosine similarity of the memory's embedding to the
    # question's (None: not found by embeddings, or none configured).
    similarity: float | None = None


@attrs.frozen(kw_only=True)
class SendResult:
    """The seed's result shape: user_message, assistant_message, extracted_memories."""

    user_message: StoredMessage
    assistant_message: str | None = None
    extracted_memories: tuple[MemoryRecord, ...] = ()
    # For slash commands: whether the answer is private to the asker (search results).
    ephemeral: bool = False


class LLM(Protocol):
    """An OpenAI-compatible chat-completions model (``chat.llm.OpenAICompatibleLLM``)."""

    async def complete(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        temperature: float = 0.2,
        max_tokens: int | None = None,
    ) -> str:
        """The assistant's text for ``messages`` (``[{"role": ..., "content": ...}]``).

        Raises:
            ChatServiceTimeout: no answer in time (after retries).
            ChatServiceRejected: 4xx other than 429 (bad key, bad model).
            ChatServiceError: anything else (5xx/429 after retries, malformed answer).
        """
        ...


@runtime_checkable
class ChatService(Protocol):
    """What mchat-actors needs from an AI Memory Agent."""

    async def find_user_by_email(self, email: str) -> ChatUser | None:
        """The agent user with this e-mail (case-insensitive), or None."""
        ...

    async def create_user(self, *, name: str, email: str | None) -> ChatUser: ...

    async def create_room(self, *, name: str, kind: str) -> ChatRoom: ...

    async def add_room_member(self, room: RoomId, user: AgentUserId) -> None:
        """Idempotent."""
        ...

    async def remove_room_member(self, room: RoomId, user: AgentUserId) -> None:
        """Idempotent."""
        ...

    async def send_message(
        self,
        room: RoomId,
        user: AgentUserId,
        content: str,
        *,
        post_id: str | None = None,
        root_id: str | None = None,
        created_at_ms: int | None = None,
        respond: bool = False,
        prompt: str | None = None,
        permalink: str | None = None,
        react: ReactFn | None = None,
    ) -> SendResult:
        """Store ``content`` (idempotent on ``post_id``) and, when ``respond``, answer.

        ``prompt`` is the text addressed to the bot (the message without the leading mention,
        e.g. ``/remember X부품 불량률 12%`` or ``X부품 불량률 몇 %야?``); commands, summaries and
        questions are recognised in it. Without ``respond`` no assistant message is produced.
        """
        ...

    async def edit_message(self, *, post_id: str, content: str) -> None:
        """Update a stored message (and memories extracted from it). Unknown ids are ignored."""
        ...

    async def delete_message(self, *, post_id: str) -> None:
        """Mark a stored message deleted (and drop memories sourced from it)."""
        ...


@attrs.frozen(kw_only=True)
class NewMessage:
    """A user message to store without an answer (a plain post), for ``SharedStorage``."""

    room: RoomId
    user: AgentUserId
    content: str
    post_id: str
    root_id: str | None = None
    created_at_ms: int | None = None  # None: now, by the service's clock
    permalink: str | None = None


@attrs.frozen(kw_only=True)
class PreparedAnswer:
    """A question's answer, not stored yet (``SharedStorage.prepare_answer``).

    ``seen``: the runtime had already handled the post (nothing to do, no answer). Otherwise
    ``work`` is the unit of work that stores the question and the answer (idempotent on the
    post id), to run inside the runtime's request that records the post and its reply.
    """

    seen: bool
    answer: str
    work: Callable[[Any], StoredMessage] | None
    # The answer read, worded and stored INSIDE the caller's request (one storage hop for the
    # whole question): set instead of ``answer``/``work``; ``compose(handle)`` returns (the
    # answer, the question stored). It raises ``AnswerOverBudget`` (nothing written) when its
    # read runs past its time budget: ask again with ``in_commit=False``.
    compose: Callable[[Any], tuple[str, StoredMessage]] | None = None


@runtime_checkable
class SharedStorage(Protocol):
    """A ChatService whose storage is the runtime's own store (the embedded one, in-process).

    The runtime then stores plain posts in the same request as its own rows (seen mark, cursor):
    one request and, under load, a share of one commit per post instead of two requests.
    """

    def shares_store(self) -> bool:
        """Whether the service writes through the runtime store's storage actor."""
        ...

    def store_messages_work(self, messages: Sequence[NewMessage]
                            ) -> Callable[[Any], list[StoredMessage]]:
        """A unit of work storing ``messages`` (idempotent on post id) on the store's handle.

        Raises (when run):
            ChatServiceRejected: unknown room or user (the request then stores nothing).
        """
        ...

    def messages_stored(self, messages: Sequence[StoredMessage]) -> None:
        """Called after the commit that holds ``messages`` (background extraction)."""
        ...


@runtime_checkable
class AnswersInCommit(Protocol):
    """A ``SharedStorage`` ChatService that answers a question before anything is stored, so
    the question, its answer and the runtime's rows for the post commit in ONE request."""

    async def prepare_answer(self, message: NewMessage, *, prompt: str,
                             seen: Callable[[Any], bool] | None = None,
                             in_commit: bool = True) -> PreparedAnswer | None:
        """The answer to the question ``message`` asks, read without writing, and the unit of
        work that stores both; None when ``prompt`` is a command (use ``send_message``).
        ``seen(handle)``: whether the runtime handled the post before (same read snapshot).
        ``in_commit``: the service may instead hand back ``PreparedAnswer.compose``, a unit
        that reads, words and stores the answer inside the caller's request (no read of its
        own); False asks for the read first (after ``AnswerOverBudget``).

        Raises:
            ChatServiceError: the database or the LLM failed (nothing was stored).
        """
        ...


__all__ = [
    "AnswersInCommit",
    "NewMessage",
    "PreparedAnswer",
    "SharedStorage",
    "ChatRoom",
    "ChatService",
    "ChatUser",
    "LLM",
    "MemoryRecord",
    "ReactFn",
    "SendResult",
    "StoredMessage",
]

