"""With an LLM, /remember asks whether a new memory updates a similar one the rules would keep
beside it; the answer is validated and can never merge different identifiers."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from mchat_actors.chat.embedded import open_embedded_chat_service
from mchat_actors.errors import ChatServiceTimeout

from .chat_fakes import FakeClock, FakeLLM
from .conftest import make_world


def decider(decision: str, *, pick: str = "") -> FakeLLM:
    """A fake model: for update decisions, ``decision`` about the existing memory containing
    ``pick``; for anything else, a fixed answer."""
    def reply(messages: Sequence[Mapping[str, str]]) -> str:
        if "EXISTING" not in messages[-1]["content"]:
            return "ok"
        lines = messages[-1]["content"].splitlines()[1:]
        existing = [json.loads(line) for line in lines if line.startswith("{")]
        chosen = next((e["id"] for e in existing if pick and pick in e["text"]), None)
        return json.dumps({"decision": decision, "id": chosen})
    return FakeLLM(reply)


def current(svc) -> list[str]:  # noqa: ANN001
    rows = svc._conn.execute(  # noqa: SLF001 - white-box check
        "SELECT content FROM memories WHERE valid_to IS NULL AND scope = 'room' ORDER BY id")
    return [r[0] for r in rows]


async def test_the_llm_may_judge_a_reworded_fact_an_update(db_path: str,
                                                         clock: FakeClock) -> None:
    llm = decider("UPDATE", pick="5월 17일")
    async with open_embedded_chat_service(db_path, llm=llm, clock=clock) as svc:
        world = await make_world(svc, clock)
        await world.say(world.quality, world.kim, "/remember 다음 배포는 5월 17일 금요일")
        reply = await world.say(world.quality, world.kim,
                                "/remember 배포 일정이 5월 24일로 연기됨")
        assert "대체" in (reply.assistant_message or "")
        assert current(svc) == ["배포 일정이 5월 24일로 연기됨"]
        personal = svc._conn.execute(  # noqa: SLF001
            "SELECT content FROM memories WHERE valid_to IS NULL AND scope = 'personal'")
        assert [r[0] for r in personal] == ["배포 일정이 5월 24일로 연기됨"]
        decision = next(c for c in llm.calls if "EXISTING" in c[-1]["content"])
        assert decision[0]["role"] == "system" and "schema" in decision[0]["content"]


async def test_the_llm_cannot_merge_siblings_or_answer_nonsense(db_path: str,
                                                               clock: FakeClock) -> None:
    for llm in (decider("UPDATE", pick="라인 2"), FakeLLM("UPDATE m1 please"),
                FakeLLM(error=ChatServiceTimeout("slow"))):
        async with open_embedded_chat_service(db_path, llm=llm, clock=clock) as svc:
            world = await make_world(svc, clock)
            await world.say(world.quality, world.kim, "/remember 라인 2 가동률 87%")
            await world.say(world.quality, world.kim, "/remember 라인 3 가동률 90%")
            assert current(svc)[-2:] == ["라인 2 가동률 87%", "라인 3 가동률 90%"]


async def test_the_rules_decide_without_asking_when_they_can(db_path: str,
                                                           clock: FakeClock) -> None:
    llm = decider("ADD")
    async with open_embedded_chat_service(db_path, llm=llm, clock=clock) as svc:
        world = await make_world(svc, clock)
        await world.say(world.quality, world.kim, "/remember X부품 불량률 12%")
        await world.say(world.quality, world.kim, "/remember X부품 불량률 15%")
        assert current(svc) == ["X부품 불량률 15%"]
        assert not any("EXISTING" in c[-1]["content"] and "12%" in c[-1]["content"]
                       for c in llm.calls)
