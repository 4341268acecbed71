"""EmbeddedChatService: storage, idempotency, commands, scopes, edits and deletes."""

from __future__ import annotations

import sqlite3

import pytest

from mchat_actors.chat.embedded import open_embedded_chat_service
from mchat_actors.chat.protocol import ChatService
from mchat_actors.chat.rewrite import REWRITE_MAX_TOKENS
from mchat_actors.errors import ChatServiceError, ChatServiceRejected, ChatServiceTimeout

from .chat_fakes import FakeClock, FakeLLM
from .conftest import World, make_world, map_channels


def rows(world: World, sql: str, *args: object) -> list[sqlite3.Row]:
    return world.svc._conn.execute(sql, args).fetchall()  # noqa: SLF001 - white-box check


async def test_implements_the_chat_service_protocol(world: World) -> None:
    """The embedded service satisfies the runtime's ChatService Protocol."""
    assert isinstance(world.svc, ChatService)


async def test_users_are_found_by_email_in_any_case(world: World) -> None:
    """find_user_by_email ignores case; create_user with a known e-mail returns that user."""
    assert await world.svc.find_user_by_email("KIM@Example.com") == world.kim
    assert await world.svc.find_user_by_email("nobody@example.com") is None
    assert await world.svc.create_user(name="Kim again", email="Kim@EXAMPLE.com") == world.kim
    no_mail = await world.svc.create_user(name="bot", email=None)
    assert no_mail.email is None and no_mail.id != world.kim.id


async def test_membership_changes_are_idempotent(world: World) -> None:
    """Adding or removing a member twice is harmless."""
    for _ in range(2):
        await world.svc.add_room_member(world.quality.id, world.park.id)
    assert len(rows(world, "SELECT * FROM room_members WHERE user_id = ?", world.park.id)) == 2
    for _ in range(2):
        await world.svc.remove_room_member(world.quality.id, world.park.id)
    assert len(rows(world, "SELECT * FROM room_members WHERE user_id = ?", world.park.id)) == 1


async def test_stores_a_message_without_answering_unless_asked(world: World) -> None:
    """respond=False stores the message and produces no assistant message."""
    result = await world.say(world.quality, world.kim, "좋은 아침", post_id="p1", respond=False)
    assert result.assistant_message is None and result.user_message.is_new
    assert result.user_message.mchat_post_id == "p1"
    assert [r["content"] for r in rows(world, "SELECT * FROM chat_messages")] == ["좋은 아침"]


async def test_duplicate_post_id_returns_the_stored_message_and_does_nothing(world: World) -> None:
    """A post id seen before gives is_new=False, the earlier answer and no new memory."""
    first = await world.say(world.quality, world.kim, "/remember X부품 불량률 12%", post_id="p1")
    again = await world.say(world.quality, world.kim, "/remember X부품 불량률 12%", post_id="p1")
    assert first.assistant_message and len(first.extracted_memories) == 2
    assert not again.user_message.is_new and again.user_message.id == first.user_message.id
    assert again.assistant_message == first.assistant_message
    assert again.extracted_memories == ()
    assert len(rows(world, "SELECT * FROM chat_messages WHERE role = 'user'")) == 1
    assert len(rows(world, "SELECT * FROM memories")) == 2


async def test_redelivered_post_that_was_never_answered_is_answered_once(world: World) -> None:
    """Stored without an answer (a crash before answering): the re-delivery answers it."""
    await world.svc.send_message(world.quality.id, world.kim.id, "/remember 배포는 금요일",
                                 post_id="p7", respond=False)
    again = await world.svc.send_message(world.quality.id, world.kim.id,
                                         "/remember 배포는 금요일", post_id="p7", respond=True,
                                         prompt="/remember 배포는 금요일")
    assert not again.user_message.is_new and again.assistant_message
    third = await world.svc.send_message(world.quality.id, world.kim.id,
                                         "/remember 배포는 금요일", post_id="p7", respond=True,
                                         prompt="/remember 배포는 금요일")
    assert third.assistant_message == again.assistant_message and third.extracted_memories == ()
    assert len(rows(world, "SELECT * FROM chat_messages WHERE role = 'assistant'")) == 1


async def test_unknown_room_or_user_is_rejected(world: World) -> None:
    """Messages for a room or user the service never created are refused."""
    with pytest.raises(ChatServiceRejected):
        await world.svc.send_message("nope", world.kim.id, "hi")  # type: ignore[arg-type]
    with pytest.raises(ChatServiceRejected):
        await world.svc.send_message(world.quality.id, "nope", "hi")  # type: ignore[arg-type]


async def test_answers_are_stored_as_assistant_messages_in_the_thread(world: World) -> None:
    """The answer is stored with role assistant and the triggering post as its root."""
    await world.say(world.quality, world.kim, "/help", post_id="p9")
    (answer,) = rows(world, "SELECT * FROM chat_messages WHERE role = 'assistant'")
    assert answer["root_id"] == "p9" and answer["mchat_post_id"] == "p9:answer"
    assert "/remember" in answer["content"]


async def test_remember_stores_room_and_personal_memories_masked(world: World) -> None:
    """/remember stores a room and a personal memory, RRN and card masked, phone and e-mail kept,
    and confirms what it stored."""
    result = await world.say(world.quality, world.kim,
                             "/remember 출하 담당 kim@example.com 010-1234-5678 "
                             "900101-1234568 4111111111111111", post_id="p1",
                             permalink="http://mm/p1")
    room_memory, personal = result.extracted_memories
    assert (room_memory.scope, room_memory.room_id) == ("room", world.quality.id)
    assert (personal.scope, personal.owner_id) == ("personal", world.kim.id)
    for memory in result.extracted_memories:
        assert memory.content == "출하 담당 kim@example.com 010-1234-5678 [RRN] [CARD]"
        assert memory.source_post_id == "p1" and memory.permalink == "http://mm/p1"
    assert "출하 담당 kim@example.com 010-1234-5678 [RRN] [CARD]" in (
        result.assistant_message or "")
    (stored,) = rows(world, "SELECT content FROM chat_messages WHERE role = 'user'")
    assert "kim@example.com" in stored["content"]  # the message itself is kept as written


async def test_remember_supersedes_the_same_subject_and_keeps_the_old_version(
        world: World) -> None:
    """A new figure for the same subject is a new version; the old one is kept, superseded;
    an exact repeat changes nothing; another part's figure is another memory."""
    first = await world.say(world.quality, world.kim, "/remember X부품 불량률 12%")
    second = await world.say(world.quality, world.kim, "/remember X부품 불량률 15%")
    third = await world.say(world.quality, world.kim, "/remember x부품   불량률 15%")
    old_ids = [int(m.id[1:]) for m in first.extracted_memories]
    new_ids = [int(m.id[1:]) for m in second.extracted_memories]
    assert old_ids != new_ids and third.extracted_memories == ()
    assert "대체" in (second.assistant_message or "")
    assert "이미 같은 내용" in (third.assistant_message or "")
    for old, new in zip(old_ids, new_ids, strict=True):
        (row,) = rows(world, "SELECT * FROM memories WHERE id = ?", old)
        assert row["content"] == "X부품 불량률 12%" and row["superseded_by"] == new
        assert row["valid_to"] is not None
    current = rows(world, "SELECT content FROM memories WHERE valid_to IS NULL")
    assert [r["content"] for r in current] == ["X부품 불량률 15%"] * 2
    other = await world.say(world.quality, world.kim, "/remember Y부품 불량률 15%")
    assert "대체" not in (other.assistant_message or "")
    assert len(rows(world, "SELECT * FROM memories WHERE valid_to IS NULL")) == 4


async def test_remember_without_text_shows_usage(world: World) -> None:
    """/remember alone stores nothing and explains the usage."""
    result = await world.say(world.quality, world.kim, "/remember")
    assert "사용법" in (result.assistant_message or "") and result.extracted_memories == ()


async def test_question_is_answered_from_memories(world: World) -> None:
    """'X부품 불량률 몇 %야?' is answered with the remembered 12%."""
    await world.say(world.quality, world.kim, "/remember X부품 불량률 12%")
    await world.say(world.quality, world.kim, "/remember Y부품 불량률 3%")
    result = await world.say(world.quality, world.lee, "오늘 X부품 불량률 몇 %야?")
    answer = result.assistant_message or ""
    assert "12%" in answer.splitlines()[1] and not result.ephemeral


async def test_question_without_memories_says_so(world: World) -> None:
    """A question nothing answers gets a plain 'nothing stored' in its language."""
    result = await world.say(world.quality, world.kim, "When is the next release?")
    assert (result.assistant_message or "").startswith("I have no stored memory")


async def test_search_is_ephemeral_and_labels_scopes(world: World) -> None:
    """/search lists matches privately with ids and labels for this room, other rooms, personal."""
    await world.svc.add_room_member(world.secret.id, world.kim.id)
    await world.say(world.quality, world.kim, "/remember 배포는 금요일")
    await world.say(world.secret, world.park, "/remember 비밀 배포 계획 검토")
    result = await world.say(world.quality, world.kim, "/search 배포")
    text = result.assistant_message or ""
    assert result.ephemeral
    assert "배포는 금요일" in text and "이 방" in text and "`m" in text
    # shown to kim only (ephemeral): the private room kim is in is searched too
    assert "#secret" in text
    dm = await world.dm(world.kim)
    text = (await world.say(dm, world.kim, "/search 배포")).assistant_message or ""
    assert "#secret" in text and "개인" in text  # in kim's DM: kim's personal copy too


async def test_search_why_shows_how_each_memory_matched(world: World) -> None:
    """/search --why: under each memory, each concept of the query and how the memory says it:
    exactly, through a glossary synonym (결함 -> 불량), or not at all."""
    await world.say(world.quality, world.kim, "/remember X부품 불량률 12%")
    result = await world.say(world.quality, world.kim, "/search --why X부품 결함률")
    text = result.assistant_message or ""
    assert result.ephemeral and "X부품 불량률 12%" in text
    why = next(line for line in text.splitlines() if "↳" in line)
    assert "부품: exact 1.00" in why and "결함: glossary:불량 0.85" in why
    plain = (await world.say(world.quality, world.kim, "/search X부품 결함률")).assistant_message
    assert "↳" not in (plain or "")


async def test_search_without_matches_says_so(world: World) -> None:
    """/search with no match says nothing matched."""
    result = await world.say(world.quality, world.kim, "/search 주차장")
    assert "맞는 기억이 없습니다" in (result.assistant_message or "") and result.ephemeral


async def test_forget_by_query_deletes_the_match_and_its_personal_copy(world: World) -> None:
    """/forget <query> deletes the best match and the asker's twin copy, and says what it was."""
    await world.say(world.quality, world.kim, "/remember X부품 불량률 12%")
    await world.say(world.quality, world.kim, "/remember 배포는 금요일")
    result = await world.say(world.quality, world.kim, "/forget X부품 불량률")
    assert "잊었습니다: X부품 불량률 12%" in (result.assistant_message or "")
    live = rows(world, "SELECT content FROM memories WHERE forgotten_at IS NULL")
    assert [r["content"] for r in live] == ["배포는 금요일"] * 2
    audit = rows(world, "SELECT action, actor FROM memory_audit WHERE action = 'forgotten'")
    assert [(r["action"], r["actor"]) for r in audit] == [("forgotten", world.kim.id)] * 2
    answer = await world.say(world.quality, world.kim, "X부품 불량률 몇 %야?")
    assert "12%" not in (answer.assistant_message or "")


async def test_forget_by_id_and_weak_matches(world: World) -> None:
    """/forget m<id> deletes that memory; a weak query match deletes nothing."""
    stored = await world.say(world.quality, world.kim, "/remember 회의는 월요일 10시")
    result = await world.say(world.quality, world.lee, "/forget 회의록 위치")
    assert "찾지 못했습니다" in (result.assistant_message or "")
    memory_id = stored.extracted_memories[0].id
    result = await world.say(world.quality, world.lee, f"/forget {memory_id}")
    assert "잊었습니다" in (result.assistant_message or "")
    (row,) = rows(world, "SELECT * FROM memories WHERE id = ?", int(memory_id[1:]))
    assert row["forgotten_at"] is not None and row["forgotten_by"] == world.lee.id
    assert row["content"] == "회의는 월요일 10시"  # kept: an admin may restore it


async def test_forget_cannot_reach_a_room_the_user_is_not_in(world: World) -> None:
    """Neither an id nor a query deletes a memory of a room the asker is not a member of."""
    stored = await world.say(world.secret, world.park, "/remember 비밀 배포 계획")
    room_memory_id = stored.extracted_memories[0].id
    for target in (room_memory_id, "비밀 배포 계획"):
        result = await world.say(world.quality, world.kim, f"/forget {target}")
        assert "찾지 못했습니다" in (result.assistant_message or "")
    assert len(rows(world, "SELECT * FROM memories WHERE forgotten_at IS NULL")) == 2


async def test_memory_lists_room_memories_without_an_llm(world: World) -> None:
    """/memory without an LLM lists the room's recent memories."""
    result = await world.say(world.quality, world.kim, "/memory")
    assert "저장된 기억이 없습니다" in (result.assistant_message or "")
    await world.say(world.quality, world.kim, "/remember 공급사 Acme 납기 5월 3일")
    result = await world.say(world.quality, world.lee, "/memory")
    assert "공급사 Acme 납기 5월 3일" in (result.assistant_message or "")


async def test_help_lists_commands_in_korean_and_english(world: World) -> None:
    """/help names every command, in Korean and in English."""
    text = (await world.say(world.quality, world.kim, "/help")).assistant_message or ""
    for word in ("/remember", "/search", "/forget", "/memory", "/help", "요약", "summary",
                 "기억", "memory"):
        assert word in text


async def test_never_answers_from_a_room_the_user_is_not_in(world: World) -> None:
    """Room memories of a room the asker is not a member of are never searched or quoted."""
    await world.say(world.secret, world.park, "/remember 비밀 프로젝트 배포는 3월 2일")
    for prompt in ("비밀 프로젝트 배포 언제야?", "/search 비밀 프로젝트"):
        result = await world.say(world.quality, world.kim, prompt)
        assert "3월 2일" not in (result.assistant_message or "")
    assert await world.svc.search(world.quality.id, world.kim.id, "비밀 프로젝트 배포") == []


async def test_other_peoples_personal_memories_stay_private(world: World) -> None:
    """A personal memory is visible only to its owner, even in a shared room."""
    await world.say(world.quality, world.lee, "/remember 내 연차는 5월 2일")
    await world.svc.db(lambda c: c.execute("DELETE FROM memories WHERE scope = 'room'"))
    kim_dm, lee_dm = await world.dm(world.kim), await world.dm(world.lee)
    assert await world.svc.search(kim_dm.id, world.kim.id, "연차") == []
    assert [m.scope for m in await world.svc.search(lee_dm.id, world.lee.id, "연차")] == [
        "personal"]
    # not even its owner sees it in a shared room: others read the answer
    assert await world.svc.search(world.quality.id, world.lee.id, "연차") == []


async def test_membership_decides_what_other_rooms_contribute(world: World) -> None:
    """Another room's memories count while the asker is a member, and stop when they leave."""
    await world.say(world.secret, world.park, "/remember 금형 교체 일정은 6월 10일")
    await world.svc.add_room_member(world.secret.id, world.kim.id)
    dm = await world.dm(world.kim)
    found = await world.svc.search(dm.id, world.kim.id, "금형 교체 일정")
    assert [m.room_id for m in found] == [world.secret.id]
    assert await world.svc.search(world.quality.id, world.kim.id, "금형 교체 일정") == []
    await world.svc.remove_room_member(world.secret.id, world.kim.id)
    assert await world.svc.search(dm.id, world.kim.id, "금형 교체 일정") == []


async def test_context_priority_room_then_personal_then_other_rooms(world: World) -> None:
    """Equally relevant memories rank this room first, then personal, then other rooms."""
    await world.svc.add_room_member(world.secret.id, world.kim.id)
    dm = await world.dm(world.kim)
    await world.svc.db(_insert_three_scopes, world, dm.id)
    found = await world.svc.search(dm.id, world.kim.id, "검사 기준")
    assert [m.content for m in found] == ["검사 기준 A", "검사 기준 B", "검사 기준 C"]


def _insert_three_scopes(conn: sqlite3.Connection, world: World, here: str) -> None:
    from mchat_actors.chat import repo

    for text, scope, room, owner in (("검사 기준 C", "room", world.secret.id, None),
                                     ("검사 기준 B", "personal", world.secret.id, world.kim.id),
                                     ("검사 기준 A", "room", here, None)):
        repo.save_memory(conn, text, scope=scope, kind="remember", room=room, owner=owner,
                         author=world.kim.id, source_post_id=None, permalink=None,
                         now_ms=int(world.clock.now * 1000))


async def test_edit_updates_the_message_and_its_memories_masked(world: World) -> None:
    """Editing a /remember post rewrites its memories (masked); unknown post ids are ignored."""
    await world.say(world.quality, world.kim, "/remember 담당 010-1111-2222", post_id="p1")
    await world.svc.edit_message(post_id="p1", content="@ai /remember 담당자 lee@example.com")
    (message,) = rows(world, "SELECT * FROM chat_messages WHERE mchat_post_id = 'p1'")
    assert message["content"] == "@ai /remember 담당자 lee@example.com"
    assert message["edited_at"] is not None
    live = rows(world, "SELECT content FROM memories WHERE valid_to IS NULL")
    assert [r["content"] for r in live] == ["담당자 lee@example.com"] * 2
    old = rows(world, "SELECT content FROM memories WHERE valid_to IS NOT NULL")
    assert [r["content"] for r in old] == ["담당 010-1111-2222"] * 2  # before the edit
    assert await world.svc.search(world.quality.id, world.kim.id, "담당자")
    await world.svc.edit_message(post_id="unknown", content="x")


async def test_edit_that_drops_the_command_deletes_its_memories(world: World) -> None:
    """A /remember post edited into ordinary text no longer backs any memory."""
    await world.say(world.quality, world.kim, "/remember 회의 10시", post_id="p1")
    await world.svc.edit_message(post_id="p1", content="오타였어요")
    assert rows(world, "SELECT * FROM memories WHERE deleted_at IS NULL") == []
    assert len(rows(world, "SELECT * FROM memories")) == 2  # retracted, not erased


async def test_delete_marks_the_message_and_drops_its_memories(world: World) -> None:
    """Deleting a post marks it deleted and deletes the memories sourced from it."""
    await world.say(world.quality, world.kim, "/remember X부품 불량률 12%", post_id="p1")
    await world.svc.delete_message(post_id="p1")
    (message,) = rows(world, "SELECT * FROM chat_messages WHERE mchat_post_id = 'p1'")
    assert message["deleted_at"] is not None
    assert rows(world, "SELECT * FROM memories WHERE deleted_at IS NULL") == []
    assert rows(world, "SELECT * FROM memories_fts") == []
    assert {r["action"] for r in rows(world, "SELECT action FROM memory_audit")} == {
        "created", "retracted"}
    await world.svc.delete_message(post_id="p1")  # twice is harmless


async def test_llm_errors_propagate_as_chat_service_errors(db_path: str, clock: FakeClock) -> None:
    """An LLM failure while answering reaches the caller as ChatServiceError; the post is kept."""
    llm = FakeLLM(error=ChatServiceTimeout("upstream said: secret detail"))
    async with open_embedded_chat_service(db_path, llm=llm, clock=clock) as svc:
        world = await make_world(svc, clock)
        with pytest.raises(ChatServiceError):
            await world.say(world.quality, world.kim, "X부품 불량률 몇 %야?", post_id="p1")
        assert len(rows(world, "SELECT * FROM chat_messages WHERE role = 'user'")) == 1
        assert rows(world, "SELECT * FROM chat_messages WHERE role = 'assistant'") == []


async def test_llm_answers_questions_with_retrieved_memories(db_path: str,
                                                             clock: FakeClock) -> None:
    """With an LLM, the answer is the model's text and the prompt carries the memories."""
    llm = FakeLLM("X부품 불량률은 12%입니다.")
    async with open_embedded_chat_service(db_path, llm=llm, clock=clock) as svc:
        world = await make_world(svc, clock)
        await world.say(world.quality, world.kim, "/remember X부품 불량률 12%")
        result = await world.say(world.quality, world.lee, "X부품 불량률 몇 %야?")
        assert result.assistant_message == "X부품 불량률은 12%입니다."
        assert "X부품 불량률 12%" in llm.calls[-1][1]["content"]  # the context message


async def test_reopening_keeps_data_and_other_tables(db_path: str, clock: FakeClock) -> None:
    """Opening an existing file keeps its data and leaves tables the runtime owns alone."""
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY, message TEXT)")
    conn.execute("INSERT INTO outbox (message) VALUES ('pending')")
    conn.commit()
    conn.close()
    async with open_embedded_chat_service(db_path, clock=clock) as svc:
        world = await make_world(svc, clock)
        await world.say(world.quality, world.kim, "/remember 배포는 금요일")
    async with open_embedded_chat_service(db_path, clock=clock) as svc:
        assert await svc.search(world.quality.id, world.kim.id, "배포")
        assert svc._conn.execute("SELECT message FROM outbox").fetchall()[0][0] == "pending"  # noqa: SLF001


async def test_without_a_prompt_the_content_minus_mentions_is_the_question(world: World) -> None:
    """respond=True without a prompt answers the content, leading mentions removed."""
    await world.say(world.quality, world.kim, "/remember AI 모델 배포는 6월")
    await world.say(world.quality, world.kim, "/remember X부품 불량률 12%")
    result = await world.svc.send_message(world.quality.id, world.lee.id,
                                          "@ai X부품 불량률 몇 %야?", respond=True)
    lines = (result.assistant_message or "").splitlines()
    assert "12%" in lines[1] and len(lines) == 2


async def test_a_bare_mention_gets_a_pointer_to_help(world: World) -> None:
    """'@ai' alone is answered with a short pointer to /help, in both languages."""
    result = await world.svc.send_message(world.quality.id, world.kim.id, "@ai", respond=True,
                                          prompt="")
    assert "/help" in (result.assistant_message or "") and "How can I help" in (
        result.assistant_message or "")


async def test_forget_cannot_reach_a_public_room_the_user_is_not_in(world: World,
                                                                   db_path: str) -> None:
    """A public room's memories are readable by its team, but only its members may forget
    them."""
    ops = await world.svc.create_room(name="ops", kind="channel")
    await map_channels(db_path, "team-qa", ops, world.quality)
    await world.svc.add_room_member(ops.id, world.park.id)
    stored = await world.say(ops, world.park, "/remember 창고 이전 일정 6월 1일")
    dm = await world.dm(world.kim)
    assert "6월 1일" in ((await world.say(dm, world.kim, "창고 이전 일정 언제야?"))
                        .assistant_message or "")
    for target in (stored.extracted_memories[0].id, "창고 이전 일정"):
        result = await world.say(world.quality, world.kim, f"/forget {target}")
        assert "찾지 못했습니다" in (result.assistant_message or "")
    assert rows(world, "SELECT * FROM memories WHERE forgotten_at IS NOT NULL") == []


async def test_with_an_llm_a_question_is_also_searched_in_the_other_language(
        db_path: str, clock: FakeClock) -> None:
    """A Korean question finds an English memory through the LLM's translation of it, which
    then reaches the answer's context; a failed translation leaves the lexical search."""

    def reply(messages):  # noqa: ANN001, ANN202
        if "Translate" in messages[0]["content"]:
            assert "English" in messages[0]["content"]
            return "What was the M3 screw defect rate?"
        return "answer"

    llm = FakeLLM(reply)
    async with open_embedded_chat_service(db_path, llm=llm, clock=clock) as svc:
        world = await make_world(svc, clock)
        await world.say(world.quality, world.kim,
                        "/remember Defect rate for the M3 screws was 0.8% last month")
        await world.say(world.quality, world.kim, "M3 나사 불량률 얼마였어?")
        translate, answer = llm.calls[-2], llm.calls[-1]
        assert translate[1]["content"] == "M3 나사 불량률 얼마였어?"
        assert "0.8%" in answer[1]["content"]  # the English memory is in the context
        assert llm.max_tokens[-2] == REWRITE_MAX_TOKENS

    def failing(messages):  # noqa: ANN001, ANN202
        if "Translate" in messages[0]["content"]:
            raise ChatServiceTimeout("slow")
        return "answer"

    llm = FakeLLM(failing)
    async with open_embedded_chat_service(db_path + ".2", llm=llm, clock=clock) as svc:
        world = await make_world(svc, clock)
        await world.say(world.quality, world.kim,
                        "/remember Defect rate for the M3 screws was 0.8% last month")
        result = await world.say(world.quality, world.kim, "M3 screw defect rate?")
        assert result.assistant_message == "answer" and "0.8%" in llm.calls[-1][1]["content"]
