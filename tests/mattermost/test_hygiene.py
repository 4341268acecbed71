"""Output hygiene: no exception text, no channel-wide mentions, no link previews; for the
embedded service with an LLM, a custom ChatService, and slash answers alike."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from mchat_actors.mattermost.hygiene import (
    APOLOGY,
    ZWSP,
    clean_answer,
    exception_marker,
    neutralize_mentions,
)
from mchat_actors.messages import ChannelId, SendReply
from mchat_actors.testing import FakeMattermost
from mchat_actors.testing.fake_openai import FakeOpenAI, Reply
from mchat_actors.trigger import MARKER
from tests.fakes import FakeChat
from tests.scenarios.harness import bot_posts, replies_to, running_bot, wait_until

SYSTEM = {"@channel", "@all", "@here"}


def server_mentions(text: str) -> set[str]:
    """Mattermost's StandardMentionParser word split: a word is letters, digits and .-_:@;
    leading ``:.-_`` trimmed; words with ``.-:`` also count by their parts."""
    found = set()
    for word in re.split(r"[^\w.\-:@]+", text):
        word = word.lstrip(":.-_")
        parts = [word, *re.split(r"[.\-:]", word)] if re.search(r"[.\-:]", word) else [word]
        found |= {p.lower() for p in parts if p.lower() in SYSTEM}
    return found


def test_wide_mentions_are_neutralised_but_read_the_same():
    text = "@channel 공지, @ALL-hands, (@here). @allison @channels email@all.example"
    clean = neutralize_mentions(text)
    assert server_mentions(text) == SYSTEM
    assert server_mentions(clean) == set()
    assert clean.replace(ZWSP, "") == text
    assert "@allison" in clean and "@channels" in clean  # people and other words untouched


@given(st.text(alphabet=st.sampled_from(list("@channelhr ALL.-_:x\n")), max_size=80))
def test_after_cleaning_the_server_sees_no_wide_mention_and_cleaning_is_idempotent(text):
    clean = clean_answer(text)
    assert server_mentions(clean) == set()
    assert clean_answer(clean) == clean


def test_exception_text_is_replaced_by_the_apology():
    cases = [
        'Traceback (most recent call last):\n  File "/srv/app.py", line 3, in f\nKeyError: 1',
        "httpx.ConnectError: [Errno 111] Connection refused to 10.1.2.3:5432",
        "sqlite3.OperationalError: database is locked",
        "오류: <class 'psycopg.OperationalError'> at host db01",
        "java.lang.NullPointerException: x\n    at com.corp.Agent.run(Agent.java:42)",
    ]
    for text in cases:
        assert exception_marker(text), text
        assert clean_answer(text) == APOLOGY
    assert clean_answer(f"{MARKER} {cases[0]}") == f"{MARKER} {APOLOGY}"


def test_ordinary_answers_that_mention_errors_are_kept():
    for text in ("X부품 불량률은 12%입니다.", "ValueError는 값이 잘못됐을 때 납니다.",
                 "로그에 Error: 가 보이면 재시작하세요", "see https://wiki.example/x"):
        assert exception_marker(text) is None
        assert clean_answer(text) == text


def test_every_send_reply_is_cleaned():
    reply = SendReply(channel_id=ChannelId("c"), message=f"{MARKER} @here 보세요",
                      reply_key="k")
    assert reply.message == f"{MARKER} @{ZWSP}here 보세요"


async def test_posted_answers_are_neutralised_and_not_unfurled(tmp_path):
    async with FakeMattermost() as mm:
        async with running_bot(mm, str(tmp_path / "bot.db"), chat=FakeChat()) as rt:
            await wait_until(lambda: rt.reconnect_stats.state.mode == "websocket")
            post = await mm.post_as("kim", "town-square",
                                    "@ai @channel 에게 https://evil.example/track.png 알려줘")
            await wait_until(lambda: replies_to(mm, post["id"]))
    reply = replies_to(mm, post["id"])[0]
    assert server_mentions(reply["message"]) == set()
    assert "https://evil.example/track.png" in reply["message"]
    assert reply["props"]["unsafe_links"] == "true"


async def test_an_llm_answer_with_a_traceback_is_never_posted(tmp_path):
    leak = ('Traceback (most recent call last):\n  File "/opt/agent/db.py", line 9\n'
            "psycopg.OperationalError: password authentication failed for user agent")
    async with FakeOpenAI(api_key="sk-llm-1") as llm, FakeMattermost() as mm:
        llm.script(Reply(leak), Reply(leak), Reply(leak))
        async with running_bot(mm, str(tmp_path / "bot.db"), LLM_BASE_URL=llm.url,
                               LLM_API_KEY="sk-llm-1", LLM_MODEL="m") as rt:
            await wait_until(lambda: rt.reconnect_stats.state.mode == "websocket")
            post = await mm.post_as("kim", "town-square", "@ai 오늘 DB 상태 어때?")
            await wait_until(lambda: replies_to(mm, post["id"]), timeout=20)
    assert llm.requests, "the LLM was not asked"
    text = " ".join(p["message"] for p in bot_posts(mm))
    assert "Traceback" not in text and "password authentication" not in text
    assert APOLOGY in replies_to(mm, post["id"])[0]["message"]


def test_the_kept_marker_is_the_triggers_marker():
    from mchat_actors.mattermost import hygiene

    assert hygiene._MARKER == MARKER
