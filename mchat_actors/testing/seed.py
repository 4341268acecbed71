"""The default seed of the fake server and the ``--seed FILE`` format.

A seed is a JSON object (the default is :func:`default_seed`; an excerpt)::

    {
      "team": {"name": "qa", "display_name": "품질팀 QA"},
      "bot": {"username": "mchat-bot", "email": "mchat-bot@example.com",
              "first_name": "Mchat", "last_name": "Bot"},
      "users": [
        {"username": "kim", "email": "kim@example.com", "first_name": "민수",
         "last_name": "김", "nickname": "김민수"},
        {"username": "admin", "email": "admin@example.com", "roles": "system_user system_admin"}
      ],
      "channels": [
        {"name": "town-square", "display_name": "Town Square", "type": "O", "members": "*"},
        {"name": "defects", "display_name": "결함 Defects", "type": "P",
         "members": ["kim", "lee"]},
        {"type": "D", "members": ["kim", "mchat-bot"]},
        {"type": "G", "members": ["kim", "lee", "mchat-bot"]}
      ]
    }

Several teams: ``"teams": [{"name": "qa", "members": "*"}, {"name": "rnd", "members":
["kim", "choi"]}]`` instead of ``"team"`` (``members`` defaults to ``"*"``; the bot joins every
team; the first is the default team), and ``"team": "rnd"`` on a channel (default: the first).

Rules: every user (and the bot) joins the team; the bot joins every seeded channel; ``"*"``
means every user of the channel's team; ``D``/``G`` channels need no name (it is derived as
on the real server).
Optional per user (and bot): ``id``, ``token`` (else a fresh one; the bot's token can also
come from ``bot_token=``/``--bot-token``), ``roles`` (default ``system_user``), ``nickname``,
``is_bot`` (a user that is another bot account: its posts get ``props.from_bot``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .models import FakeChannel, FakeTeam, FakeUser, new_id
from .state import FakeState, direct_name, group_name


def default_seed() -> dict[str, Any]:
    """A fresh copy of the default seed (team ``qa``, bot ``mchat-bot``, five users)."""
    return {
        "team": {"name": "qa", "display_name": "품질팀 QA"},
        "bot": {"username": "mchat-bot", "email": "mchat-bot@example.com",
                "first_name": "Mchat", "last_name": "Bot", "nickname": "AI 비서"},
        "users": [
            {"username": "kim", "email": "kim@example.com", "first_name": "민수", "last_name": "김",
             "nickname": "김민수"},
            {"username": "lee", "email": "lee@example.com", "first_name": "서연", "last_name": "이",
             "nickname": "이서연"},
            {"username": "park", "email": "park@example.com", "first_name": "지훈",
             "last_name": "박", "nickname": "박지훈"},
            {"username": "choi", "email": "choi@example.com", "first_name": "유진",
             "last_name": "최", "nickname": "최유진"},
            {"username": "admin", "email": "admin@example.com", "first_name": "Admin",
             "last_name": "Kang", "nickname": "관리자", "roles": "system_user system_admin"},
        ],
        "channels": [
            {"name": "town-square", "display_name": "Town Square", "type": "O", "members": "*"},
            {"name": "quality", "display_name": "품질 Quality", "type": "O",
             "members": ["kim", "lee", "park"]},
            {"name": "defects", "display_name": "결함 Defects", "type": "P",
             "members": ["kim", "lee", "admin"]},
            {"type": "D", "members": ["kim", "mchat-bot"]},
            {"type": "G", "members": ["kim", "lee", "mchat-bot"]},
        ],
    }


def load_seed(source: str | Path | Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The default seed (``None``), a mapping as given, or a JSON file's content."""
    if source is None:
        return default_seed()
    if isinstance(source, Mapping):
        return source
    data = json.loads(Path(source).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"seed {source}: the top level must be a JSON object")
    return data


def apply_seed(state: FakeState, seed: Mapping[str, Any], bot_token: str | None) -> FakeUser:
    """Fill ``state`` from ``seed``; returns the bot."""
    team_specs = seed.get("teams") or [seed.get("team") or default_seed()["team"]]
    teams: dict[str, FakeTeam] = {}
    for team_spec in team_specs:
        team = FakeTeam(id=team_spec.get("id") or new_id(), name=team_spec["name"],
                        display_name=team_spec.get("display_name", team_spec["name"]),
                        create_at=state.now_ms())
        state.add_team(team)
        teams[team.name] = team
    bot_spec = dict(seed.get("bot") or default_seed()["bot"])
    if bot_token:
        bot_spec["token"] = bot_token
    bot = _user(state, bot_spec, is_bot=True)
    users = [bot] + [_user(state, spec, is_bot=bool(spec.get("is_bot", False)))
                     for spec in seed.get("users", [])]
    for user in users:
        state.add_user(user)
    for team_spec in team_specs:
        wanted = team_spec.get("members", "*")
        for user in users:
            if wanted == "*" or user is bot or user.username in wanted:
                state.team_members[teams[team_spec["name"]].id].add(user.id)
    first = teams[team_specs[0]["name"]]
    for spec in seed.get("channels", []):
        if spec.get("team", first.name) not in teams:
            raise ValueError(f"seed: channel {spec.get('name')!r} names unknown team "
                             f"{spec.get('team')!r}")
        _channel(state, teams[spec.get("team", first.name)], spec, users, bot)
    return bot


def _user(state: FakeState, spec: Mapping[str, Any], *, is_bot: bool) -> FakeUser:
    return FakeUser(
        id=spec.get("id") or new_id(), username=spec["username"],
        email=spec.get("email", f"{spec['username']}@example.com"),
        token=spec.get("token") or new_id(), is_bot=is_bot,
        first_name=spec.get("first_name", ""), last_name=spec.get("last_name", ""),
        nickname=spec.get("nickname", ""), roles=spec.get("roles", "system_user"),
        create_at=state.now_ms(),
    )


def _channel(state: FakeState, team: FakeTeam, spec: Mapping[str, Any], users: list[FakeUser],
             bot: FakeUser) -> None:
    by_name = {u.username: u for u in users}
    wanted = spec.get("members", [])
    unknown = [] if wanted == "*" else [name for name in wanted if name not in by_name]
    if unknown:
        raise ValueError(f"seed: channel {spec.get('name', spec.get('type'))!r} lists unknown "
                         f"members {unknown}")
    members = ([u for u in users if u.id in state.team_members[team.id]] if wanted == "*"
               else [by_name[name] for name in wanted])
    kind = spec.get("type", "O")
    ids = sorted({u.id for u in members})
    if kind == "D":
        if len(ids) not in (1, 2):
            raise ValueError(f"seed: a D channel has 2 members, not {wanted!r}")
        name, display, team_id = direct_name(ids[0], ids[-1]), "", ""
    elif kind == "G":
        ids = sorted(set(ids) | {bot.id})
        name = group_name(ids)
        display = ", ".join(sorted(state.users[i].username for i in ids))
        team_id = ""
    else:
        name, display, team_id = spec["name"], spec.get("display_name", spec["name"]), team.id
    now = state.now_ms()
    channel = FakeChannel(id=spec.get("id") or new_id(), name=name, display_name=display,
                          type=kind, team_id=team_id, create_at=now, update_at=now,
                          header=spec.get("header", ""), purpose=spec.get("purpose", ""))
    state.add_channel(channel)
    member_ids = set(ids) if kind == "D" else set(ids) | {bot.id}
    for user_id in sorted(member_ids):
        state.join(channel.id, user_id)
