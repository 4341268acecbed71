"""Issue #10, hole 6: the server restarts while the service's start-up sweep is still running.

The old service did not read its socket while it backfilled, so it saw the drop only when the
(slow) start-up sweep ended, and then read the channels it had no cursor for from "detection
time minus 5 s": a post made in such a channel after the sweep had read it, but more than 5 s
before the sweep ended, was never read again. This test makes that sequence happen on purpose
(in process: ``app.run`` against the fake server with a REST latency) and checks that every
post of the outage is stored and every question answered once.
"""

from __future__ import annotations

import pytest
import trio

from mchat_actors.testing import FakeMattermost
from mchat_actors.testing import state as fake_state
from mchat_actors.testing.seed import default_seed
from tests.fakes import FakeChat
from tests.scenarios.harness import replies_to, running_bot, wait_until

CHANNELS = 30
LATENCY_S = 0.25  # per REST answer: a sweep reading all ~35 channels takes ~9 s


def _seed() -> dict[str, object]:
    """The default seed plus the ``line-NN`` channels (seeded: no "joined" system post)."""
    seed = default_seed()
    seed["channels"] = [*seed["channels"],
                        *({"name": f"line-{i:02d}", "type": "O", "members": ["kim", "lee"]}
                          for i in range(CHANNELS))]
    return seed


async def _old_history(mm: FakeMattermost, monkeypatch, names: list[str]) -> None:
    """One post 10 minutes old in each channel: too old to be read at start, so the service
    has no cursor for any of these channels (it reads them with ``since``)."""
    real = fake_state.wall_ms
    monkeypatch.setattr(fake_state, "wall_ms", lambda: real() - 600_000)
    monkeypatch.setattr(mm.state, "_last_ms", 0)  # the fake's clock only moves forward
    for name in names:
        await mm.post_as("lee", name, f"{name} 지난 주 기록")
    monkeypatch.setattr(fake_state, "wall_ms", real)


def _posts_read(mm: FakeMattermost, channel_ids: set[str]) -> set[str]:
    """Those of ``channel_ids`` whose posts the bot has read. The fake logs a request once
    its answer is built (latency is added after), so a post made now is not in that answer."""
    seen = set()
    for rec in mm.request_log:
        if rec.user_id == mm.bot.id and rec.method == "GET" and rec.path.endswith("/posts"):
            cid = rec.path.split("/")[-2]
            if cid in channel_ids:
                seen.add(cid)
    return seen


@pytest.mark.slow
async def test_a_restart_while_the_slow_start_up_sweep_runs_loses_no_post(tmp_path, monkeypatch):
    """Every REST answer takes 0.25 s, so a start-up backfill reading all 35 channels lasts
    ~9 s. Right after the first hello the server restarts: socket dropped without a close
    frame, resume state forgotten, upgrades refused 4 s. Each of the 30 ``line`` channels
    (no cursor) then gets one post (every third a question), made just after the bot has read
    that channel, or, once a sweep has ended without reading it, one every 0.1 s. Each post
    must be stored and each question answered once.

    On the code before #10's fix (ca5a05a) the start-up sweep reads every channel while the
    socket lies dead, sees the drop at its end and reads the channels again only from
    "then minus 5 s": the posts of the sweep's first ~4 s (~15 of 30) are never stored."""
    chat = FakeChat()
    async with FakeMattermost(seed=_seed()) as mm:
        lines = {mm.channel(f"line-{i:02d}").id: f"line-{i:02d}" for i in range(CHANNELS)}
        await _old_history(mm, monkeypatch, sorted(lines.values()))
        mm.set_latency(LATENCY_S)
        async with running_bot(mm, str(tmp_path / "b.db"), chat=chat) as rt:
            await wait_until(lambda: rt.reconnect_stats.connection.new_connections >= 1)
            mm.refuse_websockets(4.0)
            await mm.drop_websockets(abrupt=True)
            mm.forget_resume_state()
            sweeps_at_drop = rt.sweeper.stats.sweeps

            posted: dict[str, str] = {}  # post id -> message
            questions: list[str] = []
            with trio.fail_after(30):
                while lines:
                    due = _posts_read(mm, set(lines))
                    if not due and rt.sweeper.stats.sweeps > sweeps_at_drop:
                        due = {min(lines)}  # swept without reading it (it had not moved)
                    for cid in sorted(due):
                        name, i = lines.pop(cid), len(posted)
                        text = (f"@ai {name} 라인 불량률 알려줘" if i % 3 == 0
                                else f"{name} 재시작 중 기록 {i}")
                        post = await mm.post_as("kim", name, text)
                        posted[str(post["id"])] = text
                        if i % 3 == 0:
                            questions.append(str(post["id"]))
                    await trio.sleep(0.1 if due else 0.01)
            mm.set_latency(0)

            with trio.move_on_after(15):
                await wait_until(lambda: set(posted) <= set(chat.messages), timeout=15)
            missing = sorted(posted[p] for p in set(posted) - set(chat.messages))
            assert not missing, f"{len(missing)} of {len(posted)} posts never stored: {missing}"
            await wait_until(lambda: all(replies_to(mm, q) for q in questions), timeout=10)
            await trio.sleep(0.5)
            for pid, text in posted.items():
                assert text.removeprefix("@ai ") in chat.messages[pid].content
            for q in questions:
                assert len(replies_to(mm, q)) == 1, q
