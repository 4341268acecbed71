"""Issue #8's audience rules end to end: the whole service (``app.run``) between the fake
Mattermost and the AI Memory Agent twin (``CHAT_BACKEND=remote``), over real sockets, and the
team rule with two teams for both memory backends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from mchat_actors.testing import FakeMattermost
from mchat_actors.testing.fake_openai import FakeOpenAI
from mchat_actors.testing.seed import default_seed
from tests.scenarios.harness import running_bot, wait_until

from ..pg.conftest import pg_server, pg_url  # noqa: F401  (remote-postgresql: its server)
from .test_remote_e2e import ask, backend_env, twin

SECRET = "/remember 신제품 코드명은 블루버드, 출시일 3월 2일 (대외비)"


REMOTE = ["remote", pytest.param("remote-postgresql", marks=pytest.mark.pg)]


def remote_env(mode: str, fake: Any, request: pytest.FixtureRequest) -> dict[str, str]:
    """The remote backend, on SQLite or (``remote-postgresql``) on the test PostgreSQL."""
    env = backend_env("remote", fake)
    if mode == "remote-postgresql":
        env["MCHAT_DATABASE_URL"] = request.getfixturevalue("pg_url")
    return env


def bot_texts(mm: FakeMattermost, channel: str) -> list[str]:
    return [str(p["message"]) for p in mm.posts(channel) if p["user_id"] == mm.bot.id]


async def command(mm: FakeMattermost, user: str, channel: str, text: str) -> Mapping[str, Any]:
    """Post a command and wait for the bot's answer in its thread (an ephemeral reply the fake
    refuses goes to the asker by DM with a note here)."""
    post = await mm.post_as(user, channel, text)
    await wait_until(lambda: any(p.get("root_id") == post["id"] for p in mm.posts(channel)
                                 if p["user_id"] == mm.bot.id), timeout=15)
    return post


@pytest.mark.parametrize("mode", REMOTE)
async def test_a_private_channels_secret_stays_out_of_a_public_channel(
        tmp_path: Any, mode: str, request: pytest.FixtureRequest) -> None:
    """Issue #8, example 3, on the remote backend: kim remembers in the private ``defects``;
    a question, ``/search`` and ``/memory`` in the public ``town-square`` neither show the
    secret there nor send it to the LLM; a DM may use it (kim is in ``defects``)."""
    async with twin() as fake, FakeOpenAI(api_key="sk-llm") as openai, FakeMattermost() as mm, \
            running_bot(mm, str(tmp_path / "b.db"), LLM_BASE_URL=openai.url,
                        LLM_API_KEY="sk-llm", LLM_MODEL="m", **remote_env(mode, fake, request)):
        saved = await ask(mm, "kim", "@ai " + SECRET, channel="defects")
        assert "블루버드" in saved
        answer = await ask(mm, "kim", "@ai 신제품 코드명 뭐였지?", channel="town-square")
        assert "블루버드" not in answer and "DM" in answer
        assert openai.requests and not any("블루버드" in str(r.json) for r in openai.requests)
        await command(mm, "kim", "town-square", "@ai /search 코드명")
        await command(mm, "park", "town-square", "@ai /search 코드명")
        await command(mm, "kim", "town-square", "@ai /memory")
        assert not any("블루버드" in t for t in bot_texts(mm, "town-square"))
        park_dm = await mm.dm_channel("park", "mchat-bot")
        await wait_until(lambda: bot_texts(mm, park_dm.id), timeout=15)
        assert not any("블루버드" in t for t in bot_texts(mm, park_dm.id))
        # kim may see it alone: her /search came by DM, and a question in her DM answers it
        kim_dm = await mm.dm_channel("kim", "mchat-bot")
        await wait_until(lambda: any("블루버드" in t for t in bot_texts(mm, kim_dm.id)),
                         timeout=15)
        assert "블루버드" in await ask(mm, "kim", "@ai 신제품 코드명 뭐였지?", channel=kim_dm.id)
        assert len(fake.world.memories) == 1


def two_teams() -> dict[str, Any]:
    """The default seed (team ``qa``, its five users) plus team ``rnd``: kim and jung (who is
    not in qa), with two public channels."""
    seed = default_seed()
    qa = {**seed.pop("team"), "members": [u["username"] for u in seed["users"]]}
    seed["users"].append({"username": "jung", "email": "jung@example.com"})
    seed["teams"] = [qa, {"name": "rnd", "display_name": "연구소 R&D",
                          "members": ["kim", "jung"]}]
    seed["channels"] += [
        {"name": "rnd-lab", "display_name": "시제품 Lab", "type": "O", "team": "rnd",
         "members": ["kim", "jung"]},
        {"name": "rnd-talk", "display_name": "잡담", "type": "O", "team": "rnd",
         "members": ["kim", "jung"]},
    ]
    return seed


@pytest.mark.parametrize("mode", ["embedded", *REMOTE])
async def test_team_wide_is_the_same_team_only(tmp_path: Any, mode: str,
                                               request: pytest.FixtureRequest) -> None:
    """A public channel of team rnd is team-wide in rnd, not in team qa (before: everywhere)."""
    async with twin() as fake, FakeMattermost(seed=two_teams()) as mm, \
            running_bot(mm, str(tmp_path / "b.db"),
                        **(remote_env(mode, fake, request) if mode != "embedded" else {})):
        await ask(mm, "kim", "@ai /remember 시제품 B 도면 번호는 DW-7781", channel="rnd-lab")
        await ask(mm, "lee", "@ai /remember 라인 2 가동률 87%", channel="quality")
        same_team = await ask(mm, "jung", "@ai 시제품 B 도면 번호 뭐야?", channel="rnd-talk")
        assert "DW-7781" in same_team
        other_team = await ask(mm, "kim", "@ai 시제품 B 도면 번호 뭐야?", channel="town-square")
        assert "DW-7781" not in other_team
        # qa's public channel is team-wide in qa, not in rnd
        assert "87%" in await ask(mm, "lee", "@ai 라인 2 가동률은?", channel="town-square")
        assert "87%" not in await ask(mm, "jung", "@ai 라인 2 가동률은?", channel="rnd-talk")
        # jung's DM: jung's teams (rnd) only
        jung_dm = await mm.dm_channel("jung", "mchat-bot")
        assert "87%" not in await ask(mm, "jung", "@ai 라인 2 가동률은?", channel=jung_dm.id)
        assert "DW-7781" in await ask(mm, "jung", "@ai 시제품 B 도면 번호?", channel=jung_dm.id)
