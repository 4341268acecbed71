"""The processes of the replicas scenario: a throw-away PostgreSQL and N ``serve`` replicas.

``pg_server()`` starts a real PostgreSQL the way the tests do (``tests/pg/server.py``:
Debian's binaries, ``initdb`` into a temporary folder, 127.0.0.1 on an ephemeral port) and
stops it (and removes its folder) when the block exits; ``fresh_database`` gives each run its
own empty database. ``ReplicaSet`` starts ``mchat-actors serve`` N times against one database
(MCHAT_REPLICAS=on), each with its own ``/metrics`` port, and kills them all when its block
exits; ``scrape`` reads a replica's counters (the per-replica share of the work), ``owners``
the lease table (who holds which buckets and budget shares).
"""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import attrs
import httpx
import psycopg
import trio

from .procs import BenchError, Proc, start_bot

# the counters of a replica's /metrics that give its share of the work
COUNTERS = ("mchat_ai_responses_total", "mchat_rest_requests_total",
            "mchat_ratelimit_acquired_total", "mchat_messages_processed_total")
LIVE = "expires_at > extract(epoch FROM clock_timestamp())"


@asynccontextmanager
async def pg_server() -> AsyncIterator[object]:
    """A started ``tests.pg.server.PgServer``; stopped (and its folder removed) on exit."""
    from tests.pg.server import PgNotFound, PgServer  # one way to start PostgreSQL

    try:
        server = PgServer()
    except PgNotFound as exc:  # the runner reports the scenario as not run, with the hint
        raise BenchError(str(exc)) from exc
    try:
        await trio.to_thread.run_sync(server.start)
        yield server
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(server.stop)


def fresh_database(server: object, name: str) -> str:
    """``CREATE DATABASE name`` on ``server``; its URL."""
    admin_url = server.url()  # type: ignore[attr-defined]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    return str(server.url(name))  # type: ignore[attr-defined]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@attrs.define
class Replica:
    index: int
    proc: Proc
    metrics_url: str


@attrs.define
class ReplicaSet:
    """N ``mchat-actors serve`` processes on one database (or one on SQLite, ``pg_url=None``)."""

    workdir: Path
    env: dict[str, str]
    pg_url: str | None
    replicas: list[Replica] = attrs.Factory(list)

    def start(self, n: int) -> None:
        for i in range(n):
            port = free_port()
            env = {**self.env, "MCHAT_HTTP_LISTEN": f"127.0.0.1:{port}",
                   "MCHAT_DB": str(self.workdir / f"replica-{i}.db")}
            if self.pg_url is not None:
                env.update({"MCHAT_DATABASE_URL": self.pg_url, "MCHAT_REPLICAS": "on"})
            proc = start_bot("mchat-actors", self.workdir, env, tag=f"-r{i}")
            self.replicas.append(Replica(i, proc, f"http://127.0.0.1:{port}/metrics"))

    def kill(self) -> None:
        for r in self.replicas:
            r.proc.kill()

    def check_alive(self) -> None:
        for r in self.replicas:
            if not r.proc.alive():
                raise BenchError(f"replica {r.index} exited ({r.proc.popen.returncode}):\n"
                                 f"{r.proc.tail()}")

    def owner_of(self, owner: str) -> int | None:
        """The index of the replica a lease owner id names (its pid is part of the id)."""
        for r in self.replicas:
            if f"-{r.proc.pid}-" in owner:
                return r.index
        return None

    async def owners(self) -> dict[str, list[int]]:
        """``bucket`` and ``budget``: how many live leases each replica holds (by index)."""
        if self.pg_url is None:
            return {}
        rows = await trio.to_thread.run_sync(_lease_rows, self.pg_url)
        out = {"bucket": [0] * len(self.replicas), "budget": [0] * len(self.replicas)}
        for kind, owner, n in rows:
            i = self.owner_of(owner)
            if i is not None and kind in out:
                out[kind][i] += n
        return out

    async def wait_spread(self, timeout_s: float) -> dict[str, list[int]]:
        """Until every replica holds buckets and budget shares (the fair share has settled)."""
        deadline = time.time() + timeout_s
        held: dict[str, list[int]] = {}
        while time.time() < deadline:
            self.check_alive()
            held = await self.owners()
            if held and all(v for kind in held.values() for v in kind):
                return held
            await trio.sleep(0.5)
        raise BenchError(f"the replicas did not share the leases within {timeout_s:g} s: {held}")

    async def scrape(self) -> list[dict[str, float]]:
        """Each replica's COUNTERS (summed over labels); {} for one that does not answer."""
        out: list[dict[str, float]] = []
        async with httpx.AsyncClient(timeout=10) as client:
            for r in self.replicas:
                try:
                    response = await client.get(r.metrics_url)
                    response.raise_for_status()
                except httpx.HTTPError:
                    out.append({})
                    continue
                out.append(parse_counters(response.text))
        return out

    async def stored_messages(self) -> int:
        """Rows in ``chat_messages`` (PostgreSQL, or the one replica's SQLite file)."""
        if self.pg_url is not None:
            return await trio.to_thread.run_sync(_pg_count, self.pg_url)
        return await trio.to_thread.run_sync(_sqlite_count, self.workdir / "replica-0.db")


def parse_counters(text: str) -> dict[str, float]:
    """The COUNTERS of a Prometheus text page, each summed over its labels."""
    out = dict.fromkeys(COUNTERS, 0.0)
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in out:
            out[name] += float(line.rsplit(" ", 1)[1])
    return out


def _lease_rows(url: str) -> list[tuple[str, str, int]]:
    with psycopg.connect(url, connect_timeout=10) as conn:
        if not conn.execute("SELECT to_regclass('leases')").fetchone()[0]:  # type: ignore[index]
            return []  # not migrated yet
        rows = conn.execute(
            f"SELECT split_part(resource, ':', 1), owner, count(*) FROM leases WHERE {LIVE} "
            "AND owner IS NOT NULL GROUP BY 1, 2").fetchall()
    return [(str(k), str(o), int(n)) for k, o, n in rows]


def _pg_count(url: str) -> int:
    with psycopg.connect(url, connect_timeout=10) as conn:
        if not conn.execute("SELECT to_regclass('chat_messages')").fetchone()[0]:  # type: ignore[index]
            return 0
        return int(conn.execute("SELECT count(*) FROM chat_messages").fetchone()[0])  # type: ignore[index]


def _sqlite_count(path: Path) -> int:
    if not path.exists():
        return 0
    with _readonly(path) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM chat_messages").fetchone()[0])
        except sqlite3.OperationalError:  # not created yet
            return 0


@contextmanager
def _readonly(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        yield conn
    finally:
        conn.close()


@asynccontextmanager
async def open_replicas(workdir: Path, env: dict[str, str], n: int, pg_url: str | None
                        ) -> AsyncIterator[ReplicaSet]:
    """Start ``n`` replicas (``pg_url``) or the one SQLite process; SIGKILL them all after."""
    rs = ReplicaSet(workdir=workdir, env=env, pg_url=pg_url)
    try:
        rs.start(n)
        yield rs
    finally:
        rs.kill()
