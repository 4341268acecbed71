"""The test server's own rules: where the binaries are looked for, and the failure without."""

from __future__ import annotations

from pathlib import Path

import pytest

from .server import INSTALL_HINT, PgNotFound, find_bindir

pytestmark = pytest.mark.pg


def _fake_bindir(path: Path) -> Path:
    path.mkdir(parents=True)
    for name in ("postgres", "initdb"):
        (path / name).write_text("#!/bin/sh\n")
        (path / name).chmod(0o755)
    return path


def test_no_postgresql_is_an_error_naming_the_install_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCHAT_PG_BINDIR", raising=False)
    monkeypatch.setenv("MCHAT_PG_ROOT", str(tmp_path / "none"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PgNotFound) as caught:
        find_bindir()
    assert str(caught.value) == INSTALL_HINT
    assert "scripts/system-deps.sh test" in INSTALL_HINT
    assert "apt-get install postgresql" in INSTALL_HINT


def test_the_newest_debian_version_wins_and_the_env_overrides(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCHAT_PG_BINDIR", raising=False)
    monkeypatch.setenv("MCHAT_PG_ROOT", str(tmp_path / "lib"))
    monkeypatch.setenv("PATH", str(tmp_path))
    _fake_bindir(tmp_path / "lib" / "9.6" / "bin")
    newest = _fake_bindir(tmp_path / "lib" / "15" / "bin")
    (tmp_path / "lib" / "16" / "bin").mkdir(parents=True)  # a client-only install: no server
    assert find_bindir() == newest
    chosen = _fake_bindir(tmp_path / "mine")
    monkeypatch.setenv("MCHAT_PG_BINDIR", str(chosen))
    assert find_bindir() == chosen
