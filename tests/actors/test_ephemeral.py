"""actors/ephemeral.deliver: an ephemeral post, or the DM fallback; never the answer in the
channel."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from mchat_actors.actors import ephemeral
from mchat_actors.errors import MattermostApiError, MattermostAuthError, MattermostUnavailable
from mchat_actors.messages import ChannelId, MattermostUserId, PostId, SendEphemeral

REQUEST = SendEphemeral(channel_id=ChannelId("town"), user_id=MattermostUserId("kim"),
                        message="🤖 results: 블루버드", reply_key="p1:reply", note="🤖 sent by DM",
                        root_id=PostId("p1"), trigger_post_id=PostId("p1"))


class Client:
    def __init__(self, *, ephemeral: Exception | None = None, direct: Exception | None = None,
                 hang: bool = False) -> None:
        self.ephemeral, self.direct, self.hang = ephemeral, direct, hang
        self.calls: list[tuple[str, Any]] = []

    async def create_ephemeral_post(self, **kwargs: Any) -> Any:
        self.calls.append(("ephemeral", kwargs))
        if self.hang:
            await trio.sleep_forever()
        if self.ephemeral is not None:
            raise self.ephemeral
        return {"id": "e1"}

    async def create_direct_channel(self, a: str, b: str) -> Any:
        self.calls.append(("direct", (a, b)))
        if self.direct is not None:
            raise self.direct
        return {"id": "dm1"}


async def deliver(client: Client) -> tuple[Any, ...]:
    return await ephemeral.deliver(client, "bot", REQUEST, timeout_s=1.0)  # type: ignore[arg-type]


async def test_an_ephemeral_post_is_all_when_allowed() -> None:
    client = Client()
    assert await deliver(client) == ()
    assert client.calls == [("ephemeral", {"user_id": "kim", "channel_id": "town",
                                           "message": REQUEST.message, "root_id": "p1"})]


@pytest.mark.parametrize("error", [
    MattermostApiError(403, "api.context.permissions.app_error"),
    MattermostUnavailable("503"),
])
async def test_a_refusal_sends_the_answer_by_dm_and_a_note_to_the_thread(error) -> None:  # noqa: ANN001
    client = Client(ephemeral=error)
    private, note = await deliver(client)
    assert (private.channel_id, private.message, private.reply_key) == (
        "dm1", REQUEST.message, "p1:reply:dm")
    assert (note.channel_id, note.message, note.root_id, note.reply_key) == (
        "town", REQUEST.note, "p1", "p1:reply:note")
    assert ("direct", ("bot", "kim")) in client.calls


async def test_without_a_dm_only_the_note_is_posted(autojump_clock) -> None:  # noqa: ANN001
    client = Client(hang=True, direct=MattermostApiError(403, "api.context.permissions"))
    (note,) = await deliver(client)
    assert note.channel_id == "town" and "블루버드" not in note.message


async def test_an_auth_error_is_fatal() -> None:
    with pytest.raises(MattermostAuthError):
        await deliver(Client(ephemeral=MattermostAuthError("401")))
