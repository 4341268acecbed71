"""Calls the ChatService under a timeout and a concurrency limit; failures become an apology.

The serializers call ``Invoker.send`` for each post in order (request/response in their own task,
so a slow channel waits alone). Two ``CapacityLimiter``s bound how many calls run at once:
``limiter`` for calls that answer, ``store_limiter`` for calls that only store (plain posts,
edits, deletes), so storage never waits behind answers that may take an LLM's minute. Any
ChatService failure or timeout gives ``Outcome.failed`` plus the fixed apology text, never the
exception's text, never silence and never a crash.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial

import attrs
import trio

from ..chat.protocol import AnswersInCommit, ChatService, NewMessage, PreparedAnswer
from ..errors import ChatServiceError, StoreError
from ..logsetup import fields as log_fields
from ..messages import AgentUserId, Post, RoomId
from ..ports import Outcome as Outcome
from ..ports import Reactions

logger = logging.getLogger(__name__)

APOLOGY = ("죄송합니다. 지금은 답변을 드릴 수 없습니다. 잠시 후 다시 시도해 주세요. "
           "(Sorry, I can't answer right now. Please try again in a moment.)")


@attrs.define
class InvokerStats:
    calls: int = 0
    failures: int = 0
    timeouts: int = 0
    latency_sum_s: float = 0.0
    latencies_s: list[float] = attrs.Factory(list)  # recent, for metrics histograms


@attrs.define
class Invoker:
    chat: ChatService
    timeout_s: float
    limiter: trio.CapacityLimiter  # calls that answer (may take an LLM's time)
    # calls that only store (plain posts, edits, deletes): never queued behind answers
    store_limiter: trio.CapacityLimiter = attrs.Factory(lambda: trio.CapacityLimiter(16))
    stats: InvokerStats = attrs.Factory(InvokerStats)
    # the service's progress marks on a post it answers (None: it makes none)
    reactions: Reactions | None = None

    async def send(self, post: Post, *, room: RoomId, user: AgentUserId, respond: bool,
                   prompt: str, permalink: str | None = None) -> Outcome:
        """Store ``post`` in the ChatService and get the answer when ``respond``."""
        react = self.reactions.for_post(post.id) if respond and self.reactions else None
        start = trio.current_time()
        self.stats.calls += 1
        try:
            async with self.limiter if respond else self.store_limiter:
                with trio.fail_after(self.timeout_s):
                    result = await self.chat.send_message(
                        room, user, post.message, post_id=post.id, root_id=post.root_id,
                        created_at_ms=post.create_at or None, respond=respond,
                        prompt=prompt if respond else None, permalink=permalink, react=react)
        except trio.TooSlowError:
            self.stats.timeouts += 1
            logger.warning("invoker: ChatService timed out for post %s", post.id,
                           extra=log_fields(channel_id=post.channel_id, user_id=post.user_id,
                                            post_id=post.id, action="chat_timeout",
                                            latency_s=trio.current_time() - start))
            return self._failed(post, "ChatServiceTimeout", respond)
        except (ChatServiceError, StoreError) as exc:
            logger.warning("invoker: ChatService failed for post %s in %s: %s", post.id,
                           post.channel_id, type(exc).__name__, extra=log_fields(
                               channel_id=post.channel_id, user_id=post.user_id,
                               post_id=post.id, action="chat_failed",
                               latency_s=trio.current_time() - start))
            return self._failed(post, type(exc).__name__, respond)
        except Exception as exc:  # the invoker's error boundary: one post, apology, count
            logger.exception("invoker: unexpected ChatService error for post %s", post.id)
            return self._failed(post, type(exc).__name__, respond)
        finally:
            elapsed = trio.current_time() - start
            self.stats.latency_sum_s += elapsed
            self.stats.latencies_s.append(elapsed)
            del self.stats.latencies_s[:-1000]
        answer = result.assistant_message if respond else None
        return Outcome(result=result, answer=answer)

    async def prepare(self, post: Post, message: NewMessage, *, prompt: str,
                      seen: Callable[[object], bool], in_commit: bool = True
                      ) -> PreparedAnswer | Outcome | None:
        """The answer to ``post``'s question, nothing stored yet (``AnswersInCommit``), under
        the same limit and timeout as ``send``. None: the service cannot (a remote one) or the
        prompt is a command (use ``send``); a failed ``Outcome`` (the apology) on failure.
        ``in_commit``: the service may hand back a unit that reads inside the commit
        (``PreparedAnswer.compose``)."""
        chat = self.chat
        if not isinstance(chat, AnswersInCommit):
            return None
        start = trio.current_time()
        failed: Outcome | None = None
        try:
            async with self.limiter:
                with trio.fail_after(self.timeout_s):
                    prepared = await chat.prepare_answer(message, prompt=prompt, seen=seen,
                                                         in_commit=in_commit)
        except trio.TooSlowError:
            self.stats.timeouts += 1
            logger.warning("invoker: ChatService timed out for post %s", post.id)
            failed = self._failed(post, "ChatServiceTimeout", True)
        except (ChatServiceError, StoreError) as exc:
            logger.warning("invoker: ChatService failed for post %s in %s: %s", post.id,
                           post.channel_id, type(exc).__name__)
            failed = self._failed(post, type(exc).__name__, True)
        except Exception as exc:  # the invoker's error boundary: one post, apology, count
            logger.exception("invoker: unexpected ChatService error for post %s", post.id)
            failed = self._failed(post, type(exc).__name__, True)
        else:
            if prepared is None:  # a command: ``send`` makes (and counts) the call
                return None
        self.stats.calls += 1
        elapsed = trio.current_time() - start
        self.stats.latency_sum_s += elapsed
        self.stats.latencies_s.append(elapsed)
        del self.stats.latencies_s[:-1000]
        return prepared if failed is None else failed

    def _failed(self, post: Post, error: str, respond: bool) -> Outcome:
        self.stats.failures += 1
        return Outcome(result=None, answer=APOLOGY if respond else None, failed=True,
                       error=error)

    async def store_only(self, post: Post, *, room: RoomId, user: AgentUserId) -> bool:
        """Best-effort second try to store a post whose answered call failed."""
        return await self._best_effort("store", post, partial(
            self.chat.send_message, room, user, post.message, post_id=post.id,
            root_id=post.root_id, created_at_ms=post.create_at or None))

    async def edit(self, post: Post) -> bool:
        """Apply an edit to the stored message (and memories from it), under the same limits."""
        return await self._best_effort("edit", post, partial(
            self.chat.edit_message, post_id=post.id, content=post.message))

    async def delete(self, post: Post) -> bool:
        return await self._best_effort("delete", post, partial(
            self.chat.delete_message, post_id=post.id))

    async def _best_effort(self, what: str, post: Post,
                           call: Callable[[], Awaitable[object]]) -> bool:
        """``call`` under the limiter and the timeout; a failure is logged and counted."""
        try:
            async with self.store_limiter:
                with trio.fail_after(self.timeout_s):
                    await call()
        except (trio.TooSlowError, ChatServiceError, StoreError) as exc:
            self.stats.failures += 1
            logger.warning("invoker: %s of post %s failed: %s", what, post.id,
                           type(exc).__name__)
            return False
        return True
