"""``/admin``: the operator's page (static HTML, JS and CSS from ``http/static``).

The page holds no data itself: it asks for the admin token, keeps it in ``sessionStorage`` and
reads everything from the admin API (status every 2 s). The files are read once when the app
is created. A strict Content-Security-Policy allows only these same-origin files: no inline
script, no CDN.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from .context import Surface, surface
from .errors import ApiError

router = APIRouter(tags=["admin page"], include_in_schema=False)

FILES = {"admin.html": "text/html; charset=utf-8",
         "admin.js": "text/javascript; charset=utf-8",
         "admin.css": "text/css; charset=utf-8"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def load_static() -> dict[str, bytes]:
    base = resources.files(__package__).joinpath("static")
    return {name: base.joinpath(name).read_bytes() for name in FILES}


def _file(s: Surface, name: str) -> Response:
    body = s.static.get(name)
    if body is None:
        raise ApiError(404, "not found")
    return Response(body, media_type=FILES[name], headers=_HEADERS)


@router.get("/admin")
async def admin_page(s: Surface = Depends(surface)) -> Response:  # noqa: B008
    return _file(s, "admin.html")


@router.get("/admin/{name}")
async def admin_asset(name: str, s: Surface = Depends(surface)) -> Response:  # noqa: B008
    if name not in FILES or name == "admin.html":
        raise ApiError(404, "not found")
    return _file(s, name)
