"""A question and its answer in ONE storage request (the handler's in-commit path).

Unless the post was handled meanwhile: the question and its answer (the ChatService's unit of
work; with ``compose`` its read and wording too), the seen mark, the cursor and the reply's
outbox row with its first attempt recorded. The committed rows then flow forward to the sender
(the handler sends them). ``compose`` runs inside the request, in the storage actor's thread:
its time is the ChatService's, measured here so the runtime's added latency leaves it out.
"""

from __future__ import annotations

import time
from typing import Any

import attrs

from ..chat.protocol import PreparedAnswer, StoredMessage
from ..config import MattermostConfig
from ..errors import PostAlreadyHandled
from ..messages import Post, SendReply
from ..outbox import OutboxRow
from ..repository import Repositories
from ..store import Store
from ..trigger import MARKER, reply_root


@attrs.frozen
class Committed:
    """What the request committed: the reply, its outbox rows, the ChatService's messages,
    and the seconds ``compose`` (the ChatService) took inside it."""

    reply: SendReply
    rows: tuple[OutboxRow, ...]
    stored: tuple[StoredMessage, ...]
    compose_s: float


async def commit_answer(store: Store, repos: Repositories, cfg: MattermostConfig, post: Post,
                        source: str, prepared: PreparedAnswer) -> Committed | None:
    """Run the request; None when the post was handled before (nothing written).

    Raises:
        AnswerOverBudget: ``compose``'s read ran past its budget (nothing written).
    """
    if prepared.seen or (prepared.work is None and prepared.compose is None):
        return None

    def reply_of(answer: str) -> SendReply:
        return SendReply(channel_id=post.channel_id, message=f"{MARKER} {answer}",
                         reply_key=f"{post.id}:reply", root_id=reply_root(post, cfg.reply_mode),
                         trigger_post_id=post.id)

    stored: list[StoredMessage] = []
    composed: list[float] = []
    compose, work = prepared.compose, prepared.work

    def timed_compose(tx: Any) -> Any:
        assert compose is not None
        begun = time.perf_counter()
        try:
            return compose(tx)
        finally:
            composed.append(time.perf_counter() - begun)

    def chat_work(tx: object) -> None:
        assert work is not None
        stored.append(work(tx))

    try:
        if compose is not None:
            reply, question, rows = await store.run(
                repos.posts.answer_post, post, source=source, compose=timed_compose,
                reply_of=reply_of, max_chars=cfg.max_post_chars, attempt_at=time.time())
            stored.append(question)
        else:
            reply = reply_of(prepared.answer)
            rows = await store.run(
                repos.posts.finish_post, post, status="answered", source=source,
                replies=(reply,), max_chars=cfg.max_post_chars, chat_work=chat_work,
                unless_seen=True, attempt_at=time.time())
    except PostAlreadyHandled:
        return None
    return Committed(reply, tuple(rows), tuple(stored), sum(composed))
