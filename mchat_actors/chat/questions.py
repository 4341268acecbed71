"""How the embedded ChatService answers a question (``EmbeddedChatService`` builds on it).

``answer_question``: the memories a reply may use, read in ONE snapshot on the service's read
connection, ranked and (without an LLM) worded in the same worker-thread hop.

``prepare_answer`` (``protocol.SharedStorage``): the answer to a question the runtime has not
stored yet, and the unit of work that stores it. The runtime runs that unit inside its own
``posts.finish_post`` request, so the question, its answer row, the post's seen mark, the cursor
and the reply's outbox row commit together: one read round trip and one write for an answered
question. Nothing is written before that commit: a crash before it leaves nothing behind (the
backfill brings the post back and it is answered then); a crash after it leaves the reply in the
outbox. A post stored earlier by ``send_message`` keeps the answer stored for it then.

In the commit (``in_commit``, SQLite shared store, no LLM): the read, the ranking and the
wording need nothing asynchronous (the question's embedding, when there are embeddings, is
computed before), so they run INSIDE that request too (``compose``): the whole
question is one hop into the storage actor's thread. The read then holds the storage actor, so
it runs under a time budget (``COMMIT_READ_BUDGET_S``, 50 ms, an SQLite progress handler): past it
the read is interrupted, the unit raises ``AnswerOverBudget`` with nothing written, and the
caller asks again with ``in_commit=False`` (read on the service's connection, then commit).
The service keeps a running mean of its question reads' time (``ReadCost``, both paths): while
it is over half the budget (a large memory store, a loaded machine) questions read apart at
once, so a slow search neither holds the writes nor wastes its budget twice. With an LLM the
wording is a network call between the read and the commit: the read stays apart. The vector
search's ranking is NumPy work no progress handler interrupts, over the vectors the service's
cache holds (``chat.vector_cache``: about 1 ms per 10 000 memories); its time counts in
``ReadCost`` like the rest.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from ..errors import AnswerOverBudget
from . import repo, units
from .answer import builtin_answer, compose_answer, history_question, matching
from .commands import parse_command
from .embeddings import Embedder, dense_query
from .protocol import LLM, MemoryRecord, NewMessage, PreparedAnswer, StoredMessage
from .rewrite import interleave, other_language

if TYPE_CHECKING:
    from .analysis import Analyzer

QUESTION_MEMORIES = 8
EMPTY_PROMPT_REPLY = ("무엇을 도와드릴까요? `/help`로 명령 목록을 볼 수 있습니다. / "
                      "How can I help? `/help` lists the commands.")

Seen = Callable[[Any], bool]
# How long a question's read may hold the storage actor (every write queues behind it);
# while the reads' mean is over half of it, they run apart (``ReadCost``)
COMMIT_READ_BUDGET_S = 0.050
_PROGRESS_STEPS = 4_000  # SQLite VM steps between two looks at the clock


@attrs.define
class ReadCost:
    """The recent question reads' time, seconds (an exponentially weighted mean; the service's
    own, updated from the thread that read)."""

    mean_s: float = 0.0
    weight: float = 0.2

    def note(self, seconds: float) -> None:
        self.mean_s = seconds if self.mean_s == 0 else (
            (1 - self.weight) * self.mean_s + self.weight * seconds)

    def over(self, budget_s: float) -> None:
        """A read was interrupted at ``budget_s``: it costs at least that."""
        self.mean_s = max(self.mean_s, budget_s)


class _Service(Protocol):
    """What ``Answering`` needs of the service it is mixed into."""

    llm: LLM | None
    read_cost: ReadCost
    embeddings: Embedder | None
    timezone: str
    mask_llm: bool
    analyzer: Analyzer

    def now_ms(self) -> int: ...

    def read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Awaitable[Any]: ...

    def shared_work(self, fn: Callable[..., Any], *args: Any) -> Callable[[Any], Any]: ...

    def shares_store(self) -> bool: ...

    @property
    def queries(self) -> Any: ...

    @property
    def database(self) -> Any: ...


class Answering:
    """Questions answered from the memories their reply's audience may see."""

    async def answer_question(self: _Service, room: str, user: str, question: str) -> str:
        return str(await _answer(self, room, user, question, None))

    async def prepare_answer(self: _Service, message: NewMessage, *, prompt: str,
                             seen: Seen | None = None,
                             in_commit: bool = True) -> PreparedAnswer | None:
        """The answer to the question ``message`` asks (``prompt``: the text addressed to the
        bot) and the unit of work storing both, for the caller's transaction; None for a
        command (it writes as it runs: ``send_message``). ``seen(conn)``: whether the runtime
        handled the post already, checked in the same read snapshot (then no answer is made).
        ``in_commit``: without an LLM on the shared SQLite store (and while its
        reads are quick: ``ReadCost``), no read here: the answer's unit
        (``PreparedAnswer.compose``) reads and words it inside the caller's request (the
        caller checks ``seen`` there itself).

        Raises:
            ChatServiceError: the database or the LLM failed (nothing was stored).
        """
        if parse_command(prompt) is not None or not self.shares_store():
            return None  # a command, or storage the runtime's transaction cannot join
        answer_key = f"{message.post_id}:answer"
        created = message.created_at_ms if message.created_at_ms is not None else self.now_ms()

        q = self.queries  # the handle's queries: chat.repo, or PgQueries on PostgreSQL
        # how long its read may run inside the runtime's request (None: it reads apart,
        # PostgreSQL or a store without a storage actor)
        budget: float | None = getattr(self.database, "commit_read_budget_s", None)
        # the question's vector (embeddings) is computed before the request; its search reads
        # the visible ids in SQL and ranks the vectors the service's cache holds
        if (in_commit and budget is not None and self.llm is None
                and self.read_cost.mean_s <= budget / 2):
            return await _composed(self, message, prompt, answer_key, created, budget)

        def earlier(conn: Any) -> bool | str | None:
            if seen is not None and seen(conn):
                return True
            row = q.message_by_post(conn, answer_key)
            return None if row is None else str(row["content"])

        if prompt:
            got = await _answer(self, message.room, message.user, prompt, earlier)
        else:
            got = await self.read(earlier)
            got = EMPTY_PROMPT_REPLY if got is None else got
        if got is True:
            return PreparedAnswer(seen=True, answer="", work=None)
        answer = str(got)
        answered_at = self.now_ms()

        def store(conn: Any) -> StoredMessage:
            stored = units.store_user_message(conn, message.room, message.user, message.content,
                                              message.post_id, message.root_id, created,
                                              message.permalink, q=q)
            q.insert_message(conn, room=message.room, user=None, content=answer,
                                role="assistant", post_id=answer_key,
                                root_id=message.root_id or message.post_id,
                                created_at_ms=answered_at)
            return stored

        return PreparedAnswer(seen=False, answer=answer, work=self.shared_work(store))


async def _composed(svc: _Service, message: NewMessage, prompt: str, answer_key: str,
                    created: int, budget_s: float) -> PreparedAnswer:
    """The in-commit answer (``PreparedAnswer.compose``): what needs no database (the query's
    embedding, the clock) now; the read, ranking, wording and the two rows in the unit."""
    q = svc.queries
    now = svc.now_ms()
    past = history_question(prompt) if prompt else None
    text = past[0] if past else prompt
    dense = await dense_query(svc.embeddings, text) if prompt else None
    tz, analyzer = svc.timezone, svc.analyzer
    if prompt:
        # the question's analysis needs no database either: done now, in a worker thread, so
        # the unit (run inside the storage actor's request, every write queued behind it)
        # finds it in the analyzer's cache instead of running Kiwi there
        await trio.to_thread.run_sync(_analyse, analyzer, text, prompt)

    def compose(conn: sqlite3.Connection) -> tuple[str, StoredMessage]:
        row = q.message_by_post(conn, answer_key)
        if row is not None:  # stored by ``send_message`` before: that answer is the one
            answer = str(row["content"])
        elif not prompt:
            answer = EMPTY_PROMPT_REPLY
        else:
            try:
                with _bounded(conn, budget_s):
                    got = _answer_context(conn, message.room, message.user, prompt, text, now,
                                          past is not None, dense, None, True, tz, analyzer,
                                          q=q, cost=svc.read_cost)
            except AnswerOverBudget:
                svc.read_cost.over(budget_s)
                raise
            assert isinstance(got, tuple) and got[4] is not None  # built-in wording
            answer = got[4]
        stored = units.store_user_message(conn, message.room, message.user, message.content,
                                          message.post_id, message.root_id, created,
                                          message.permalink, q=q)
        q.insert_message(conn, room=message.room, user=None, content=answer, role="assistant",
                         post_id=answer_key, root_id=message.root_id or message.post_id,
                         created_at_ms=svc.now_ms())
        return answer, stored

    return PreparedAnswer(seen=False, answer="", work=None,
                          compose=svc.shared_work(compose))


def _analyse(analyzer: Analyzer, *texts: str) -> None:
    for text in dict.fromkeys(texts):
        analyzer.analyze_query(text)


@contextmanager
def _bounded(conn: sqlite3.Connection, budget_s: float) -> Iterator[None]:
    """Interrupt the SQL run inside past ``budget_s`` (``AnswerOverBudget``). A read that is
    interrupted leaves the transaction open: the caller's savepoint rolls back the unit."""
    deadline = time.monotonic() + budget_s
    conn.set_progress_handler(lambda: time.monotonic() > deadline, _PROGRESS_STEPS)
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc) and time.monotonic() > deadline:
            raise AnswerOverBudget(f"the question's read ran past {budget_s * 1000:.0f} ms"
                                   ) from exc
        raise
    finally:
        conn.set_progress_handler(None, 0)


async def _answer(svc: _Service, room: str, user: str, question: str,
                  first: Callable[[sqlite3.Connection], bool | str | None] | None
                  ) -> bool | str:
    """The answer to ``question``; ``first(conn)``, when given, runs first in the same read
    snapshot, and what it returns (not None) is returned instead (seen, or an earlier answer)."""
    now = svc.now_ms()
    past = history_question(question)
    text = past[0] if past else question
    dense = await dense_query(svc.embeddings, text)
    other = None
    if svc.llm is not None:  # also searched in the other language (chat.rewrite)
        other = await other_language(svc.llm, text, mask=svc.mask_llm)
    builtin = svc.llm is None
    if other is None:  # one snapshot, one round trip (ranked and worded in it, without an LLM)
        got = await svc.read(_answer_context, room, user, question, text, now, past is not None,
                             dense, first, builtin, svc.timezone, svc.analyzer,
                             cost=svc.read_cost)
        if not isinstance(got, tuple):
            return bool(got) if isinstance(got, bool) else str(got)
        found, hidden, history, others, worded = got
        if worded is not None:
            return str(worded)
    else:
        found, hidden = await svc.read(_searched, room, user, text, now, dense, first)
        if not isinstance(found, list):
            return bool(found) if isinstance(found, bool) else str(found)
        more, more_hidden = await svc.read(
            units.search_for_audience, room, user, other, now, QUESTION_MEMORIES,
            False, await dense_query(svc.embeddings, other))
        found = interleave(found, more, QUESTION_MEMORIES)
        hidden = interleave(hidden, more_hidden, QUESTION_MEMORIES)
        found, history = await svc.read(units.with_versions, found, past is not None)
        others = matching(text, hidden, svc.analyzer)
    return await compose_answer(question, found, llm=svc.llm, tz=svc.timezone,
                                hidden=len(others), history=history, now_ms=now,
                                mask=svc.mask_llm, analyzer=svc.analyzer, ranked=other is None)


def _searched(conn: Any, room: str, user: str, text: str, now: int,
              dense: tuple[list[float], str] | None,
              first: Callable[[Any], bool | str | None] | None, *, q: Any = repo
              ) -> tuple[Any, Any]:
    pre = first(conn) if first is not None else None
    if pre is not None:
        return pre, None
    return units.search_for_audience(conn, room, user, text, now, QUESTION_MEMORIES, False,
                                     dense, q=q)


def _answer_context(conn: Any, room: str, user: str, question: str, text: str,
                    now: int, history: bool, dense: tuple[list[float], str] | None,
                    first: Callable[[Any], bool | str | None] | None,
                    builtin: bool, tz: str, analyzer: Analyzer, *, q: Any = repo,
                    cost: ReadCost | None = None
                    ) -> bool | str | tuple[list[MemoryRecord], list[MemoryRecord],
                                            dict[str, list[MemoryRecord]], list[MemoryRecord],
                                            str | None]:
    """What a question's answer is built from, read in one snapshot (one round trip): the
    memories found, those outside the audience, versions, the hidden ones that match; with
    ``builtin`` the answer's text too (the ranking and wording run in this thread). ``cost``:
    told how long it took (``ReadCost``)."""
    pre = first(conn) if first is not None else None
    if pre is not None:
        return pre
    start = time.monotonic()
    found, hidden = units.search_for_audience(conn, room, user, text, now, QUESTION_MEMORIES,
                                              False, dense, q=q)
    found, chains = units.with_versions(conn, found, history, q=q)
    others = matching(text, hidden, analyzer)
    worded = builtin_answer(question, found, tz=tz, hidden=len(others), history=chains,
                            now_ms=now, analyzer=analyzer, ranked=True) if builtin else None
    if cost is not None:
        cost.note(time.monotonic() - start)
    return found, hidden, chains, others, worded


__all__ = ["COMMIT_READ_BUDGET_S", "EMPTY_PROMPT_REPLY", "QUESTION_MEMORIES", "Answering",
           "ReadCost"]
