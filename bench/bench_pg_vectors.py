"""Benchmark of the exact vector search on PostgreSQL (``pg.embeddings.nearest``) beside the
SQLite backend's (``chat.embeddings.nearest``) on the same vectors, in the same run.

    python -m bench.bench_pg_vectors            # 1 000, 10 000, 30 000 memories; 768, 1536 dims
    python -m bench.bench_pg_vectors --small    # 1 000 and 5 000; 384 and 768 dims
    python -m bench.bench_pg_vectors --url postgresql://...  # an existing server, new database

Without ``--url`` a throw-away PostgreSQL server is started (``tests/pg/server.py``: Debian's
binaries, a temporary cluster on 127.0.0.1). For each size and dimension: memories in 40 rooms
with one random unit vector each; questions asked by someone who sees every room, then by
someone who sees 4 of them (10 %): p50/p99 of one ``nearest`` call on PostgreSQL without a
cache (the visible vectors read in SQL, ranked by cosine similarity) and with the service's
warm ``VectorCache`` (only the visible ids read in SQL), and on SQLite (sqlite-vec where this
Python can load it, else the NumPy scan) on the same vectors; and vectors stored per second
(``store``, batches of 32 as the embedder writes them). Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mchat_actors.chat import embeddings as sqlite_embeddings  # noqa: E402
from mchat_actors.chat.schema import connect as sqlite_connect  # noqa: E402
from mchat_actors.chat.search import _VISIBLE as SQLITE_VISIBLE  # noqa: E402
from mchat_actors.pg import embeddings as pg_embeddings  # noqa: E402
from mchat_actors.pg.schema import migrate as pg_migrate  # noqa: E402

ROOMS = 40
QUERIES = 20
MODEL = "bench-emb"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """p50 and p99 of ``n`` calls, in milliseconds."""
    fn()  # warm
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), percentile(samples, 0.99)


@contextmanager
def postgres(url: str | None) -> Iterator[str]:
    """A new database on ``url``'s server, or on a throw-away server."""
    if url is not None:
        name = f"bench_vectors_{int(time.time())}"
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        try:
            yield url.rsplit("/", 1)[0] + "/" + name
        finally:
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        return
    from tests.pg.server import PgServer

    server = PgServer()
    server.start()
    try:
        with psycopg.connect(server.url(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE bench")
        yield server.url("bench")
    finally:
        server.stop()


def vectors(n: int, dims: int, seed: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    rng = np.random.default_rng(seed)
    out = rng.normal(size=(n, dims)).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def load_pg(conn: psycopg.Connection[Any], matrix: np.ndarray[Any, Any]) -> None:
    conn.execute("TRUNCATE memories, memory_embeddings")
    buf = io.StringIO()
    for i in range(len(matrix)):
        buf.write(f"{i + 1}\tmemory {i}\tmemory {i}\troom\tremember\tr{i % ROOMS}\t{i}\t{i}\t{i}\n")
    with conn.cursor() as cur:
        with cur.copy("COPY memories (id, content, norm, scope, kind, room_id, created_at,"
                      " updated_at, valid_from) FROM STDIN") as copy:
            copy.write(buf.getvalue())
        with cur.copy("COPY memory_embeddings (memory_id, model, vector) FROM STDIN"
                      " (FORMAT BINARY)") as copy:
            copy.set_types(["bigint", "text", "bytea"])
            for i, row in enumerate(matrix):
                copy.write_row((i + 1, MODEL, row.tobytes()))
    conn.execute("ANALYZE memories")
    conn.execute("ANALYZE memory_embeddings")


def load_sqlite(conn: sqlite3.Connection, matrix: np.ndarray[Any, Any]) -> None:
    conn.execute("BEGIN")
    conn.execute("DELETE FROM memories")
    conn.execute("DELETE FROM memory_embeddings")
    conn.executemany(
        "INSERT INTO memories (id, content, norm, scope, kind, room_id, created_at, updated_at,"
        " valid_from) VALUES (?, ?, ?, 'room', 'remember', ?, ?, ?, ?)",
        [(i + 1, f"memory {i}", f"memory {i}", f"r{i % ROOMS}", i, i, i)
         for i in range(len(matrix))])
    conn.executemany("INSERT INTO memory_embeddings (memory_id, model, vector) VALUES (?, ?, ?)",
                     [(i + 1, MODEL, row.tobytes()) for i, row in enumerate(matrix)])
    conn.execute("COMMIT")


def store_rate_pg(conn: psycopg.Connection[Any], dims: int) -> float:
    """Vectors per second through ``pg.embeddings.store`` (batches of 32, one commit each)."""
    batch = vectors(32, dims, 9)
    start = time.perf_counter()
    for b in range(10):
        with conn.transaction():
            pg_embeddings.store(conn, MODEL, [(1 + b * 32 + i, v.tolist())
                                              for i, v in enumerate(batch)])
    return 320 / (time.perf_counter() - start)


def measure(conn: psycopg.Connection[Any], lite: sqlite3.Connection,
            questions: np.ndarray[Any, Any], rooms: list[str],
            cache: pg_embeddings.VectorCache) -> tuple[float, ...]:
    """p50, p99 of PostgreSQL without a cache, with ``cache`` (warm after the first call),
    and of SQLite, asked the same questions in turn by someone who sees ``rooms``."""
    asked = iter(np.concatenate([questions] * 9))
    rooms_json = json.dumps(rooms)

    def pg_call() -> object:
        return pg_embeddings.nearest(conn, next(asked).tolist(), MODEL, rooms=rooms,
                                     owner="u0")

    def cached_call() -> object:
        return pg_embeddings.nearest(conn, next(asked).tolist(), MODEL, rooms=rooms,
                                     owner="u0", cache=cache)

    def lite_call() -> object:
        return sqlite_embeddings.nearest(lite, next(asked).tolist(), MODEL,
                                         visible=SQLITE_VISIBLE, args=(rooms_json, "u0"))

    return (*timed(pg_call, QUERIES), *timed(cached_call, QUERIES), *timed(lite_call, QUERIES))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--url", default=None, help="an existing PostgreSQL server")
    args = parser.parse_args()
    sizes = [1_000, 5_000] if args.small else [1_000, 10_000, 30_000]
    dims_list = [384, 768] if args.small else [768, 1536]
    all_rooms = [f"r{i}" for i in range(ROOMS)]
    few_rooms = all_rooms[:ROOMS // 10]
    with postgres(args.url) as url, tempfile.TemporaryDirectory() as tmp:
        with psycopg.connect(url, autocommit=True) as conn:
            pg_migrate(conn)
        lite = sqlite_connect(str(Path(tmp) / "bench.db"))
        scan = "sqlite-vec" if getattr(lite, "sqlite_vec", False) else "NumPy scan"
        print(f"exact cosine search, {QUERIES} questions each; SQLite path: {scan}")
        print(f"{'memories':>9} {'dims':>5} {'sees':>5} | {'PG p50':>8} {'PG p99':>8} |"
              f" {'cached p50':>10} {'cached p99':>10} |"
              f" {'SQLite p50':>10} {'SQLite p99':>10}  (ms)")
        with psycopg.connect(url, autocommit=True) as conn:
            for dims in dims_list:
                for n in sizes:
                    matrix = vectors(n, dims, 1)
                    load_pg(conn, matrix)
                    load_sqlite(lite, matrix)
                    questions = vectors(QUERIES, dims, 2)
                    cache = pg_embeddings.VectorCache()
                    for label, rooms in (("all", all_rooms), ("10%", few_rooms)):
                        cells = measure(conn, lite, questions, rooms, cache)
                        print(f"{n:>9} {dims:>5} {label:>5} | {cells[0]:>8.1f} {cells[1]:>8.1f}"
                              f" | {cells[2]:>10.1f} {cells[3]:>10.1f}"
                              f" | {cells[4]:>10.1f} {cells[5]:>10.1f}", flush=True)
                print(f"  {dims} dims: PostgreSQL stores {store_rate_pg(conn, dims):,.0f}"
                      " vectors/s (batches of 32, one transaction each)", flush=True)
        lite.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
