"""In-memory ChatService for runtime tests: records every call, answers deterministically.

``answer_for(prompt)`` is what a triggered post gets; tests script hangs and failures per room.
"""

from __future__ import annotations

import itertools
import sqlite3

import attrs
import trio

from mchat_actors.chat.protocol import ChatRoom, ChatUser, SendResult, StoredMessage
from mchat_actors.errors import ChatServiceError
from mchat_actors.store import Store, connect, migrate, store_error


def answer_for(prompt: str) -> str:
    return f"answer to: {prompt}"


@attrs.define
class FakeChat:
    users: dict[str, ChatUser] = attrs.Factory(dict)
    rooms: dict[str, ChatRoom] = attrs.Factory(dict)
    members: dict[str, set[str]] = attrs.Factory(dict)
    messages: dict[str, StoredMessage] = attrs.Factory(dict)  # by post id
    answers: dict[str, str] = attrs.Factory(dict)  # by post id
    calls: list[tuple[str, str]] = attrs.Factory(list)  # (room, post id) in call order
    hang_rooms: dict[str, float] = attrs.Factory(dict)  # room name -> seconds
    fail_rooms: set[str] = attrs.Factory(set)  # every call fails: nothing can be stored
    fail_answer_rooms: set[str] = attrs.Factory(set)  # answers fail; plain storage works
    edits: list[tuple[str, str]] = attrs.Factory(list)
    deletes: list[str] = attrs.Factory(list)
    _ids: itertools.count = attrs.Factory(lambda: itertools.count(1))

    async def find_user_by_email(self, email):
        for u in self.users.values():
            if u.email and u.email.lower() == email.lower():
                return u
        return None

    async def create_user(self, *, name, email):
        u = ChatUser(id=f"au{next(self._ids)}", name=name, email=email)
        self.users[u.id] = u
        return u

    async def create_room(self, *, name, kind):
        r = ChatRoom(id=f"room{next(self._ids)}", name=name, kind=kind)
        self.rooms[r.id] = r
        return r

    async def add_room_member(self, room, user):
        self.members.setdefault(room, set()).add(user)

    async def remove_room_member(self, room, user):
        self.members.get(room, set()).discard(user)

    async def send_message(self, room, user, content, *, post_id=None, root_id=None,
                           created_at_ms=None, respond=False, prompt=None, permalink=None,
                           react=None):
        self.calls.append((room, post_id))
        name = self.rooms[room].name if room in self.rooms else room
        if name in self.hang_rooms:
            await trio.sleep(self.hang_rooms[name])
        if name in self.fail_rooms or (respond and name in self.fail_answer_rooms):
            raise ChatServiceError("scripted failure")
        existing = self.messages.get(post_id)
        if existing is not None:
            msg = attrs.evolve(existing, is_new=False)
        else:
            msg = StoredMessage(id=f"m{next(self._ids)}", room_id=room, user_id=user,
                                content=content, mchat_post_id=post_id,
                                created_at_ms=created_at_ms or 0)
            self.messages[post_id] = msg
        answer = None
        if respond:
            answer = self.answers.get(post_id) or answer_for(prompt or content)
            self.answers[post_id] = answer
        return SendResult(user_message=msg, assistant_message=answer)

    async def edit_message(self, *, post_id, content):
        self.edits.append((post_id, content))

    async def delete_message(self, *, post_id):
        self.deletes.append(post_id)


class InlineStore(Store):
    """The real store on a real SQLite file, with its work run inline on the trio thread.

    For tests on trio's autojump clock, which cannot see the store's worker thread.
    """

    @classmethod
    def open(cls, path) -> InlineStore:
        db = connect(path)
        migrate(db)
        return cls(db, str(path))

    async def run(self, fn, *args, **kwargs):
        await trio.lowlevel.checkpoint()
        try:
            return fn(self.db, *args, **kwargs)
        except sqlite3.Error as exc:
            raise store_error(fn, exc) from exc
