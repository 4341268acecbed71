"""A real PostgreSQL server for the tests: Debian's binaries, a temporary cluster, 127.0.0.1.

``PgServer.start()`` runs ``initdb`` into a new temporary directory (superuser ``mchat`` with a
random password, SCRAM over TCP), then ``postgres`` listening on 127.0.0.1 only, on a free
ephemeral port, with no Unix socket. ``stop()`` shuts it down (fast shutdown, then SIGKILL) and
removes the directory. PostgreSQL refuses to run as root: when the tests run as root (CI), the
server runs as Debian's ``postgres`` user (created by the ``postgresql`` package), else
``nobody``, and the directory is handed to that user.

Binaries: ``$MCHAT_PG_BINDIR``, else the newest ``/usr/lib/postgresql/<version>/bin`` (Debian's
layout, not on PATH), else ``postgres`` on PATH. None found is a ``PgNotFound`` with the
command that installs it: the pg tests fail, never skip (PostgreSQL is part of CI).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

INSTALL_HINT = ("PostgreSQL's server binaries were not found (looked in $MCHAT_PG_BINDIR, "
                "/usr/lib/postgresql/*/bin and PATH): install them with "
                "`sh scripts/system-deps.sh test` (Debian: apt-get install postgresql)")


class PgNotFound(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def find_bindir() -> Path:
    """The directory holding ``initdb`` and ``postgres``."""
    env = os.environ.get("MCHAT_PG_BINDIR", "").strip()
    candidates = [Path(env)] if env else []
    root = Path(os.environ.get("MCHAT_PG_ROOT", "/usr/lib/postgresql"))
    if root.is_dir():
        versions = [p for p in root.iterdir() if p.name.replace(".", "").isdigit()]
        candidates += [p / "bin" for p in sorted(versions, key=lambda p: float(p.name),
                                                  reverse=True)]
    on_path = shutil.which("postgres")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if (bindir / "postgres").is_file() and (bindir / "initdb").is_file():
            return bindir
    raise PgNotFound(INSTALL_HINT)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the server: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PgNotFound("running as root and neither a 'postgres' nor a 'nobody' user exists "
                     "to run PostgreSQL as")


class PgServer:
    """One throw-away cluster. ``url`` (superuser, database ``postgres``) once started."""

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.user = "mchat"
        self.password = secrets.token_urlsafe(18)
        self.port = 0
        self._as = _server_user()
        # as root the server user must reach the directory: /tmp, not a private $TMPDIR
        parent = "/tmp" if self._as is not None and os.path.isdir("/tmp") else None
        self.dir = Path(tempfile.mkdtemp(prefix="mchat-pg-", dir=parent))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, dbname: str = "postgres") -> str:
        return (f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{dbname}"
                "?connect_timeout=10")

    def _run_as(self) -> dict[str, object]:
        if self._as is None:
            return {}
        return {"user": self._as.pw_uid, "group": self._as.pw_gid, "extra_groups": []}

    def start(self) -> None:
        pwfile = self.dir / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as is not None:
            for path in (self.dir, pwfile):
                os.chown(path, self._as.pw_uid, self._as.pw_gid)
        initdb = subprocess.run(
            [str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user,
             f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=reject",
             "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
            capture_output=True, text=True, timeout=120, cwd=self.dir, **self._run_as())  # type: ignore[call-overload]
        pwfile.unlink()
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed ({initdb.returncode}):\n{initdb.stderr[-2000:]}")
        for attempt in range(5):  # another process may take the free port before we bind it
            self.port = _free_port()
            if self._launch():
                return
            time.sleep(0.2 * attempt)
        raise RuntimeError(f"PostgreSQL did not start; its log:\n{self._log_tail()}")

    def _launch(self) -> bool:
        log = open(self.log, "ab")  # noqa: SIM115  (the server keeps writing to it)
        if self._as is not None:
            os.chown(self.log, self._as.pw_uid, self._as.pw_gid)
        self.proc = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(self.data), "-h", "127.0.0.1",
             "-p", str(self.port), "-k", "", "-c", "fsync=off", "-c", "full_page_writes=off",
             "-c", "synchronous_commit=off", "-c", "max_connections=200",
             "-c", "shared_buffers=32MB"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=self.dir,
            **self._run_as())  # type: ignore[call-overload]
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return True
            except psycopg.OperationalError:
                time.sleep(0.05)
        self.stop_process()
        return False

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return "(no log)"

    def stop_process(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)  # fast shutdown: roll back, close connections
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def stop(self) -> None:
        try:
            self.stop_process()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
