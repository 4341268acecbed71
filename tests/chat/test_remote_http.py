"""The remote backends' HTTP (``chat.agent_http``) against the twin: its real 60/min sliding
limit with Retry-After, scripted 5xx, a wrong key, an unreachable server; secrets never shown."""

from __future__ import annotations

import functools
import logging
import socket
import traceback

import pytest
import trio
import trio.testing

from mchat_actors.chat.remote import open_remote_chat_service
from mchat_actors.errors import ChatServiceError, ChatServiceRejected
from mchat_actors.testing.fake_agent_api import FakeAgentAPI, Fault

from .remote_env import KEY, ThreadFreeLocal, open_env, remote_cfg


async def test_respects_the_rate_limit_in_every_window(
    db_path: str, autojump_clock: trio.testing.MockClock
) -> None:
    """A burst of 75 questions at 30/min never puts more than 30 in any 60 s window."""
    async for env in open_env(db_path, rate_per_min=30, cfg_rate=30.0, threads=False):
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for i in range(75):
                nursery.start_soon(functools.partial(env.say, f"질문 {i}", post_id=f"b{i}"))
        elapsed = trio.current_time() - start
    times = env.fake.accepted_times()
    assert len(times) == 75
    assert all(r.status == 200 for r in env.fake.requests)  # never a 429
    assert max(sum(1 for t in times if t0 <= t < t0 + 60.0) for t0 in times) <= 30
    assert 120.0 <= elapsed < 150.0


async def test_the_servers_own_429_is_waited_out(
    db_path: str, autojump_clock: trio.testing.MockClock
) -> None:
    """Configured at 120/min against the server's 60/min: the server's 429s (Retry-After from
    its sliding window) are waited out and every question is answered."""
    async for env in open_env(db_path, rate_per_min=60, cfg_rate=120.0, threads=False):
        env.fake.seed_agent_memory("X부품 불량률 12%", metadata={
            "mchat_scope": "room", "mchat_room_id": env.room.id})
        start = trio.current_time()
        for i in range(70):
            result = await env.say(f"X부품 불량률 {i}?", post_id=f"s{i}")
            assert "12%" in (result.assistant_message or "")
        elapsed = trio.current_time() - start
    statuses = [r.status for r in env.fake.requests]
    assert statuses.count(200) == 70 and statuses.count(429) >= 1
    assert elapsed >= 60.0


async def test_a_scripted_429_blocks_for_retry_after(
    db_path: str, autojump_clock: trio.testing.MockClock
) -> None:
    async for env in open_env(db_path, threads=False):
        env.fake.script(Fault(status=429, retry_after_s=20))
        start = trio.current_time()
        await env.say("X부품?")
        assert 20.0 <= trio.current_time() - start < 21.0
    assert [r.status for r in env.fake.requests] == [429, 200]


async def test_retries_5xx_then_gives_up(
    db_path: str, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async for env in open_env(db_path, threads=False):
        env.fake.script(Fault(status=500), Fault(status=502))
        start = trio.current_time()
        await env.say("첫 번째?")
        assert 1.5 <= trio.current_time() - start < 2.0
        env.fake.script(*[Fault(status=503)] * 4)
        with pytest.raises(ChatServiceError) as info:
            await env.say("두 번째?")
        rendered = "".join(traceback.format_exception(info.value))
        assert KEY not in rendered + repr(env.svc) + caplog.text
    assert [r.status for r in env.fake.requests] == [500, 502, 200, 503, 503, 503, 503]


async def test_wrong_key_is_rejected_at_once_and_never_shown(
    db_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The real server answers a wrong key 403 (not 401); no retry; the key is in no error,
    log or repr."""
    caplog.set_level(logging.DEBUG)
    local = ThreadFreeLocal()
    room = await local.create_room(name="r", kind="channel")
    user = await local.create_user(name="u", email=None)
    async with FakeAgentAPI(api_key="the-right-key") as fake:
        async with open_remote_chat_service(remote_cfg(fake.url), local=local, llm=None) as svc:
            with pytest.raises(ChatServiceRejected) as info:
                await svc.send_message(room.id, user.id, "@ai hi", respond=True, prompt="hi")
            rendered = "".join(traceback.format_exception(info.value))
            for secret in (KEY, "the-right-key"):
                assert secret not in rendered + repr(svc) + caplog.text
    assert [r.status for r in fake.requests] == [403]


async def test_unreachable_backend_is_an_error_after_retries(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    local = ThreadFreeLocal()
    room = await local.create_room(name="r", kind="channel")
    user = await local.create_user(name="u", email=None)
    async with open_remote_chat_service(remote_cfg(f"http://127.0.0.1:{port}"), local=local,
                                        llm=None) as svc:
        with pytest.raises(ChatServiceError) as info:
            await svc.send_message(room.id, user.id, "@ai hi", respond=True, prompt="hi")
    assert "ConnectError" in str(info.value)
    assert KEY not in "".join(traceback.format_exception(info.value)) + caplog.text


@pytest.mark.parametrize("connections", [8, 12])
async def test_answers_in_flight_are_not_capped_below_the_pool_size(
    db_path: str, autojump_clock: trio.testing.MockClock, connections: int
) -> None:
    """12 questions at once against an agent that takes 1 s per search: with a pool of 12
    (the runtime passes MCHAT_MAX_CONCURRENT_CHATS) all 12 searches reach the agent at once;
    with the old fixed 8, four of them waited a whole second for a connection."""
    fake = FakeAgentAPI(api_key=KEY, rate_per_min=10_000)
    for _ in range(12):
        fake.script(Fault(status=404, delay_s=1.0, path="/memories/search"))
    async with fake:
        cfg = remote_cfg(fake.url, backend_rate_per_min=10_000.0)
        async with open_remote_chat_service(cfg, local=ThreadFreeLocal(), llm=None,
                                            max_connections=connections) as svc:
            async def ask(i: int) -> None:
                with pytest.raises(ChatServiceRejected):
                    await svc.send_message("r1", "u1", f"@ai 질문 {i}", post_id=f"p{i}",
                                           respond=True, prompt=f"질문 {i}")

            async with trio.open_nursery() as nursery:
                for i in range(12):
                    nursery.start_soon(ask, i)
    arrivals = sorted(r.at for r in fake.requests if r.path.endswith("/memories/search"))
    assert len(arrivals) == 12
    late = sum(1 for t in arrivals if t - arrivals[0] >= 0.9)
    assert late == (0 if connections >= 12 else 12 - connections)
