"""Reliable reconnect (§2.2): replay, lossless resume, impossible resume, bad queries."""

from __future__ import annotations

import json

import pytest
from trio_websocket import ConnectionClosed

from mchat_actors.testing import FakeMattermost

from .wsutil import connect, hello, ping_barrier, recv


def _resume(connection_id: str, sequence_number: int | str) -> str:
    return f"?connection_id={connection_id}&sequence_number={sequence_number}"


def _message(frame: dict[str, object]) -> str:
    return json.loads(frame["data"]["post"])["message"]  # type: ignore[index]


async def _session(mm: FakeMattermost, posts: int) -> str:
    """Open a bot socket, read hello and ``posts`` posted events, drop it; the connection id."""
    async with connect(mm, mm.bot_token) as ws:
        connection_id = (await hello(ws))["data"]["connection_id"]
        for i in range(posts):
            await mm.post_as("kim", "town-square", f"before-{i}")
        assert [f["seq"] for f in await ping_barrier(ws, 1)] == list(range(1, posts + 1))
    return connection_id


async def test_resume_replays_missed_events_in_seq_order(mm):
    """sequence_number inside the dead queue: events from it on are re-sent, original seqs."""
    connection_id = await _session(mm, 3)
    await mm.post_as("kim", "town-square", "while-away")
    async with connect(mm, mm.bot_token, _resume(connection_id, 2)) as ws:
        frames = await ping_barrier(ws, 1)
    assert [f["seq"] for f in frames] == [2, 3, 4]
    assert [_message(f) for f in frames] == ["before-1", "before-2", "while-away"]
    assert all(f["event"] == "posted" for f in frames)  # no hello on a resumed connection


async def test_lossless_resume_sends_nothing_old_and_continues_numbering(mm):
    """sequence_number == last seq + 1: no replay, no hello, numbering continues."""
    connection_id = await _session(mm, 2)
    async with connect(mm, mm.bot_token, _resume(connection_id, 3)) as ws:
        assert await ping_barrier(ws, 1) == []
        await mm.post_as("kim", "town-square", "next")
        frame = await recv(ws)
        assert frame["seq"] == 3 and _message(frame) == "next"


async def test_events_published_while_disconnected_are_delivered_on_resume(mm):
    """An inactive connection keeps collecting its events; resume delivers them."""
    connection_id = await _session(mm, 0)
    for i in range(3):
        await mm.post_as("lee", "town-square", f"away-{i}")
    async with connect(mm, mm.bot_token, _resume(connection_id, 1)) as ws:
        frames = await ping_barrier(ws, 1)
    assert [(f["seq"], _message(f)) for f in frames] == [(1, "away-0"), (2, "away-1"),
                                                         (3, "away-2")]


async def test_resume_after_forget_resume_state_gets_a_new_connection(mm):
    """After forget_resume_state the resume is fresh: new connection_id, hello seq 0."""
    connection_id = await _session(mm, 1)
    assert mm.forget_resume_state() == 1
    async with connect(mm, mm.bot_token, _resume(connection_id, 2)) as ws:
        frame = await hello(ws)
        assert frame["seq"] == 0 and frame["data"]["connection_id"] != connection_id


async def test_gap_bigger_than_the_buffer_gets_new_connection_id_and_hello():
    """sequence_number evicted from the dead queue: new connection_id, hello at seq 0."""
    async with FakeMattermost(resume_buffer=4) as mm:
        connection_id = await _session(mm, 8)  # seqs 0..8, buffer holds 5..8
        await mm.post_as("kim", "town-square", "pending")
        async with connect(mm, mm.bot_token, _resume(connection_id, 2)) as ws:
            frames = await ping_barrier(ws, 1)
    assert frames[0]["event"] == "hello" and frames[0]["seq"] == 0
    assert frames[0]["data"]["connection_id"] != connection_id
    assert [(f["seq"], _message(f)) for f in frames[1:]] == [(1, "pending")]


async def test_sequence_number_ahead_of_the_server_is_a_lost_resume(mm):
    """A sequence_number beyond the newest event + 1 also means a new hello."""
    connection_id = await _session(mm, 1)
    async with connect(mm, mm.bot_token, _resume(connection_id, 50)) as ws:
        frame = await hello(ws)
        assert frame["data"]["connection_id"] != connection_id


async def test_unknown_connection_id_is_a_fresh_connection(mm):
    """A well-formed but unknown connection_id: new id and hello."""
    async with connect(mm, mm.bot_token, _resume("a" * 26, 5)) as ws:
        assert (await hello(ws))["data"]["connection_id"] != "a" * 26


async def test_another_users_connection_is_not_adopted(mm):
    """Resuming someone else's inactive connection gives a fresh one."""
    connection_id = await _session(mm, 1)
    async with connect(mm, mm.user("kim").token, _resume(connection_id, 2)) as ws:
        assert (await hello(ws))["data"]["connection_id"] != connection_id


@pytest.mark.parametrize("query", [
    _resume("not-an-id", 1),
    "?connection_id=" + "a" * 26,
    _resume("a" * 26, "x"),
])
async def test_bad_resume_query_closes_right_after_upgrade(mm, query):
    """An invalid connection_id, or one without an integer sequence_number: closed at once."""
    async with connect(mm, mm.bot_token, query) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.get_message()
        assert closed.value.reason.code == 1006


async def test_empty_connection_id_is_a_fresh_connection(mm):
    """The JS client's first connect (?connection_id=&sequence_number=0) is fresh."""
    async with connect(mm, mm.bot_token, "?connection_id=&sequence_number=0") as ws:
        assert (await hello(ws))["seq"] == 0


async def test_challenge_auth_ignores_connection_id(mm):
    """With challenge auth the user is unknown at upgrade, so any connection_id is ignored."""
    connection_id = await _session(mm, 1)
    async with connect(mm, None, _resume(connection_id, 2)) as ws:
        await ws.send_message(json.dumps({"seq": 1, "action": "authentication_challenge",
                                          "data": {"token": mm.bot_token}}))
        frame = await hello(ws)
        assert frame["data"]["connection_id"] != connection_id


async def test_an_active_connection_is_not_resumed(mm):
    """A connection whose socket is still open does not match: a second socket is fresh."""
    async with connect(mm, mm.bot_token) as first:
        connection_id = (await hello(first))["data"]["connection_id"]
        async with connect(mm, mm.bot_token, _resume(connection_id, 1)) as second:
            assert (await hello(second))["data"]["connection_id"] != connection_id


async def test_full_send_queue_forgets_the_connection(mm):
    """More than 256 events queued for an inactive connection: it cannot be resumed."""
    connection_id = await _session(mm, 0)
    for i in range(257):
        await mm.post_as("kim", "town-square", f"flood-{i}")
    async with connect(mm, mm.bot_token, _resume(connection_id, 1)) as ws:
        assert (await hello(ws))["data"]["connection_id"] != connection_id
