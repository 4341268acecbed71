"""A minimal HTTP CONNECT proxy for tests (trio, 127.0.0.1, an ephemeral port).

It records every ``CONNECT host:port`` it is asked for, answers ``200`` and pipes bytes both
ways, or answers ``refuse_status`` when set. Nothing else (absolute-form requests get 405).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import attrs
import trio


@attrs.define
class ConnectProxy:
    url: str = ""
    connects: list[str] = attrs.Factory(list)
    other_requests: list[str] = attrs.Factory(list)
    refuse_status: int | None = None

    async def handle(self, client: trio.SocketStream) -> None:
        async with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = await client.receive_some(4096)
                if not chunk or len(head) > 16384:
                    return
                head += chunk
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            method, target, _ = request_line.split(" ", 2)
            if method != "CONNECT":
                self.other_requests.append(request_line)
                await client.send_all(b"HTTP/1.1 405 Method Not Allowed\r\n"
                                      b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                return
            self.connects.append(target)
            if self.refuse_status is not None:
                await client.send_all(f"HTTP/1.1 {self.refuse_status} Refused\r\n"
                                      "Content-Length: 0\r\n\r\n".encode())
                return
            host, _, port = target.rpartition(":")
            try:
                upstream = await trio.open_tcp_stream(host.strip("[]"), int(port))
            except OSError:
                await client.send_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            async with upstream:
                await client.send_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_pipe, client, upstream, nursery.cancel_scope)
                    nursery.start_soon(_pipe, upstream, client, nursery.cancel_scope)


async def _pipe(src: trio.SocketStream, dst: trio.SocketStream, scope: trio.CancelScope) -> None:
    try:
        while data := await src.receive_some(65536):
            await dst.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    scope.cancel()


@asynccontextmanager
async def open_connect_proxy() -> AsyncIterator[ConnectProxy]:
    proxy = ConnectProxy()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, proxy.handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        proxy.url = f"http://127.0.0.1:{port}"
        yield proxy
        nursery.cancel_scope.cancel()
