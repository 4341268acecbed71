"""``scripts/system-deps.sh``, the part of ``make test`` that installs system packages.

Run as a real process with a PATH made of stubs, so every branch is exercised on any machine
(including this one, where chromium and node are installed): what is missing, whether it
can install (root, sudo, no apt-get), what it runs, and the ONE line it prints when it cannot.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "system-deps.sh"
ALL = "chromium chromium-driver nodejs npm postgresql"


class Box:
    """A directory of stub commands that becomes the script's whole PATH."""

    def __init__(self, tmp: Path, *, uid: int = 0) -> None:
        self.bin = tmp / "bin"
        self.bin.mkdir()
        self.calls = tmp / "calls.log"
        self.log_dir = tmp / "tmp"
        self.log_dir.mkdir()
        env_path = "/usr/bin/env" if os.path.exists("/usr/bin/env") else "/bin/env"
        (self.bin / "env").symlink_to(env_path)
        self.stub("id", f'[ "$1" = -u ] && echo {uid}')
        self.pg_root = tmp / "postgresql"  # MCHAT_PG_ROOT: empty until ``postgres()``
        self.pg_root.mkdir()

    def postgres(self, version: str = "17") -> None:
        """Debian's layout: the server binaries in <root>/<version>/bin, not on PATH."""
        bindir = self.pg_root / version / "bin"
        bindir.mkdir(parents=True)
        (bindir / "postgres").write_text("#!/bin/sh\n")
        (bindir / "postgres").chmod(0o755)

    def stub(self, name: str, body: str = "exit 0") -> None:
        path = self.bin / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)

    def recording(self, name: str, status: int = 0) -> None:
        self.stub(name, f'echo "{name} $*" >> {self.calls}\nexit {status}')

    def run(self, what: str = "test", **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["/bin/sh", str(SCRIPT), what], capture_output=True, text=True, timeout=20,
            env={"PATH": str(self.bin), "TMPDIR": str(self.log_dir),
                 "MCHAT_PG_ROOT": str(self.pg_root), **env},
            stdin=subprocess.DEVNULL,
        )

    def called(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path)


def test_nothing_missing_prints_nothing_and_installs_nothing(box: Box) -> None:
    for name in ("chromium", "chromedriver", "node", "npm"):
        box.stub(name)
    box.postgres()
    box.recording("apt-get")
    result = box.run()
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert box.called() == []


def test_without_apt_get_one_line_says_what_to_install(box: Box) -> None:
    box.stub("node")
    box.postgres()
    result = box.run()
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "chromium chromium-driver npm" in lines[0]
    assert "nodejs" not in lines[0]  # node is there
    assert "sudo apt-get install -y chromium chromium-driver npm" in lines[0]
    assert "make test-fast" in lines[0]


def test_as_root_installs_exactly_the_missing_packages(box: Box) -> None:
    box.stub("npm")
    box.recording("apt-get")
    result = box.run()
    assert result.returncode == 0, result.stderr
    assert box.called() == ["apt-get update -q",
                            "apt-get install -y -q chromium chromium-driver nodejs postgresql"]
    assert result.stderr.count("\n") == 1 and "installing chromium" in result.stderr


def test_postgresql_is_found_in_debians_versioned_directory_not_on_path(box: Box) -> None:
    for name in ("chromium", "chromedriver", "node", "npm"):
        box.stub(name)
    box.recording("apt-get")
    assert box.run().returncode == 0 and box.called()[-1] == "apt-get install -y -q postgresql"
    box.calls.unlink()
    box.postgres("15")  # /usr/lib/postgresql/15/bin/postgres: nothing to install
    result = box.run()
    assert (result.returncode, result.stderr, box.called()) == (0, "", [])


def test_not_root_uses_sudo_when_it_works_without_a_password(tmp_path: Path) -> None:
    box = Box(tmp_path, uid=1000)
    box.recording("apt-get")
    box.stub("sudo", f'echo "sudo $*" >> {box.calls}\n[ "$1" = -n ] && exit 0\nexec "$@"')
    result = box.run()
    assert result.returncode == 0, result.stderr
    assert box.called() == [
        "sudo -n true",
        "sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q",
        "apt-get update -q",
        f"sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q {ALL}",
        f"apt-get install -y -q {ALL}",
    ]


def test_not_root_without_sudo_stops_with_one_line(tmp_path: Path) -> None:
    box = Box(tmp_path, uid=1000)
    box.recording("apt-get")
    result = box.run()
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"make test needs: {ALL}. Install them (Debian/Ubuntu: sudo apt-get install -y {ALL}) "
        "and run make test again; make test-fast runs without the browser and node tests"]
    assert box.called() == []


def test_a_failing_apt_get_is_one_line_naming_its_log(box: Box) -> None:
    box.stub("apt-get", 'echo "E: Unable to locate package chromium"; exit 100')
    result = box.run()
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("make: installing") and len(lines) == 2
    log = box.log_dir / "mchat-actors-system-deps.log"
    assert lines[1] == (f"make: apt-get could not install {ALL} (see {log}); "
                        "install them by hand and run make test again")
    assert "Unable to locate package" in log.read_text()


def test_venv_mode_installs_python3_venv_when_ensurepip_is_missing(box: Box) -> None:
    # a Debian python3 without python3-venv: the version is fine, ensurepip cannot be imported
    box.stub("python3", 'case "$2" in *ensurepip*) exit 1;; esac\nexit 0')
    box.recording("apt-get")
    result = box.run("venv")
    assert result.returncode == 0, result.stderr
    assert box.called()[-1] == "apt-get install -y -q python3-venv"


def test_venv_mode_refuses_an_old_python_in_one_line(box: Box) -> None:
    box.stub("python3", 'case "$2" in *version_info*) exit 1;; *platform*) echo 3.9.2;; esac')
    result = box.run("venv")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "make: python3 is 3.9.2; mchat-actors needs Python 3.11 or newer (make PY=python3.11 ...)"]


@pytest.mark.browser
def test_the_real_machine_has_what_make_test_needs() -> None:
    """On the machine running the suite, the check passes silently (make test got here)."""
    result = subprocess.run(["/bin/sh", str(SCRIPT), "test"], capture_output=True, text=True,
                            timeout=20, stdin=subprocess.DEVNULL)
    assert (result.returncode, result.stderr) == (0, "")
