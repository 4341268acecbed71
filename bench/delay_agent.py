"""The ChatService of fixed delay every bench system answers with, served over HTTP.

    python -m bench.delay_agent --delay 0.2 [--port 0]

It speaks the AI Memory Agent's Agent API (the shape of ``mchat_actors.testing.fake_agent_api``)
so that mchat-actors runs unmodified (``mchat-actors serve`` with ``CHAT_BACKEND=remote``), and
the peers call the same endpoint for their answers:

- ``POST /api/v1/agents/{id}/data`` -> 201 at once (mchat-actors stores every message there);
- ``POST /api/v1/agents/{id}/memories/search`` -> ``{"results": []}`` after the delay. A query
  containing ``[delay=S]`` waits S seconds instead (the noisy-neighbour scenario's slow channel).

Plain trio + h11 (keep-alive, no framework) so its own cost per request stays far below the
delays it serves. Prints ``listening on http://127.0.0.1:PORT`` once bound.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
from functools import partial

import h11
import trio

DELAY_MARK = re.compile(r"\[delay=(\d+(?:\.\d+)?)\]")
MAX_BODY = 1 << 20


def delay_for(query: str, default_s: float) -> float:
    found = DELAY_MARK.search(query)
    return float(found.group(1)) if found else default_s


async def _answer(conn: h11.Connection, stream: trio.SocketStream, status: int,
                  body: dict[str, object]) -> None:
    data = json.dumps(body).encode()
    headers = [("content-type", "application/json"), ("content-length", str(len(data)))]
    out = conn.send(h11.Response(status_code=status, headers=headers))
    out += conn.send(h11.Data(data=data)) + conn.send(h11.EndOfMessage())
    await stream.send_all(out)


async def _handle(stream: trio.SocketStream, default_s: float, counter: list[int]) -> None:
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            request: h11.Request | None = None
            body = b""
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        return
                    conn.receive_data(chunk)
                elif isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > MAX_BODY:
                        return
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    return
            assert request is not None
            counter[0] += 1
            path = request.target.decode()
            try:
                payload = json.loads(body or b"{}")
            except ValueError:
                payload = {}
            if path.endswith("/memories/search"):
                query = str(payload.get("query", "")) if isinstance(payload, dict) else ""
                await trio.sleep(delay_for(query, default_s))
                await _answer(conn, stream, 200, {"results": []})
            elif path.endswith("/data"):
                await _answer(conn, stream, 201, {"id": f"d{counter[0]}", "status": "stored"})
            else:
                await _answer(conn, stream, 404, {"detail": "not found"})
            if conn.our_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()
    except (h11.RemoteProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
        return
    finally:
        with trio.move_on_after(0.5):
            await stream.aclose()


async def main(delay_s: float, port: int) -> None:
    counter = [0]
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                partial(trio.serve_tcp, partial(_handle, default_s=delay_s, counter=counter),
                        port, host="127.0.0.1"))
            bound = listeners[0].socket.getsockname()[1]
            print(f"delay agent ({delay_s * 1000:g} ms) listening on http://127.0.0.1:{bound}",
                  flush=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds per answer")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    trio.run(main, args.delay, args.port)
