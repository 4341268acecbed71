"""Who may call what: the admin bearer token, webhook tokens and the source allow-list.

- Admin API: ``Authorization: Bearer <MCHAT_ADMIN_TOKEN>``. No admin token configured: 403 for
  every admin route (the API is switched off). Missing or wrong token: 401.
- Webhooks and slash commands: the payload's ``token`` (or ``Authorization: Token <t>``, which
  Mattermost adds to slash commands) must equal one of ``MCHAT_OUTGOING_WEBHOOK_TOKENS`` or
  ``MCHAT_SLASH_TOKENS`` respectively (each falls back to the deprecated shared
  ``MCHAT_WEBHOOK_TOKENS``); none configured: every call is refused (401).
- Every failed authentication counts against the source address (``throttle``): 429 after 20
  failures in 60 s. ``MCHAT_WEBHOOK_ALLOW`` (CIDR list), when set, limits
  the source addresses (403 otherwise). The source is the TCP peer: behind a reverse proxy,
  list the proxy's address.

Tokens are compared in constant time (``hmac.compare_digest``) and never echoed.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .context import Surface, surface
from .errors import ApiError

_bearer = HTTPBearer(auto_error=False, description="MCHAT_ADMIN_TOKEN")


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def token_matches(given: str | None, accepted: Iterable[str]) -> bool:
    """True when ``given`` equals one of ``accepted`` (every candidate is compared)."""
    if not given:
        return False
    found = False
    for candidate in accepted:
        found |= _same(given, candidate)
    return found


async def require_admin(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),  # noqa: B008
    s: Surface = Depends(surface),  # noqa: B008
) -> str:
    """FastAPI dependency guarding the admin API; returns the caller's address for the audit."""
    return check_admin(request, s, credentials)


def check_admin(request: Request, s: Surface,
                credentials: HTTPAuthorizationCredentials | None, kind: str = "admin") -> str:
    """403 when the admin API is off, 429 when the address is throttled, 401 for a missing
    or wrong bearer token (counted against the address); the caller's address otherwise."""
    expected = s.rt.config.http.admin_token
    if not expected:
        raise ApiError(403, "admin API disabled", "MCHAT_ADMIN_TOKEN is not set")
    address = client_address(request)
    s.auth_throttle.check(address, kind)
    given = credentials.credentials if credentials is not None else None
    if given is None or credentials is None or credentials.scheme.lower() != "bearer":
        s.auth_throttle.failed(address, kind)
        raise ApiError(401, "unauthorized", "a bearer token is required",
                       {"WWW-Authenticate": "Bearer"})
    if not _same(given, expected.reveal()):
        s.auth_throttle.failed(address, kind)
        raise ApiError(401, "unauthorized", "the bearer token is not valid",
                       {"WWW-Authenticate": "Bearer"})
    s.auth_throttle.succeeded(address)
    return address


async def bearer_credentials(request: Request) -> HTTPAuthorizationCredentials | None:
    """The request's ``Authorization: Bearer`` credentials, parsed as for the admin API."""
    return await _bearer(request)


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def source_allowed(address: str, allow: tuple[str, ...]) -> bool:
    """True when no allow-list is set or ``address`` is inside one of its networks."""
    if not allow:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in allow)


def check_source(request: Request, s: Surface) -> None:
    """403 unless the caller's address is allowed to call the webhook endpoints."""
    if not source_allowed(client_address(request), s.rt.config.http.webhook_allow):
        raise ApiError(403, "forbidden", "this address may not call the webhook endpoints")


def check_webhook_token(request: Request, s: Surface, payload_token: str | None,
                        kind: str = "outgoing") -> None:
    """401 unless the payload (or ``Authorization: Token``) carries a token accepted for
    ``kind`` (``outgoing``: MCHAT_OUTGOING_WEBHOOK_TOKENS, ``slash``: MCHAT_SLASH_TOKENS; each
    falls back to the deprecated MCHAT_WEBHOOK_TOKENS). Failures count against the address;
    429 while it is throttled."""
    accepted = [t.reveal() for t in s.rt.config.http.tokens_for(kind)]
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    header_token = value.strip() if scheme.lower() == "token" else None
    address = client_address(request)
    s.auth_throttle.check(address, kind)
    if not accepted:
        s.auth_throttle.failed(address, kind)
        raise ApiError(401, "unauthorized", "no webhook tokens are configured")
    if not (token_matches(payload_token, accepted) or token_matches(header_token, accepted)):
        s.auth_throttle.failed(address, kind)
        raise ApiError(401, "unauthorized", "the token is missing or not valid")
    s.auth_throttle.succeeded(address)
