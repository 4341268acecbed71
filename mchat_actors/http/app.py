"""``create_app(rt)``: the FastAPI application of the HTTP surface.

Routes: ``GET /mchat/health``, ``GET /metrics``, ``POST /mchat/webhook/outgoing``,
``POST /mchat/slash``, the admin API under ``/api/v1/mchat/`` and the page at ``/admin``; the
OpenAPI document at ``/openapi.json``. The app runs on trio (hypercorn's trio worker, see
``server``); nothing in it is asyncio-specific. Tests drive it in-process with
``httpx.ASGITransport`` or over a socket with ``serve_http``.

Every answer outside 2xx is ``{"error", "detail"}`` JSON (see ``errors``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import trio
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from . import (
    admin_api,
    admin_page,
    health,
    memory_admin,
    metrics,
    retry_queue_api,
    slash,
    webhooks,
)
from .context import Surface
from .errors import (
    BodyLimit,
    ErrorBoundary,
    http_exception_handler,
    validation_exception_handler,
)

if TYPE_CHECKING:
    from ..app import Runtime


def create_app(
    rt: Runtime,
    *,
    background: trio.Nursery | None = None,
    http_client: httpx.AsyncClient | None = None,
) -> FastAPI:
    """The app for ``rt``.

    Args:
        rt: the running service (or a test double with the same attributes).
        background: a nursery outliving single requests, for slash commands that finish after
            their answer window (``serve_http`` passes its own). Without it they answer inline.
        http_client: the pooled client for slash ``response_url`` posts.
    """
    app = FastAPI(title="mchat-actors", version="1", docs_url=None, redoc_url=None,
                  description="Health, metrics, Mattermost integrations and the admin API "
                              "of the mchat-actors bridge.")
    s = Surface(rt=rt, background=background, http_client=http_client,
                static=admin_page.load_static())
    s.metrics = metrics.new_registry(s)
    app.state.surface = s
    app.add_exception_handler(HTTPException, http_exception_handler)
    app.add_exception_handler(RequestValidationError, validation_exception_handler)
    app.add_middleware(BodyLimit, max_bytes=rt.config.http.max_body_bytes)
    app.add_middleware(ErrorBoundary, stats=s.stats)  # added last: outermost
    metrics_elsewhere = rt.config.http.metrics_listen is not None  # MCHAT_METRICS_LISTEN
    for module in (health, metrics, webhooks, slash, admin_api, memory_admin, retry_queue_api,
                   admin_page):
        if module is metrics and metrics_elsewhere:
            continue
        app.include_router(module.router)
    return app


def create_metrics_app(main: FastAPI) -> FastAPI:
    """``GET /metrics`` alone, sharing ``main``'s surface (for MCHAT_METRICS_LISTEN)."""
    app = FastAPI(title="mchat-actors metrics", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.surface = main.state.surface
    app.add_exception_handler(HTTPException, http_exception_handler)
    app.include_router(metrics.router)
    return app
