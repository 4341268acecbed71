"""The sender's in-doubt lookup: did an earlier attempt already make this post?

A row first attempted more than ``in_doubt_after_s`` ago (beyond the server's 30 s memory of
``pending_post_id``) may have been posted by an attempt whose answer was lost. The channel's
posts are read newest first, a page at a time, back to ``first_attempt_at`` minus a margin,
and the bot's post carrying ``props.mchat_reply_key`` is looked for. Paging has no cap (the
``since`` mode the server caps at 1000 posts, so a busy channel could hide the post and the
reply would be posted twice).
"""

from __future__ import annotations

from ..mattermost.api import PostHistory
from ..mattermost.events import posts_from_list

PAGE = 200


async def find_earlier_post(rest: PostHistory, *, channel_id: str, reply_key: str, bot_user_id: str,
                            since_ms: int) -> str | None:
    """The id of the bot's post with ``reply_key`` created at ``since_ms`` or later, if any."""
    page = 0
    while True:
        posts = posts_from_list(await rest.get_posts(channel_id, page=page, per_page=PAGE))
        for post in posts:
            if post.user_id == bot_user_id and post.reply_key == reply_key:
                return str(post.id)
        if len(posts) < PAGE or not posts or posts[0].create_at < since_ms:
            return None  # the oldest post of this page is older than the window
        page += 1
