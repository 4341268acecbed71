"""A small web chat page served by the fake Mattermost, for trying the bot in a browser.

``GET /webchat`` serves one static page (no build step, no CDN). The page reads the seed
(``/_fake/seed``: users with their tokens — it is a fake), and then talks to the fake through
the ordinary REST API with the chosen user's token, exactly as any Mattermost client would:
``POST /api/v4/posts`` to post, ``GET /api/v4/channels/{id}/posts`` (polled) to read,
``POST /api/v4/channels/direct`` for a DM with the bot.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from .routing import Request, Response

if TYPE_CHECKING:
    from .fake import FakeMattermost


def register(mm: FakeMattermost) -> None:
    """Add ``GET /webchat`` to ``mm``'s routes."""
    page = resources.files(__package__).joinpath("static/webchat.html").read_bytes()

    async def webchat(request: Request) -> Response:
        return Response(200, page, content_type="text/html; charset=utf-8")

    mm.router.add("GET", "/webchat", webchat, auth=False)
