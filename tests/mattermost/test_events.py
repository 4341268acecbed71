from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mchat_actors.errors import MalformedEvent
from mchat_actors.mattermost.events import (
    ActionReply,
    Event,
    Hello,
    Ignored,
    parse_frame,
    posts_from_list,
)
from mchat_actors.messages import MemberJoined, MemberLeft, PostCreated, PostDeleted


def frame(event, data, seq=1, **broadcast):
    return json.dumps({"event": event, "data": data, "seq": seq,
                       "broadcast": {"omit_users": None, "user_id": "", "channel_id": "",
                                     "team_id": "", **broadcast}})


POST = {"id": "p1", "channel_id": "c1", "user_id": "u1", "message": "hi @ai", "root_id": "",
        "create_at": 5, "update_at": 5, "props": {"from_bot": "true"}, "type": ""}


def test_hello_carries_connection_id():
    f = parse_frame(frame("hello", {"connection_id": "abc", "server_version": "10"}, seq=0))
    assert f == Hello(seq=0, connection_id="abc", server_version="10")


def test_posted_is_decoded_twice():
    """data.post is a JSON string; the result is a PostCreated with the post's fields."""
    f = parse_frame(frame("posted", {"post": json.dumps(POST), "channel_type": "O",
                                     "sender_name": "@kim"}, seq=7, channel_id="c1"))
    assert isinstance(f, Event) and f.seq == 7
    assert isinstance(f.value, PostCreated)
    assert f.value.post.id == "p1" and f.value.post.from_bot and f.value.channel_type == "O"
    assert f.value.post.root_id is None


def test_post_deleted_and_membership():
    assert isinstance(parse_frame(frame("post_deleted", {"post": json.dumps(POST)})).value,
                      PostDeleted)
    joined = parse_frame(frame("user_added", {"user_id": "u2", "team_id": "t"},
                               channel_id="c1")).value
    assert joined == MemberJoined(channel_id="c1", user_id="u2", team_id="t")
    old_style = parse_frame(frame("user_added", {"user": {"id": "u3"}}, channel_id="c1")).value
    assert old_style.user_id == "u3"
    left_a = parse_frame(frame("user_removed", {"user_id": "u2", "remover_id": "x"},
                               channel_id="c1")).value
    left_b = parse_frame(frame("user_removed", {"channel_id": "c1", "remover_id": "x"},
                               user_id="bot")).value
    assert left_a == MemberLeft(channel_id="c1", user_id="u2")
    assert left_b == MemberLeft(channel_id="c1", user_id="bot")


def test_replies_and_unknown_events():
    assert parse_frame('{"status":"OK","seq_reply":3,"data":{"text":"pong"}}') == ActionReply(
        seq_reply=3, status="OK", data={"text": "pong"})
    assert parse_frame('{"status":"OK"}').seq_reply is None
    assert parse_frame(frame("typing", {"user_id": "u"})) == Ignored(seq=1, event="typing")


@pytest.mark.parametrize("text", [
    "not json", "[1,2]", '{"foo":1}', '{"event":5}',
    '{"event":"posted","data":{"post":"{broken"},"seq":1}',
    '{"event":"posted","data":{"post":"{}"},"seq":1}',
    '{"event":"posted","data":{"post":"[]"},"seq":1}',
    '{"event":"user_added","data":{},"seq":1}',
    '{"event":"hello","data":[],"seq":0}',
    '{"event":"posted","data":{},"seq":"x"}',
])
def test_malformed_frames_raise_malformed_event(text):
    with pytest.raises(MalformedEvent):
        parse_frame(text)


@given(st.one_of(st.text(), st.binary(), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda c: st.lists(c) | st.dictionaries(st.text(), c), max_leaves=10).map(json.dumps)))
def test_parsing_never_raises_anything_but_malformed_event(text):
    """Whatever arrives, parse_frame returns a frame or raises MalformedEvent."""
    try:
        parse_frame(text)
    except MalformedEvent:
        pass


def test_posts_from_list_is_oldest_first_and_skips_context_posts():
    pl = {"order": ["b", "a"], "posts": {
        "a": dict(POST, id="a", create_at=1), "b": dict(POST, id="b", create_at=2),
        "root": dict(POST, id="root", create_at=0)}}
    assert [p.id for p in posts_from_list(pl)] == ["a", "b"]
