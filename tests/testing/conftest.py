"""Fixtures for the fake Mattermost tests: a running server, an HTTP client, a time guard."""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trio

from mchat_actors.testing import FakeMattermost

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

_HERE = Path(__file__).parent
GUARD_S = 15.0  # real seconds per test
GUARD_AUTOJUMP_S = 600.0  # virtual seconds under autojump_clock


def _guarded(test: Callable[..., Awaitable[None]], limit: float) -> Callable[..., Awaitable[None]]:
    @functools.wraps(test)
    async def run(**kwargs: Any) -> None:
        with trio.fail_after(limit):
            await test(**kwargs)

    return run


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Wrap every async test here in ``trio.fail_after``: a hang fails instead of blocking."""
    for item in items:
        if not isinstance(item, pytest.Function) or _HERE not in item.path.parents:
            continue
        if not inspect.iscoroutinefunction(item.obj) or hasattr(item.obj, "hypothesis"):
            continue
        autojump = "autojump_clock" in item.fixturenames
        item.obj = _guarded(item.obj, GUARD_AUTOJUMP_S if autojump else GUARD_S)


@pytest.fixture
async def mm() -> AsyncIterator[FakeMattermost]:
    async with FakeMattermost() as server:
        yield server


@pytest.fixture
async def client(mm: FakeMattermost) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=mm.url, timeout=httpx.Timeout(60.0)) as http:
        yield http
