"""One run of one system: fresh fake, fixed-delay ChatService and bot processes, load, teardown.

    async with open_run("mchat-actors", workdir, label="answer 200ms", delay_s=0.2,
                        n_channels=10) as run:
        await run.warm_up()
        await run.users.post("c0", "@ai 질문", question=True)
        await run.drain(expected=...)
        result = await outcome(run.fake, since_ms=run.load_from_ms)

Every process the run starts is stopped when the block exits, whatever happened inside it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import attrs
import trio

from .load import Users, Watcher, progress
from .procs import (
    BenchError,
    Fake,
    Proc,
    bot_env,
    start_agent,
    start_bot,
    start_fake,
    stop_fake,
)

READY_TIMEOUT_S = 90.0


@attrs.define
class Run:
    system: str
    label: str
    workdir: Path
    fake: Fake
    agent: Proc
    agent_url: str
    users: Users
    watcher: Watcher
    env: dict[str, str]
    bot: Proc | None = None
    spawned_at: float = 0.0
    load_from_ms: int = 0
    restarts: int = 0
    base_replies: int = 0  # replies seen when the warm-up was over
    base_questions: int = 0  # questions asked until then
    base_seen: int = 0  # replies the watcher had recorded by then
    warm_up_ids: frozenset[str] = frozenset()  # the questions asked until then

    def start_bot(self) -> Proc:
        self.spawned_at = time.time()
        self.bot = start_bot(self.system, self.workdir, self.env,
                             tag=f"-{self.restarts}" if self.restarts else "")
        return self.bot

    async def restart_bot(self, *, kill: bool) -> None:
        """SIGKILL (``kill``) or SIGTERM the bot, then start the same command again."""
        assert self.bot is not None
        if kill:
            self.bot.kill()
        else:
            await self.bot.stop()
        self.restarts += 1
        self.start_bot()

    def channels(self) -> list[str]:
        return sorted(self.fake.channels, key=lambda n: int(n[1:]))

    async def wait_ready(self, *, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Ask in ``c0`` every 2 s until the bot answers; seconds from spawn to that answer.

        (A peer without backfill misses what was posted before its socket was up.)
        """
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            before = self.watcher.replies
            await self.users.post("c0", "@ai 준비됐어? ready", question=True)
            if await self.wait_replies(before + 1, timeout_s=2.0, quiet_s=2.0):
                return time.time() - self.spawned_at
            if self.bot is not None and not self.bot.alive():
                break
        raise BenchError(f"{self.system} did not answer within {timeout_s:g} s"
                         + (f":\n{self.bot.tail()}" if self.bot else ""))

    async def warm_up(self, channels: list[str] | None = None, *,
                      timeout_s: float = READY_TIMEOUT_S) -> float:
        """Ready, then one question per channel answered: the bot has met every channel.

        Returns the seconds from spawning the bot to the first answer.
        """
        ready_s = await self.wait_ready(timeout_s=timeout_s)
        names = channels if channels is not None else self.channels()
        round_ids: set[str] = set()
        for name in names:  # at half the budget: a peer without a limiter must not get 429s
            sent = await self.users.post(name, "@ai 준비됐어? warm-up", question=True)
            if sent is not None:
                round_ids.add(sent.post_id)
            await trio.sleep(0.2)
        # wait for the answers to THESE questions: a reply to a "ready" question still queued
        # in c0 must not count for them (the load then began behind c0's warm-up backlog)
        answered = await self._wait_answered(round_ids, timeout_s=timeout_s)
        if answered < len(names):
            raise BenchError(f"{self.system} answered {answered} of "
                             f"{len(names)} warm-up questions in {timeout_s:g} s"
                             + (f":\n{self.bot.tail()}" if self.bot else ""))
        await trio.sleep(0.5)  # let the last warm-up reply's request leave the log window
        self.load_from_ms = int(time.time() * 1000) + 1
        self.base_replies = self.watcher.replies
        self.base_questions = self.questions_sent()
        self.base_seen = len(self.watcher.reply_roots)
        self.warm_up_ids = frozenset(s.post_id for s in self.users.sent if s.question)
        return ready_s

    async def _wait_answered(self, ids: set[str], *, timeout_s: float) -> int:
        """Until every post of ``ids`` has a reply of the bot (or timeout); how many have."""
        deadline = time.time() + timeout_s
        while True:
            posts = await self.fake.posts()
            roots = {str(p.get("root_id") or "") for p in posts
                     if p.get("user_id") == self.fake.bot_id}
            if ids <= roots or time.time() >= deadline:
                return len(ids & roots)
            await trio.sleep(0.25)

    async def wait_replies(self, expected: int, *, timeout_s: float, quiet_s: float) -> bool:
        """Until the watcher has seen ``expected`` replies, none came for ``quiet_s``, or timeout.

        Every 3 s the count is taken from the fake's posts (the watcher may have been dropped).
        """
        deadline = time.time() + timeout_s
        last_count, last_change, last_check = -1, time.time(), time.time()
        while time.time() < deadline:
            if time.time() - last_check > 3:
                posts = await self.fake.posts()
                self.watcher.replies = max(self.watcher.replies, sum(
                    1 for p in posts if p.get("user_id") == self.fake.bot_id))
                last_check = time.time()
            counted = self.counted_replies()
            if counted >= expected:
                return True
            if counted != last_count:
                last_count, last_change = counted, time.time()
            elif time.time() - last_change > quiet_s:
                return False
            await trio.sleep(0.05)
        return False

    def counted_replies(self) -> int:
        """The replies seen, less those to warm-up questions that came after the warm-up was
        over (on a loaded machine a backfilling bot answers every "ready" question asked
        while it started, some late: counted, they would end the wait for the load's replies
        early, before its last answers)."""
        late = sum(1 for root in self.watcher.reply_roots[self.base_seen:]
                   if root in self.warm_up_ids)
        return self.watcher.replies - late

    def questions_sent(self) -> int:
        return sum(1 for s in self.users.sent if s.question)

    def expected(self) -> int:
        """Replies the watcher should have seen once every question since warm-up is answered."""
        return self.base_replies + self.questions_sent() - self.base_questions


@asynccontextmanager
async def open_run(system: str, workdir: Path, *, label: str, delay_s: float, n_channels: int,
                   n_users: int = 12, bot_extra_env: dict[str, str] | None = None,
                   start: bool = True, rate_per_s: float = 10.0) -> AsyncIterator[Run]:
    """Start the processes of one run (the bot too unless ``start=False``); stop them after.

    ``rate_per_s``: the fake's REST limit per token (the bot's own ``MCHAT_RATE_LIMIT`` is
    ``bot_extra_env``'s business).
    """
    run_dir = workdir / f"{label.replace(' ', '_')}-{system}"
    run_dir.mkdir(parents=True, exist_ok=True)
    started: dict[str, object] = {}

    async def agent_up() -> None:
        started["agent"] = await start_agent(run_dir, delay_s)

    async def fake_up() -> None:
        started["fake"] = await start_fake(run_dir, n_channels=n_channels, n_users=n_users,
                                           rate_per_s=rate_per_s,
                                           burst=max(10, int(rate_per_s)))

    try:
        async with trio.open_nursery() as nursery:  # both start at once
            nursery.start_soon(agent_up)
            nursery.start_soon(fake_up)
    except BaseException:
        for key in ("agent", "fake"):
            if key in started:
                obj = started[key]
                (obj[0] if isinstance(obj, tuple) else obj.proc).kill()  # type: ignore[union-attr]
        raise
    agent_proc, agent_url = started["agent"]  # type: ignore[misc]
    fake: Fake = started["fake"]  # type: ignore[assignment]
    agent: Proc | None = agent_proc
    users: Users | None = None
    run: Run | None = None
    try:
        env = bot_env(fake, agent_url, run_dir / "bot.db", bot_extra_env)
        users = Users.open(fake)
        watcher = Watcher(fake)
        run = Run(system=system, label=label, workdir=run_dir, fake=fake, agent=agent,
                  agent_url=agent_url, users=users, watcher=watcher, env=env)
        t0 = time.time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watcher.run)
            nursery.start_soon(partial(progress, f"{label} / {system}", t0, users, watcher))
            if start:
                run.start_bot()
            yield run
            nursery.cancel_scope.cancel()
    finally:
        # the figures are taken: no need for graceful exits (SIGKILL, also on errors)
        with trio.CancelScope(shield=True):
            if run is not None and run.bot is not None:
                run.bot.kill()
            if users is not None:
                await users.aclose()
            if agent is not None:
                agent.kill()
            await stop_fake(fake)
