"""The incoming-webhook transport (webhook-only mode), over httpx.MockTransport."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import trio

from mchat_actors.config import MattermostConfig
from mchat_actors.errors import MattermostApiError, MattermostUnavailable, RateLimited
from mchat_actors.mattermost.incoming_webhook import open_incoming_webhook
from mchat_actors.ratelimit import TokenBucket

HOOK = "http://mm.test/hooks/s3cr3thookid0000000000000a"
CFG = MattermostConfig(url="http://mm.test", token="", incoming_webhook_url=HOOK,
                       webhook_username="ai-memory", webhook_icon_url="https://x.test/ai.png")
CHANNELS = {
    "chq": {"mchat_channel_name": "quality", "channel_type": "O"},
    "chd": {"mchat_channel_name": "u1__u2", "channel_type": "D"},
}


async def lookup(channel_id: str) -> dict[str, Any] | None:
    return CHANNELS.get(channel_id)


async def _post(answer: httpx.Response | Exception, channel: str = "chq",
                bucket: TokenBucket | None = None) -> tuple[Any, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async with open_incoming_webhook(CFG, bucket=bucket or TokenBucket(100),
                                     channel_lookup=lookup,
                                     transport=httpx.MockTransport(handler)) as poster:
        assert "s3cr3t" not in repr(poster)
        result = await poster.create_post(channel_id=channel, message="답: 12%", root_id="root1",
                                          pending_post_id="pp1",
                                          props={"mchat_reply_key": "p1:reply"})
    return result, seen


async def test_posts_the_server_payload_to_the_channel_by_name() -> None:
    result, seen = await _post(httpx.Response(200, text="ok"))
    assert result == {"id": "webhook:pp1", "channel_id": "chq"}
    [request] = seen
    assert str(request.url) == HOOK and request.method == "POST"
    assert json.loads(request.content) == {
        "text": "답: 12%", "channel": "quality", "username": "ai-memory",
        "icon_url": "https://x.test/ai.png", "props": {"mchat_reply_key": "p1:reply"}}
    # no root_id: Mattermost's IncomingWebhookRequest has none


async def test_429_penalises_the_shared_bucket_and_is_transient() -> None:
    bucket = TokenBucket(100)
    with pytest.raises(RateLimited) as info:
        await _post(httpx.Response(429, text="limit exceeded\n", headers={"Retry-After": "3"}),
                    bucket=bucket)
    assert info.value.retry_after_s == 3.0
    assert bucket.next_allowed_at() >= trio.current_time() + 2.9


@pytest.mark.parametrize("answer", [httpx.Response(503, json={"id": "x"}),
                                    httpx.Response(500, text="boom"),
                                    httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
async def test_5xx_and_network_errors_are_transient_and_hide_the_url(answer: Any) -> None:
    with pytest.raises(MattermostUnavailable) as info:
        await _post(answer)
    assert "s3cr3t" not in str(info.value) and "hooks" not in str(info.value)


async def test_a_refused_body_is_permanent_with_the_servers_error_id() -> None:
    with pytest.raises(MattermostApiError) as info:
        await _post(httpx.Response(400, json={"id": "web.incoming_webhook.invalid.app_error"}))
    assert (info.value.status, info.value.error_id) == (
        400, "web.incoming_webhook.invalid.app_error")
    assert "s3cr3t" not in str(info.value)


@pytest.mark.parametrize(("channel", "status"), [("unknown", 404), ("chd", 403)])
async def test_unnamed_channels_and_dms_are_refused_without_a_request(channel: str,
                                                                      status: int) -> None:
    with pytest.raises(MattermostApiError) as info:
        await _post(httpx.Response(200, text="ok"), channel=channel)
    assert info.value.status == status


async def test_a_webhook_reply_takes_the_reply_class_of_the_bucket() -> None:
    """Replies through the incoming webhook go before every read of the shared budget."""
    bucket = TokenBucket(100)
    await _post(httpx.Response(200, text="ok"), bucket=bucket)
    assert bucket.statistics().acquired_by_priority["reply"] == 1
