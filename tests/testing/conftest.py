"""Fixtures for the fake Mattermost tests: a running server, an HTTP client, socket helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from mchat_actors.testing import FakeMattermost


@pytest.fixture
async def mm() -> AsyncIterator[FakeMattermost]:
    async with FakeMattermost() as server:
        yield server


@pytest.fixture
async def client(mm: FakeMattermost) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=mm.url, timeout=httpx.Timeout(60.0)) as http:
        yield http
