from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mchat_actors.messages import ChannelId, MattermostUserId, Post, PostId
from mchat_actors.trigger import MARKER, BotIdentity, decide, reply_root

BOT = BotIdentity(user_id="bot1", username="mchat-bot", extra_names=("품질봇",))


def post(message: str, *, user: str = "u1", type_: str = "", root: str | None = None) -> Post:
    return Post(id=PostId("p1"), channel_id=ChannelId("c1"), user_id=MattermostUserId(user),
                message=message, type=type_, root_id=PostId(root) if root else None)


def test_mention_of_ai_gets_an_answer_with_the_mention_removed():
    """`@ai` anywhere in a channel post triggers, and the prompt drops the mention."""
    d = decide(post("@ai 오늘 X부품 불량률 몇 %야?"), channel_type="O", bot=BOT)
    assert (d.respond, d.store, d.reason) == (True, True, "mention")
    assert d.prompt == "오늘 X부품 불량률 몇 %야?"


@given(st.sampled_from(["@ai", "@AI", "@Ai", "@mchat-bot", "@MCHAT-BOT", "@품질봇"]),
       st.text(alphabet="가나다 abc?", max_size=20))
def test_mentions_are_case_insensitive(mention, rest):
    """Every spelling of every bot name triggers, whatever follows after a space."""
    d = decide(post(f"{rest} {mention} {rest}"), channel_type="O", bot=BOT)
    assert d.respond and d.reason == "mention"


def test_lookalike_names_do_not_trigger():
    """`@aide`, `@ai.team` and e-mail addresses are not mentions of the bot."""
    for text in ("@aide 안녕", "ping @ai.team", "mail me at bob@ai", "@mchat-botx hi"):
        assert not decide(post(text), channel_type="O", bot=BOT).respond, text


def test_commands_in_both_forms():
    """`/remember x` at the start and `@ai /remember x` are the same command."""
    a = decide(post("/remember X부품 불량률 12%"), channel_type="O", bot=BOT)
    b = decide(post("@ai /remember X부품 불량률 12%"), channel_type="O", bot=BOT)
    assert a.respond and b.respond
    assert a.prompt == b.prompt == "/remember X부품 불량률 12%"
    assert decide(post("/unknown thing"), channel_type="O", bot=BOT).respond is False


def test_help_me_is_a_question_not_a_command():
    d = decide(post("@ai help me with the report"), channel_type="O", bot=BOT)
    assert d.respond and d.prompt == "help me with the report"


def test_dm_posts_are_answered_unless_disabled():
    """In a DM every post gets an answer, unless MCHAT_RESPOND_TO_ALL_DM is false."""
    assert decide(post("hello"), channel_type="D", bot=BOT).respond
    quiet = BotIdentity(user_id="bot1", username="mchat-bot", respond_to_all_dm=False)
    assert not decide(post("hello"), channel_type="D", bot=quiet).respond
    assert not decide(post("hello"), channel_type="G", bot=BOT).respond


@given(st.text(max_size=40))
def test_own_posts_never_answered(text):
    """Posts by the bot's user id or starting with the marker are ignored, whatever they say."""
    assert not decide(post(f"@ai {text}", user="bot1"), channel_type="D", bot=BOT).respond
    marked = decide(post(f"{MARKER} @ai {text}"), channel_type="D", bot=BOT)
    assert not marked.respond and not marked.store


def test_system_posts_are_not_stored():
    d = decide(post("kim joined the channel", type_="system_join_channel"), channel_type="O",
               bot=BOT)
    assert not d.store and not d.respond


def test_reply_root_is_the_thread_root():
    """Thread mode answers under the post's root (or the post itself); channel mode at top."""
    assert reply_root(post("x"), "thread") == "p1"
    assert reply_root(post("x", root="r9"), "thread") == "r9"
    assert reply_root(post("x", root="r9"), "channel") is None
