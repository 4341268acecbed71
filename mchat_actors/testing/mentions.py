"""Who a post mentions, for the per-recipient ``mentions`` member of ``posted``.

Rules kept from the real server: ``@username`` (case-insensitive; trailing ``.``/``-``/``_``
trimmed when the full word is not a username) of channel members; ``@channel``/``@all`` all
members, ``@here`` the members with an open socket; in a DM the other member is always
mentioned; the author is never mentioned. Not modelled: first-name and custom mention keys,
group mentions, ``@channel`` permissions.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import FakeChannel, FakeUser
    from .state import FakeState

_AT_WORD = re.compile(r"(?<![\w@])@([A-Za-z0-9._-]+)")


def mentioned_user_ids(
    message: str, channel: FakeChannel, author: FakeUser, state: FakeState, online: set[str]
) -> set[str]:
    members = set(state.member_ids(channel.id))
    found: set[str] = set()
    if channel.type == "D":
        found |= members
    for word in _AT_WORD.findall(message):
        word = word.lower()
        if word in ("channel", "all"):
            found |= members
            continue
        if word == "here":
            found |= members & online
            continue
        user = state.find_user(word) or state.find_user(word.rstrip("._-"))
        if user is not None and user.id in members:
            found.add(user.id)
    found.discard(author.id)
    return found
