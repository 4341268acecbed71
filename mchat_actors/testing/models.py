"""Value objects of the fake Mattermost server: ids, users, teams, channels, request records.

``FakeUser`` and ``FakeTeam`` are frozen. ``FakeChannel`` is a live record (its ``delete_at``,
``last_post_at`` and counters change as the server runs): read it, change it only through the
server's API.
"""

from __future__ import annotations

import base64
import re
import secrets
import time

import attrs

# model.NewId: 16 random bytes, base32 with Mattermost's own alphabet, no padding -> 26 chars.
_STD_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_MM_B32 = "ybndrfg8ejkmcpqxot1uwisza345h769"
_TO_MM = str.maketrans(_STD_B32, _MM_B32)
_VALID_ID = re.compile(r"[A-Za-z0-9]{26}")

SERVER_VERSION = "10.5.0"
VERSION_ID = "10.5.0.0.fakefakefakefakefakefakefakefake.false"  # X-Version-Id / hello
SERVER_HOSTNAME = "fake-mattermost"


def new_id() -> str:
    """A fresh 26-character id as ``model.NewId`` makes them."""
    raw = base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=")
    return raw.translate(_TO_MM)


def is_valid_id(value: str) -> bool:
    """``model.IsValidId``: exactly 26 letters or digits."""
    return _VALID_ID.fullmatch(value) is not None


def wall_ms() -> int:
    """Wall-clock Unix milliseconds (post timestamps)."""
    return time.time_ns() // 1_000_000


@attrs.frozen(kw_only=True)
class FakeUser:
    """A user (or bot) account with its personal access token."""

    id: str
    username: str
    email: str
    token: str = attrs.field(repr=False)
    is_bot: bool = False
    first_name: str = ""
    last_name: str = ""
    nickname: str = ""
    roles: str = "system_user"
    create_at: int = 0

    @property
    def is_admin(self) -> bool:
        return "system_admin" in self.roles.split()


@attrs.frozen(kw_only=True)
class FakeTeam:
    """A team (the default seed has exactly one)."""

    id: str
    name: str
    display_name: str
    type: str = "O"
    create_at: int = 0


@attrs.define(kw_only=True, eq=False)
class FakeChannel:
    """A channel. ``type`` is ``O`` public, ``P`` private, ``D`` direct, ``G`` group."""

    id: str
    name: str
    display_name: str
    type: str
    team_id: str
    creator_id: str = ""
    create_at: int = 0
    update_at: int = 0
    delete_at: int = 0
    header: str = ""
    purpose: str = ""
    last_post_at: int = 0
    last_root_post_at: int = 0
    total_msg_count: int = 0
    total_msg_count_root: int = 0

    @property
    def is_direct_or_group(self) -> bool:
        return self.type in ("D", "G")


@attrs.frozen(kw_only=True)
class RequestRecord:
    """One HTTP request as the fake saw it (control requests under ``/_fake/`` excluded)."""

    time: float  # trio.current_time()
    wall_time: float  # time.time()
    user_id: str  # "" when the request carried no valid token
    token_hint: str  # first 4 chars + "…", never the token; "" when none
    method: str
    path: str  # without the query string
    query: str
    status: int
    received: float = 0.0  # trio time the request arrived (before a stall or latency)

    def to_json(self) -> dict[str, object]:
        return attrs.asdict(self)


def token_hint(token: str | None) -> str:
    return f"{token[:4]}…" if token else ""
