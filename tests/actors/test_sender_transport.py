"""The sender with a pluggable post transport (webhook-only mode's incoming webhook)."""

from __future__ import annotations

from functools import partial
from typing import Any

import httpx
import trio

from mchat_actors.actors.sender import Sender
from mchat_actors.errors import MattermostUnavailable
from mchat_actors.mattermost.rest import open_mattermost_client
from mchat_actors.messages import (
    AddReaction,
    ChannelId,
    MattermostUserId,
    OutboundRequest,
    PostId,
    SendEphemeral,
)
from mchat_actors.ratelimit import TokenBucket

from .test_sender import BOT, CFG, InlineStore, reply, wall


class RecordingTransport:
    """Posts into a list; the first ``fail`` calls answer 503."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.calls = 0
        self.pings = 0
        self.posts: list[dict[str, Any]] = []

    async def create_post(self, **fields: Any) -> Any:
        self.calls += 1
        if self.calls <= self.fail:
            raise MattermostUnavailable("incoming webhook: server error 503")
        self.posts.append(fields)
        return {"id": f"webhook:{fields['pending_post_id']}"}

    async def ping(self) -> object:
        """The server is up: only the hook's endpoint fails (a row-level failure)."""
        self.pings += 1
        return 200


async def _run(tmp_path: Any, transport: RecordingTransport,
               requests: list[OutboundRequest], settle_s: float) -> tuple[list[str], Sender]:
    store = InlineStore(tmp_path / "s.db")
    rest_calls: list[str] = []

    def rest(request: httpx.Request) -> httpx.Response:
        rest_calls.append(f"{request.method} {request.url.path}")
        return httpx.Response(401, json={"id": "api.context.session_expired.app_error"})

    async with open_mattermost_client(CFG, bucket=TokenBucket(10),
                                      transport=httpx.MockTransport(rest)) as client:
        send, recv = trio.open_memory_channel[OutboundRequest](100)
        snd = Sender(CFG, store=store, client=client, bot_user_id=BOT, wall_clock=wall,
                     transport=transport)
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(snd.run, recv))
            async with send:
                for request in requests:
                    await send.send(request)
                await trio.sleep(settle_s)
    return rest_calls, snd


async def test_rows_go_through_the_transport_and_reactions_are_dropped(autojump_clock,
                                                                       tmp_path):
    transport = RecordingTransport()
    rest_calls, snd = await _run(tmp_path, transport, [
        AddReaction(post_id=PostId("p1"), emoji_name="hourglass_flowing_sand"),
        reply("c1", 1), reply("c1", 2)], settle_s=5)
    assert rest_calls == []  # no REST call at all: a token-less client would get 401 (fatal)
    assert [p["message"] for p in transport.posts] == ["answer 1 in c1", "answer 2 in c1"]
    assert transport.posts[0]["props"]["mchat_reply_key"] == "c1-trigger1:0"
    stats = snd.statistics()
    assert (stats.sent, stats.reactions_dropped, stats.reactions_sent) == (2, 1, 0)


async def test_a_row_in_doubt_is_posted_again_without_reading_the_channel(autojump_clock,
                                                                          tmp_path):
    """3 quick retries, then a 30 s deferral: the row is 'in doubt' (first attempt > 25 s ago);
    with REST the sender would look the channel up; with the transport it posts again."""
    transport = RecordingTransport(fail=4)
    rest_calls, snd = await _run(tmp_path, transport, [reply("c1", 1)], settle_s=120)
    assert rest_calls == []
    assert len(transport.posts) == 1 and transport.calls == 5
    assert snd.statistics().in_doubt_lookups == 0


async def test_an_ephemeral_answer_is_never_posted_in_the_channel(autojump_clock, tmp_path):
    """Webhook-only: no REST, no DM; the private answer is dropped and only the note posts."""
    transport = RecordingTransport()
    private = SendEphemeral(channel_id=ChannelId("c1"), user_id=MattermostUserId("kim"),
                            message="신제품 코드명은 블루버드", reply_key="p9:reply",
                            note="검색 결과는 /search 슬래시 명령으로 확인하세요",
                            root_id=PostId("p9"))
    rest_calls, snd = await _run(tmp_path, transport, [private], settle_s=5)
    assert rest_calls == []
    assert [p["message"] for p in transport.posts] == [private.note]
    assert "블루버드" not in str(transport.posts)
