"""Vector search with sqlite-vec where this Python's sqlite3 can load extensions, the NumPy
scan where it cannot, and the service connection's cache of vectors (``chat.vector_cache``):
all rank the same visible memories the same way.

The project's pyenv-built Python has no ``enable_load_extension``; Debian's ``python3`` (same
minor version, so the virtualenv's compiled packages import) has it. The sqlite-vec case runs
in such an interpreter as a child process."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from mchat_actors.chat.embeddings import load_sqlite_vec

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, sys
import numpy as np
from mchat_actors.chat.embeddings import nearest, nearest_among, store
from mchat_actors.chat.schema import connect
from mchat_actors.chat.search import _VISIBLE

conn = connect(sys.argv[1])
rng = np.random.default_rng(7)
ids = []
for i in range(300):
    room = "r1" if i % 3 else "secret"
    cur = conn.execute("INSERT INTO memories (content, norm, scope, kind, room_id, author_id,"
                       " created_at, updated_at) VALUES (?, ?, 'room', 'remember', ?, 'u1', ?, ?)",
                       (f"memory {i}", f"memory {i}", room, i, i))
    ids.append(cur.lastrowid)
vectors = rng.normal(size=(300, 16)).astype(np.float32)
store(conn, "emb-1", [(i, v.tolist()) for i, v in zip(ids, vectors)])
store(conn, "emb-1", [(ids[1], [0.0] * 16)])        # a zero vector
store(conn, "emb-1", [(ids[2], [1.0] * 8)])         # another length
store(conn, "emb-2", [(ids[4], vectors[0].tolist())])  # another model
query = (vectors[1] + 0.1 * vectors[5]).tolist()
args = (json.dumps(["r1"]), "u1")
out = {"loaded": conn.sqlite_vec, "missing": conn.sqlite_vec_missing}
visible = [r[0] for r in conn.execute(
    "SELECT m.id FROM memories AS m WHERE " + _VISIBLE + " ORDER BY m.id", args)]
out["cached"] = nearest_among(conn, conn.vectors, query, "emb-1", visible, limit=20)
out["cached_again"] = nearest_among(conn, conn.vectors, query, "emb-1", visible, limit=20)
out["vec"] = nearest(conn, query, "emb-1", visible=_VISIBLE, args=args, limit=20)
conn.sqlite_vec = False
out["numpy"] = nearest(conn, query, "emb-1", visible=_VISIBLE, args=args, limit=20)
print(json.dumps(out))
"""


def _interpreter_that_loads_extensions() -> str | None:
    """This Python, or Debian's of the same minor version, when its sqlite3 loads extensions."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for exe in (sys.executable, f"/usr/bin/{version}"):
        if not Path(exe).exists():
            continue
        probe = subprocess.run([exe, "-c", "import sqlite3, sys; sys.exit(0 if hasattr("
                                "sqlite3.Connection, 'enable_load_extension') else 1)"],
                               capture_output=True, check=False)
        if probe.returncode == 0:
            return exe
    return None


def test_sqlite_vec_ranks_like_the_numpy_scan(tmp_path: Path) -> None:
    exe = _interpreter_that_loads_extensions()
    if exe is None:
        pytest.skip("no Python on this machine can load SQLite extensions")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])}
    done = subprocess.run([exe, "-c", CHILD, str(tmp_path / "vec.db")], env=env,
                          capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["loaded"] is True, out["missing"]
    vec, scan = out["vec"], out["numpy"]
    assert len(vec) == 20
    for other in (scan, out["cached"], out["cached_again"]):  # the cache: read, then held
        assert [i for i, _ in vec] == [i for i, _ in other]
        assert np.allclose([s for _, s in vec], [s for _, s in other], atol=1e-5)
    secret = {i for i in range(1, 301) if (i - 1) % 3 == 0}  # rowid i holds memory i - 1
    assert not {i for i, _ in vec} & secret
    assert not {2, 3, 5} & {i for i, _ in vec}  # zero, other length, other model


def test_without_loadable_extensions_the_reason_is_given() -> None:
    """On this project's Python the stdlib sqlite3 cannot load sqlite-vec; the connection says
    why (logged once when the service opens with embeddings) and the NumPy scan is used."""
    conn = sqlite3.connect(":memory:")
    reason = load_sqlite_vec(conn)
    if hasattr(sqlite3.Connection, "enable_load_extension"):
        assert reason is None
        assert conn.execute("SELECT vec_version()").fetchone()[0].startswith("v")
    else:
        assert reason is not None and "cannot load extensions" in reason
