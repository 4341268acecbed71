"""Issue #8's four examples end to end: the fake Mattermost, real sockets, the embedded service,
the demo's wording. Each failed on the code before versioned, validated, audience-scoped
memories (see the issue: overwritten siblings, garbled identifiers, a leaked secret, answers
quoting every part's figure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mchat_actors.testing import FakeMattermost
from mchat_actors.testing.seed import default_seed
from tests.scenarios.harness import replies_to, running_bot, wait_until


async def ask(mm: FakeMattermost, user: str, channel: str, text: str) -> str:
    """Post ``text`` and return the bot's one reply to it."""
    post = await mm.post_as(user, channel, text)
    await wait_until(lambda: replies_to(mm, post["id"]))
    return str(replies_to(mm, post["id"])[0]["message"])


def visible_in(mm: FakeMattermost, channel: str) -> list[Mapping[str, Any]]:
    return list(mm.posts(channel, include_deleted=False))


async def test_siblings_are_not_overwritten_and_answer_for_themselves(tmp_path) -> None:  # noqa: ANN001
    """Example 1: 라인 2 / 라인 3, 금형 1호기 / 2호기, LOT 4471 / 4472 are separate memories."""
    async with FakeMattermost() as mm, running_bot(mm, str(tmp_path / "b.db")):
        for first, second in (("라인 2 가동률 87%", "라인 3 가동률 90%"),
                              ("금형 1호기 세척 주기 5000샷", "금형 2호기 세척 주기 3000샷"),
                              ("LOT 4471 출하 보류", "LOT 4472 출하 승인")):
            await ask(mm, "kim", "quality", f"@ai /remember {first}")
            reply = await ask(mm, "kim", "quality", f"@ai /remember {second}")
            assert "업데이트" not in reply and "대체" not in reply
        assert "87%" in (a := await ask(mm, "lee", "quality", "@ai 라인 2 가동률 알려줘"))
        assert "90%" not in a
        assert "5000샷" in (a := await ask(mm, "lee", "quality", "@ai 금형 1호기 세척 주기는?"))
        assert "3000샷" not in a
        assert "보류" in (a := await ask(mm, "lee", "quality", "@ai LOT 4471 출하 어떻게 됐어?"))
        assert "승인" not in a


async def test_identifiers_are_stored_as_written(tmp_path) -> None:  # noqa: ANN001
    """Example 2: a lot number and a drawing number survive /remember and come back intact."""
    async with FakeMattermost() as mm, running_bot(mm, str(tmp_path / "b.db")):
        reply = await ask(mm, "kim", "quality", "@ai /remember LOT 20240517-0012345 는 재검사 대상")
        assert "LOT 20240517-0012345 는 재검사 대상" in reply and "[CARD]" not in reply
        reply = await ask(mm, "kim", "quality", "@ai /remember 도면 02-1234-5678 개정 C 적용")
        assert "도면 02-1234-5678" in reply and "[PHONE]" not in reply
        answer = await ask(mm, "lee", "quality", "@ai LOT 20240517-0012345 재검사해야 돼?")
        assert "LOT 20240517-0012345" in answer


async def test_a_private_channels_secret_stays_there(tmp_path) -> None:  # noqa: ANN001
    """Example 3: kim's secret from the private `defects` channel is neither answered nor
    searched into `town-square`; /search results go to kim alone (by DM: the bot has no right
    to post ephemerally), with a one-line note in the thread."""
    async with FakeMattermost() as mm, running_bot(mm, str(tmp_path / "b.db")):
        await ask(mm, "kim", "defects",
                  "@ai /remember 신제품 코드명은 블루버드, 출시일 3월 2일 (대외비)")
        answer = await ask(mm, "kim", "town-square", "@ai 신제품 코드명 뭐였지?")
        assert "블루버드" not in answer and "DM" in answer
        post = await mm.post_as("kim", "town-square", "@ai /search 코드명")
        dm = await mm.dm_channel("kim", "mchat-bot")
        await wait_until(lambda: any("블루버드" in p["message"] for p in visible_in(mm, dm.id)))
        await wait_until(lambda: any(p["root_id"] == post["id"]
                                     for p in visible_in(mm, "town-square")))
        assert not any("블루버드" in p["message"] for p in visible_in(mm, "town-square"))
        assert mm.app.ephemeral_posts == []  # refused: no create_post_ephemeral permission
        # lee is in `defects` too, but asks in town-square: nothing
        answer = await ask(mm, "lee", "town-square", "@ai 코드명 블루버드 출시일 언제야?")
        assert "3월 2일" not in answer


async def test_search_is_ephemeral_when_the_bot_may_post_so(tmp_path) -> None:  # noqa: ANN001
    """With the permission (an admin bot), /search results are an ephemeral post for kim."""
    seed = default_seed()
    seed["bot"]["roles"] = "system_user system_admin"
    async with FakeMattermost(seed=seed) as mm, running_bot(mm, str(tmp_path / "b.db")):
        await ask(mm, "kim", "defects", "@ai /remember 신제품 코드명은 블루버드")
        post = await mm.post_as("kim", "town-square", "@ai /search 코드명")
        await wait_until(lambda: mm.app.ephemeral_posts)
        [shown] = mm.app.ephemeral_posts
        assert shown["to_user_id"] == mm.user("kim").id and "블루버드" in str(shown["message"])
        assert shown["root_id"] == post["id"]
        assert not any("블루버드" in p["message"] for p in visible_in(mm, "town-square"))


async def test_a_question_about_one_part_is_answered_with_that_part(tmp_path) -> None:  # noqa: ANN001
    """Example 4: with X/Y/Z부품 memories, the X부품 question gets X부품's figure only."""
    async with FakeMattermost() as mm, running_bot(mm, str(tmp_path / "b.db")):
        for text in ("X부품 불량률 12%", "Y부품 불량률 3.5%", "Z부품 불량률 7%"):
            await ask(mm, "kim", "quality", f"@ai /remember {text}")
        answer = await ask(mm, "lee", "quality", "@ai X부품 불량률 몇 %야?")
        assert "12%" in answer and "3.5%" not in answer and "7%" not in answer
        assert "민수" in answer and "KST" in answer and "/_redirect/pl/" in answer


async def test_leaving_a_private_channel_ends_access_even_without_member_events(
        tmp_path) -> None:  # noqa: ANN001
    """Polling sees no member events: the member re-check after sweeps still removes kim from
    `defects` once she left it, so her DM no longer answers from its memories."""
    async with FakeMattermost() as mm:
        dm = await mm.dm_channel("kim", "mchat-bot")
        # a post before the start gives the DM a cursor: the poller reads channels it has a
        # cursor for (a channel's first post after the first sweep is not polled today)
        await mm.post_as("kim", dm.id, "안녕하세요")
        async with running_bot(mm, str(tmp_path / "b.db"), MCHAT_MODE="polling") as rt:
            await _leave_and_lose_access(mm, rt, dm.id)


async def _leave_and_lose_access(mm: FakeMattermost, rt: Any, dm: str) -> None:
    """lee remembers in `defects`; kim, a member, sees it in her DM until she leaves."""
    if True:
        assert rt.sweeper.after_sweep is not None
        rt.sweeper.after_sweep.poll_every_s = 0.0
        await ask(mm, "lee", "defects", "@ai /remember 신제품 출시일은 3월 2일")
        assert "3월 2일" in await ask(mm, "kim", dm, "신제품 출시일 언제야?")
        await mm.remove_member("defects", "kim")
        checks = rt.sweeper.after_sweep.checks
        await wait_until(lambda: rt.sweeper.after_sweep.checks >= checks + 2)
        assert "3월 2일" not in await ask(mm, "kim", dm, "신제품 출시일 언제야?")


async def test_an_update_is_a_new_version_and_the_history_is_listable(tmp_path) -> None:  # noqa: ANN001
    """리드타임 2주 then 3주: the answer is 3주 and says it changed; '예전에는?' and
    /memory history show both, with who said each."""
    async with FakeMattermost() as mm, running_bot(mm, str(tmp_path / "b.db")):
        await ask(mm, "kim", "quality", "@ai /remember Sunrise 리드타임 2주")
        reply = await ask(mm, "lee", "quality", "@ai /remember Sunrise 리드타임 3주")
        assert "대체" in reply and "이력" in reply
        answer = await ask(mm, "park", "quality", "@ai sunrise 리드타임 얼마나 걸려?")
        assert "3주 (" in answer and "변경, 이전: 2주)" in answer
        answer = await ask(mm, "park", "quality", "@ai sunrise 리드타임 예전에는 몇 주였어?")
        assert "[이전]" in answer and "2주" in answer and "[현재]" in answer
        post = await mm.post_as("park", "quality", "@ai /memory history sunrise 리드타임")
        dm = await mm.dm_channel("park", "mchat-bot")
        await wait_until(lambda: any("이력" in p["message"] for p in visible_in(mm, dm.id)))
        [history] = [p for p in visible_in(mm, dm.id) if "이력" in p["message"]]
        assert history["message"].index("2주") < history["message"].index("3주")
        assert not any(p["root_id"] == post["id"] and "2주" in p["message"]
                       for p in visible_in(mm, "quality"))
