"""What a channel serializer does with one event: dedupe, map, decide, invoke, record, reply.

For a new post: drop it when its id was handled before; map channel and user; apply the trigger
rules; call the ChatService (which stores it and answers when asked); then, in ONE transaction,
mark the post handled, move the channel's backfill cursor and write the reply to the outbox;
only then hand the reply to the sender. A crash before that transaction leaves the post
unhandled, so the restart's backfill brings it back; a crash after it leaves the reply in the
outbox, which the sender sends on start. Either way: one stored message, one reply.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Sequence

import attrs
import trio

from ..chat.protocol import AnswersInCommit, NewMessage, PreparedAnswer, SharedStorage
from ..config import MattermostConfig
from ..errors import AnswerOverBudget, ChatServiceError
from ..logsetup import fields as log_fields
from ..loopguard import LoopGuard
from ..messages import (
    AgentUserId,
    ChannelCreated,
    ChannelDeleted,
    InboundEvent,
    MemberJoined,
    MemberLeft,
    OutboundRequest,
    Post,
    PostCreated,
    PostDeleted,
    PostEdited,
    RoomId,
    SendEphemeral,
    SendReply,
)
from ..outbox import AnswerClock
from ..ports import InvokerPort, MapperPort, Outcome, ReplyWaiters
from ..posts import PlainPost
from ..ratelimit import RequestClass
from ..repository import Repositories, sqlite_repositories
from ..store import Store
from ..trigger import MARKER, BotIdentity, decide, mention_pattern, reply_root
from ..webhook_replies import WebhookReplies
from .answer_commit import commit_answer

logger = logging.getLogger(__name__)

PRIVATE_NOTE = ("결과는 요청하신 분께만 보이도록 DM으로 보냈습니다. / "
                "Sent to you by DM: only you may see these results.")


@attrs.define
class HandlerStats:
    posts: Counter[str] = attrs.Factory(Counter)  # by outcome: answered, stored, ignored_own ...
    duplicates: int = 0
    replies_queued: int = 0
    replies_in_webhook_response: int = 0
    ai_responses: int = 0
    memories_saved: int = 0
    edits: int = 0
    deletes: int = 0
    reads_over_budget: int = 0  # questions read again apart (``AnswerOverBudget``)


@attrs.define
class Handler:
    cfg: MattermostConfig
    store: Store
    mapper: MapperPort
    invoker: InvokerPort
    replies: trio.MemorySendChannel[OutboundRequest]
    bot: BotIdentity
    stats: HandlerStats = attrs.Factory(HandlerStats)
    # who may wait for a webhook post's reply (the HTTP surface's, given by ``app``)
    webhook_replies: ReplyWaiters = attrs.Factory(WebhookReplies)
    guard: LoopGuard | None = None  # built from cfg when not given
    # the ChatService when it stores through this store (plain posts then go in lane batches)
    shared_chat: SharedStorage | None = None
    repos: Repositories = attrs.Factory(sqlite_repositories)
    _pattern: re.Pattern[str] | None = None

    def __attrs_post_init__(self) -> None:
        self._pattern = mention_pattern(self.bot.names)
        if self.guard is None:
            self.guard = LoopGuard.create(self.cfg.answer_bots, self.cfg.max_answers_per_min)

    def is_question(self, event: InboundEvent) -> bool:
        """Whether ``event`` is a post the trigger rules answer (a mention, a command, a DM
        when the event names its channel type): its lane's request class is then raised, so
        its reads go ahead of background ones."""
        if not isinstance(event, PostCreated):
            return False
        return decide(event.post, channel_type=event.channel_type, bot=self.bot,
                      pattern=self._pattern).respond

    async def __call__(self, event: InboundEvent, *,
                       request_class: RequestClass | None = None) -> None:
        """Handle ``event``; REST reads in ``request_class`` (its lane's) of the budget."""
        match event:
            case PostCreated():
                await self._post_created(event, request_class)
            case PostEdited(post=post):
                if await self.store.read(self.repos.posts.is_post_seen, post.id):
                    self.stats.edits += 1
                    await self.invoker.edit(post)
            case PostDeleted(post=post):
                if await self.store.read(self.repos.posts.is_post_seen, post.id):
                    self.stats.deletes += 1
                    await self.invoker.delete(post)
            case MemberJoined(channel_id=cid, user_id=uid):
                await self.mapper.member_joined(cid, uid)
            case MemberLeft(channel_id=cid, user_id=uid):
                await self.mapper.member_left(cid, uid)
            case ChannelCreated() | ChannelDeleted():
                pass  # auto-join watches channel lists itself; deleted rooms keep their history
            case _:
                raise AssertionError(f"unhandled event {event!r}")

    async def store_posts(self, events: Sequence[PostCreated], *,
                          request_class: RequestClass | None = None) -> int:
        """Handle the leading plain posts of ``events`` (a lane's queue, in order) in ONE
        request to the storage actor: seen-check, the ChatService's message rows, the seen
        marks and the cursor commit together. Returns how many leading events were handled;
        the caller handles the rest one at a time (a question, a webhook post, or all of them
        when the ChatService does not share the store).

        Raises:
            StoreError, ChatServiceError: nothing of the batch was committed.
        """
        chat = self.shared_chat
        if chat is None or not chat.shares_store():
            return 0
        items: list[PlainPost] = []
        for event in events:
            item = await self._plain(event, request_class)
            if item is None:
                break
            items.append(item)
        if not items:
            return 0
        # only the bot's own posts (its replies coming back): nobody waits for the record, so
        # it may wait a few ms to commit with the sender's "sent" mark of the same post
        run = self.store.run_lazy if all(i.status == "ignored_own" for i in items) \
            else self.store.run
        seen, stored = await run(self.repos.posts.store_plain_posts, items, chat)
        chat.messages_stored(stored)
        counted: set[str] = set()
        for item in items:
            if item.post.id in seen or item.post.id in counted:
                self.stats.duplicates += 1
            else:
                counted.add(item.post.id)
                self.stats.posts[item.status] += 1
        return len(items)

    async def _plain(self, event: PostCreated,
                     request_class: RequestClass | None) -> PlainPost | None:
        """``event`` as a plain post of a batch, or None when it needs the one-at-a-time path
        (a question or command, a webhook post, a ChatService answer)."""
        post = event.post
        if event.source == "webhook":
            return None
        early = decide(post, channel_type=event.channel_type, bot=self.bot,
                       pattern=self._pattern)
        if early.respond:
            return None
        if not early.store:
            return PlainPost(post, early.reason, event.source, None)
        info = await self.mapper.channel(post.channel_id, request_class=request_class)
        if not info.sync_enabled:
            return PlainPost(post, "sync_off", event.source, None)
        if not event.channel_type and decide(post, channel_type=info.type, bot=self.bot,
                                             pattern=self._pattern).respond:
            return None
        user = await self.mapper.user(post.user_id, request_class=request_class)
        return PlainPost(post, "stored", event.source, self._message(post, info.room_id, user))

    async def _post_created(self, event: PostCreated,
                            request_class: RequestClass | None) -> None:
        post = event.post
        started = trio.current_time()
        early = decide(post, channel_type=event.channel_type, bot=self.bot,
                       pattern=self._pattern)
        # a question for an in-process ChatService: the seen check joins its read (below);
        # another bot's post is checked first (the loop guard counts what it refuses)
        in_commit = (early.respond and event.source != "webhook" and self._answers_in_commit()
                     and not LoopGuard.is_automated(post))
        if not in_commit and await self._duplicate(post, event.source):
            return
        if not early.store:  # own or system posts: no mapping, no storage
            await self._finish(post, early.reason, event.source, ())
            return
        info = await self.mapper.channel(post.channel_id, request_class=request_class)
        if not info.sync_enabled:
            await self._finish(post, "sync_off", event.source, ())
            return
        decision = early if event.channel_type else decide(
            post, channel_type=info.type, bot=self.bot, pattern=self._pattern)
        user = await self.mapper.user(post.user_id, request_class=request_class)
        guarded = await self._guard(post, decision.respond)
        if guarded:
            decision = attrs.evolve(decision, respond=False, reason=guarded)
        prepared: PreparedAnswer | Outcome | None = None
        read_first = False  # the read inside the commit ran past its budget: read apart
        chat_s = 0.0  # the ChatService's own time, which the runtime's added latency leaves out
        while in_commit and decision.respond:
            asked_at = trio.current_time()
            prepared = await self.invoker.prepare(
                post, self._message(post, info.room_id, user), prompt=decision.prompt,
                seen=lambda conn: self.repos.posts.is_post_seen(conn, post.id),
                in_commit=not read_first)
            chat_s += trio.current_time() - asked_at
            if not isinstance(prepared, PreparedAnswer) or prepared.compose is None:
                break
            try:
                done = await self._answer_in_commit(post, event, prepared, started, chat_s)
            except AnswerOverBudget:
                self.stats.reads_over_budget += 1
                read_first = True
                continue
            if not done:
                self._give_back(post, decision.respond)
            return
        if isinstance(prepared, PreparedAnswer):
            if not await self._answer_in_commit(post, event, prepared, started, chat_s):
                self._give_back(post, decision.respond)
            return
        if in_commit and await self._duplicate(post, event.source):
            self._give_back(post, decision.respond)
            return  # a command, a guarded post or a failed answer: the one-by-one path
        asked_at = trio.current_time()
        outcome = prepared if isinstance(prepared, Outcome) else await self.invoker.send(
            post, room=info.room_id, user=user, respond=decision.respond,
            prompt=decision.prompt, permalink=f"{self.cfg.url.rstrip('/')}/_redirect/pl/{post.id}")
        chat_s += trio.current_time() - asked_at
        if outcome.failed and outcome.result is None and not await self.invoker.store_only(
                post, room=info.room_id, user=user):
            # not stored: not done. The dispatcher retries, then parks it in the retry queue;
            # the question gets its (late) answer when the ChatService is back.
            raise ChatServiceError(f"the ChatService could not store post {post.id} "
                                   f"({outcome.error})")
        replies: tuple[SendReply, ...] = ()
        channel_type = event.channel_type or info.type
        private = (outcome.result is not None and outcome.result.ephemeral
                   and channel_type != "D")
        if decision.respond and outcome.answer and private:
            # only the asker may read it: an ephemeral post (or a DM), never the thread
            await self._finish(post, "answered", event.source, ())
            await self.replies.send(SendEphemeral(
                channel_id=post.channel_id, user_id=post.user_id,
                message=f"{MARKER} {outcome.answer}", reply_key=f"{post.id}:reply",
                note=f"{MARKER} {PRIVATE_NOTE}", root_id=reply_root(post, self.cfg.reply_mode),
                trigger_post_id=post.id))
            self.stats.ai_responses += 1
            return
        if decision.respond and outcome.answer:
            replies = (SendReply(
                channel_id=post.channel_id, message=f"{MARKER} {outcome.answer}",
                reply_key=f"{post.id}:reply", root_id=reply_root(post, self.cfg.reply_mode),
                trigger_post_id=post.id),)
        status = "answered" if replies else ("chat_failed" if outcome.failed else
                                             guarded or "stored")
        if outcome.result is not None:
            self.stats.memories_saved += len(outcome.result.extracted_memories)
            self.stats.ai_responses += len(replies)
        # claimed before the commit (the waiter then waits for it), handed over only after
        in_response = bool(replies) and event.source == "webhook" and (
            self.webhook_replies.claim(post.id))
        await self._finish(post, status, event.source, replies, in_response,
                           clock=_clock(event, chat_s))
        logger.info("handler: post %s %s", post.id, status, extra=log_fields(
            channel_id=post.channel_id, user_id=post.user_id, post_id=post.id, action=status,
            latency_s=trio.current_time() - started, source=event.source,
            memory_count=len(outcome.result.extracted_memories) if outcome.result else None))

    def _answers_in_commit(self) -> bool:
        chat = self.shared_chat
        return (chat is not None and chat.shares_store()
                and isinstance(chat, AnswersInCommit))

    async def _duplicate(self, post: Post, source: str) -> bool:
        """Whether ``post`` was handled before (a read); a webhook's waiter is then released."""
        if not await self.store.lookup(self.repos.posts.is_post_seen, post.id):
            return False
        self.stats.duplicates += 1
        if source == "webhook":
            self.webhook_replies.no_reply(post.id)
        return True

    def _message(self, post: Post, room: RoomId, user: AgentUserId) -> NewMessage:
        return NewMessage(room=room, user=user, content=post.message, post_id=post.id,
                          root_id=post.root_id, created_at_ms=post.create_at or None,
                          permalink=f"{self.cfg.url.rstrip('/')}/_redirect/pl/{post.id}")

    def _give_back(self, post: Post, took: bool) -> None:
        """A duplicate found after the loop guard counted its answer: uncount it."""
        if took and self.guard is not None:
            self.guard.give_back(post.channel_id)

    async def _answer_in_commit(self, post: Post, event: PostCreated, prepared: PreparedAnswer,
                                started: float, chat_s: float) -> bool:
        """The question and its answer in ONE request (``answer_commit``), then the committed
        row goes to the sender. False: the post was a duplicate (nothing written).

        Raises:
            AnswerOverBudget: ``compose``'s read ran past its budget (nothing written).
        """
        done = await commit_answer(self.store, self.repos, self.cfg, post, event.source,
                                   prepared)
        if done is None:
            self.stats.duplicates += 1
            return False
        if self.shared_chat is not None:
            self.shared_chat.messages_stored(list(done.stored))
        self.stats.posts["answered"] += 1
        self.stats.ai_responses += 1
        clock = _clock(event, chat_s + done.compose_s)
        await self.replies.send(attrs.evolve(done.reply, committed=tuple(
            attrs.evolve(row, clock=clock) for row in done.rows)))
        self.stats.replies_queued += 1
        logger.info("handler: post %s answered", post.id, extra=log_fields(
            channel_id=post.channel_id, user_id=post.user_id, post_id=post.id,
            action="answered", latency_s=trio.current_time() - started, source=event.source))
        return True

    async def _guard(self, post: Post, respond: bool) -> str:
        """Why the loop guard refuses an answer ("" when it does not): see ``loopguard``."""
        guard = self.guard
        if not respond or guard is None:
            return ""
        if guard.is_automated(post):
            row = await self.store.read(self.repos.mapping.get_user, post.user_id) \
                if guard.answer_bots else None
            if not guard.bot_allowed(str(row["mchat_username"]) if row else None):
                return "bot_not_answered"
        if not guard.take(post.channel_id):
            return "answer_capped"
        return ""

    async def _finish(self, post: Post, status: str, source: str,
                      replies: tuple[SendReply, ...], in_response: bool = False, *,
                      clock: AnswerClock | None = None) -> None:
        try:
            rows = await self.store.run(
                self.repos.posts.finish_post, post, status=status, source=source,
                replies=replies, max_chars=self.cfg.max_post_chars,
                delivered_in_response=in_response,
                attempt_at=None if in_response else time.time())
        except BaseException:
            if source == "webhook":  # not committed: the waiter gets nothing, the retry posts
                self.webhook_replies.no_reply(post.id)
            raise
        self.stats.posts[status] += 1
        if source == "webhook" and not replies:
            self.webhook_replies.no_reply(post.id)
        if in_response:
            self.webhook_replies.deliver(post.id, replies[0].message)
            self.stats.replies_in_webhook_response += len(replies)
            return
        for reply in replies:
            committed = tuple(attrs.evolve(r, clock=clock) for r in rows
                              if r.reply_key == reply.reply_key
                              or r.reply_key.startswith(f"{reply.reply_key}#"))
            # committed rows flow forward; a reply whose rows are no longer pending (sent by an
            # earlier run) carries none and the sender's enqueue is then a no-op
            await self.replies.send(attrs.evolve(reply, committed=committed))
            self.stats.replies_queued += 1


def _clock(event: PostCreated, chat_s: float) -> AnswerClock | None:
    """A live question's clock for its reply's rows (None: not from the WebSocket)."""
    return None if event.received_at is None else AnswerClock(event.received_at, chat_s)
