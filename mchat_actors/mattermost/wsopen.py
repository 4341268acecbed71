"""Open the Mattermost WebSocket's byte stream ourselves: direct or through an HTTP proxy's
CONNECT tunnel, then TLS, then hand it to trio-websocket.

Why not ``trio_websocket.connect_websocket_url``: it cannot go through a proxy, and it hides a
failed TLS handshake (its reader task swallows the error and the connect just times out), so a
certificate problem would look like a hang. Here the TLS handshake is done before the upgrade
request, and its error reaches the caller with the ``ssl`` error as its cause.

Proxy settings come from the environment the way httpx reads them for REST: ``wss://`` uses
``HTTPS_PROXY``, ``ws://`` uses ``HTTP_PROXY``, either falls back to ``ALL_PROXY``; ``NO_PROXY``
(host names, domain suffixes, ``*``) bypasses it. Lower-case names work too. Only ``http://``
proxies are supported (credentials in the proxy URL are sent as Basic auth).
"""

from __future__ import annotations

import base64
import os
import ssl
import urllib.request
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

import attrs
import trio
import trio_websocket

from ..errors import MattermostUnavailable

MAX_PROXY_ANSWER = 16 * 1024


@attrs.frozen(kw_only=True)
class Target:
    scheme: str  # ws or wss
    host: str
    port: int
    resource: str  # path and query

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "wss" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse_target(url: str) -> Target:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
    port = parts.port or (443 if scheme == "wss" else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme=scheme, host=parts.hostname, port=port, resource=resource)


def proxy_for(target: Target, environ: Mapping[str, str] | None = None) -> str | None:
    """The proxy URL to reach ``target`` through, or None (direct)."""
    env = {k.lower(): v for k, v in (environ if environ is not None else os.environ).items()
           if k.lower().endswith("_proxy") and v}
    proxies = {k[: -len("_proxy")]: v for k, v in env.items()}
    proxy = proxies.get("https" if target.scheme == "wss" else "http") or proxies.get("all")
    if not proxy:
        return None
    bypass = getattr(urllib.request, "proxy_bypass_environment")  # noqa: B009 - untyped
    if "no" in proxies and bypass(f"{target.host}:{target.port}", proxies):
        return None
    return proxy


async def open_stream(target: Target, *, ssl_context: ssl.SSLContext | None,
                      proxy: str | None) -> trio.abc.Stream:
    """A connected stream to ``target`` (TLS handshake done when ``ssl_context`` is given).

    Raises:
        OSError: the TCP connect failed.
        trio.BrokenResourceError: the TLS handshake failed (``__cause__`` is the ssl error).
        MattermostUnavailable: the proxy refused the tunnel or answered nonsense.
    """
    stream: trio.abc.Stream
    if proxy:
        stream = await _connect_tunnel(proxy, target)
    else:
        stream = await trio.open_tcp_stream(target.host, target.port)
    if ssl_context is None:
        return stream
    tls = trio.SSLStream(stream, ssl_context, server_hostname=target.host,
                         https_compatible=True)
    try:
        await tls.do_handshake()
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return tls


async def _connect_tunnel(proxy: str, target: Target) -> trio.abc.Stream:
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise MattermostUnavailable(f"unsupported proxy URL scheme {parts.scheme!r} "
                                    "(only http:// proxies can tunnel the WebSocket)")
    stream = await trio.open_tcp_stream(parts.hostname, parts.port or 80)
    try:
        host = f"[{target.host}]" if ":" in target.host else target.host
        authority = f"{host}:{target.port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        if parts.username:
            creds = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            lines.append("Proxy-Authorization: Basic "
                         + base64.b64encode(creds.encode()).decode("ascii"))
        await stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = await stream.receive_some(4096)
            if not chunk or len(answer) > MAX_PROXY_ANSWER:
                raise MattermostUnavailable("proxy closed the CONNECT tunnel before answering")
            answer += chunk
        head, _, rest = answer.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
        fields = status_line.split(" ", 2)
        if len(fields) < 2 or fields[1] != "200":
            raise MattermostUnavailable(f"proxy refused the CONNECT tunnel ({status_line[:80]})")
        if rest:  # a server speaking first through a fresh tunnel is not HTTP/TLS: refuse it
            raise MattermostUnavailable("proxy sent data after its CONNECT answer")
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return stream


async def open_websocket(
    nursery: trio.Nursery,
    url: str,
    *,
    ssl_context: ssl.SSLContext | None,
    extra_headers: list[tuple[bytes, bytes]],
    message_queue_size: int,
    max_message_size: int,
    receive_buffer_size: int,
    environ: Mapping[str, str] | None = None,
) -> trio_websocket.WebSocketConnection:
    """Connect (proxy, TLS) and upgrade; the connection's reader runs in ``nursery``."""
    target = parse_target(url)
    stream = await open_stream(target, ssl_context=ssl_context if target.scheme == "wss"
                               else None, proxy=proxy_for(target, environ))
    return await trio_websocket.wrap_client_stream(
        nursery, stream,  # type: ignore[arg-type]  # any trio Stream works
        target.host_header, target.resource, extra_headers=extra_headers,
        message_queue_size=message_queue_size, max_message_size=max_message_size,
        receive_buffer_size=receive_buffer_size)
