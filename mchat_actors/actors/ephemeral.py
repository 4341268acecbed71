"""Ephemeral answers (only the asker sees them), with a DM fallback. Used by the sender.

``POST /api/v4/posts/ephemeral`` needs the ``create_post_ephemeral`` permission, which a bot
account without admin roles does not have by default. So: try it once (through the client's
token bucket, under a timeout); on a 403, any other API error or a timeout, the answer is sent
to the asker's DM with the bot and a one-line note goes to the thread. Both fallbacks are
ordinary ``SendReply`` requests, made durable in the outbox by the sender. The ephemeral post
itself is not durable: like Mattermost's own ephemeral messages it is never stored.
"""

from __future__ import annotations

import logging

import trio

from ..errors import MattermostAuthError, MattermostError
from ..mattermost.rest import MattermostClient
from ..messages import ChannelId, SendEphemeral, SendReply

logger = logging.getLogger(__name__)


async def deliver(client: MattermostClient, bot_user_id: str, request: SendEphemeral, *,
                  timeout_s: float) -> tuple[SendReply, ...]:
    """Post ``request`` ephemerally; ``()`` when done, else the fallback replies to queue.

    Raises:
        MattermostAuthError: the token was rejected (fatal, as everywhere).
    """
    reason = "timeout"
    with trio.move_on_after(timeout_s):
        try:
            await client.create_ephemeral_post(
                user_id=request.user_id, channel_id=request.channel_id,
                message=request.message, root_id=request.root_id)
            return ()
        except MattermostAuthError:
            raise
        except MattermostError as exc:
            reason = type(exc).__name__
    logger.info("sender: ephemeral answer for %s not possible (%s); sending it by DM",
                request.reply_key, reason)
    return await _fallback(client, bot_user_id, request, timeout_s=timeout_s)


def note_only(request: SendEphemeral) -> SendReply:
    """The one-line note alone, in the thread: where no private route to the asker exists."""
    return SendReply(channel_id=request.channel_id, message=request.note,
                     reply_key=f"{request.reply_key}:note", root_id=request.root_id,
                     trigger_post_id=request.trigger_post_id)


async def _fallback(client: MattermostClient, bot_user_id: str, request: SendEphemeral, *,
                    timeout_s: float) -> tuple[SendReply, ...]:
    note = note_only(request)
    dm_id = ""
    with trio.move_on_after(timeout_s):
        try:
            dm = await client.create_direct_channel(bot_user_id, request.user_id)
            dm_id = str(dm.get("id") or "") if isinstance(dm, dict) else ""
        except MattermostAuthError:
            raise
        except MattermostError as exc:
            logger.warning("sender: no DM with %s for %s: %s", request.user_id,
                           request.reply_key, type(exc).__name__)
    if not dm_id:
        # Never post a private answer in the channel: only the note says to ask in a DM.
        return (note_only(request),)
    private = SendReply(channel_id=ChannelId(dm_id), message=request.message,
                        reply_key=f"{request.reply_key}:dm")
    return (private, note)
