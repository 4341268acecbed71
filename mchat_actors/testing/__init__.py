"""A faithful fake Mattermost server (REST v4 subset + WebSocket) for tests and the demo.

Modules: ``fake`` (the :class:`FakeMattermost` Python API), ``server`` (sockets, h11,
pipeline), ``routing``, ``rest_*`` (handlers), ``app``/``channels`` (the app layer),
``state`` (data), ``postlist`` (paging), ``hub``/``ws``/``events`` (WebSocket), ``ratelimit``,
``faults``, ``control`` (``/_fake/`` API), ``seed``, ``cli``; ``hooks*`` (incoming and
outgoing webhooks, slash commands and their ``response_url``), ``webchat`` (the demo's chat
page); ``fake_openai`` (a small fake of an OpenAI-compatible API) and ``fake_agent_*`` (a twin
of the real AI Memory Agent's HTTP API, Agent API and chat API, for the remote backends' tests).
"""

from __future__ import annotations

from .app import PostCreated as PostCreated
from .apperror import AppError as AppError
from .fake import FakeMattermost as FakeMattermost
from .models import FakeChannel as FakeChannel
from .models import FakeTeam as FakeTeam
from .models import FakeUser as FakeUser
from .models import RequestRecord as RequestRecord

__all__ = [
    "AppError",
    "FakeChannel",
    "FakeMattermost",
    "FakeTeam",
    "FakeUser",
    "PostCreated",
    "RequestRecord",
]
