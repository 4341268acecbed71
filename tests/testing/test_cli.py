"""``mchat-actors fake-mattermost``: starts, prints URL and tokens, exits 0 on SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx


def test_fake_mattermost_command_serves_and_stops_on_sigterm():
    """The command prints its URL and every token, serves REST with them, and exits 0."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mchat_actors", "fake-mattermost", "--port", "0",
         "--bot-token", "cli-bot-token"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not lines or not lines[-1].lstrip().startswith("team"):
            line = process.stdout.readline()
            assert line, "the command ended before printing its banner"
            lines.append(line)
        url = re.search(r"http://127\.0\.0\.1:\d+", lines[0])
        assert url, lines
        tokens = dict(re.findall(r"^\s+(?:bot|user)\s+(\S+)\s+token (\S+)", "".join(lines),
                                 re.MULTILINE))
        assert tokens["mchat-bot"] == "cli-bot-token"
        me = httpx.get(f"{url.group(0)}/api/v4/users/me", timeout=5,
                       headers={"Authorization": f"Bearer {tokens['kim']}"})
        assert me.json()["username"] == "kim"
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
    assert code == 0
