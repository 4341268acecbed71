"""compose_answer: the built-in answerer and the LLM prompt."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from mchat_actors.chat.answer import LEAD_MARGIN, compose_answer
from mchat_actors.chat.morph import KiwiAnalyzer
from mchat_actors.chat.protocol import MemoryRecord
from mchat_actors.errors import ChatServiceTimeout

from .chat_fakes import FakeLLM


def memory(content: str, scope: str = "room", i: int = 1) -> MemoryRecord:
    return MemoryRecord(id=f"m{i}", content=content, scope=scope, room_id="r", owner_id=None,
                        created_at_ms=1_767_225_600_000, updated_at_ms=1_767_225_600_000)


async def test_builtin_answer_quotes_the_figure(kiwi: KiwiAnalyzer) -> None:
    """Without an LLM, 'X부품 불량률 몇 %야?' is answered with the stored 12%."""
    memories = [memory("Y부품 불량률 3%", i=2), memory("X부품 불량률 12%")]
    answer = await compose_answer("오늘 X부품 불량률 몇 %야?", memories, llm=None,
                                  analyzer=kiwi)
    first_line = answer.splitlines()[1]
    assert "12%" in first_line and answer.startswith("저장된 기억에 따르면")


async def test_builtin_answer_says_nothing_is_stored_in_korean(kiwi: KiwiAnalyzer) -> None:
    """A Korean question without relevant memories gets a plain Korean 'nothing stored'."""
    answer = await compose_answer("점심 메뉴 뭐야?", [memory("X부품 불량률 12%")], llm=None,
                                  analyzer=kiwi)
    assert "관련된 기억을 찾지 못했습니다" in answer


async def test_builtin_answer_says_nothing_is_stored_in_english(kiwi: KiwiAnalyzer) -> None:
    """An English question without memories gets an English 'nothing stored'."""
    answer = await compose_answer("When is the release?", [], llm=None,
                                  analyzer=kiwi)
    assert answer.startswith("I have no stored memory")


async def test_builtin_answer_does_not_offer_another_parts_figure(kiwi: KiwiAnalyzer) -> None:
    """A memory about another identifier is not an answer: the answerer says it does not know."""
    answer = await compose_answer("Z부품 불량률 몇 %야?", [memory("Y부품 불량률 3%")], llm=None,
                                  analyzer=kiwi)
    assert answer.startswith("관련된 기억을 찾지 못했습니다") and "3%" not in answer


async def test_llm_answer_uses_masked_memories_and_question(kiwi: KiwiAnalyzer) -> None:
    """With an LLM, the memories and question are sent masked and the model's text is returned."""
    llm = FakeLLM("X부품 불량률은 12%입니다.")
    answer = await compose_answer("담당자 010-1234-5678에게 X부품 불량률 물어봐",
                                  [memory("X부품 불량률 12%, 담당 kim@example.com")], llm=llm)
    assert answer == "X부품 불량률은 12%입니다."
    system, context, user = llm.calls[0]
    assert "X부품 불량률 12%" not in system["content"]  # data never in the instructions
    assert "X부품 불량률 12%" in context["content"] and "[EMAIL]" in context["content"]
    assert "kim@example.com" not in context["content"]
    assert "[PHONE]" in user["content"] and "010-1234-5678" not in user["content"]


async def test_empty_llm_text_falls_back_to_the_builtin_answer(kiwi: KiwiAnalyzer) -> None:
    """An empty model answer is replaced by the built-in answer."""
    answer = await compose_answer("X부품 불량률?", [memory("X부품 불량률 12%")], llm=FakeLLM("  "),
                                  analyzer=kiwi)
    assert "12%" in answer


async def test_llm_errors_propagate(kiwi: KiwiAnalyzer) -> None:
    """A ChatServiceError from the LLM reaches the caller unchanged."""
    with pytest.raises(ChatServiceTimeout):
        await compose_answer("X?", [], llm=FakeLLM(error=ChatServiceTimeout("slow")))


class _NoAnalysis:
    """An analyzer that must not be asked: nothing to score means nothing to analyze."""

    def analyze_query(self, text: str) -> object:
        raise AssertionError(f"analyzed {text!r} with no memories to score")


async def test_no_memories_means_no_analysis_and_no_thread() -> None:
    """The remote backend's answer when the agent found nothing (and the count of hidden
    matches when none are hidden): no Kiwi analysis, which used to run on the event loop
    for `matching` and in a worker thread for the answer, costing ms per question."""
    from mchat_actors.chat.answer import matching

    stub: Any = _NoAnalysis()
    assert matching("X부품 불량률 몇 %야?", [], stub) == []
    answer = await compose_answer("X부품 불량률 몇 %야?", [], llm=None, analyzer=stub,
                                  hidden=2)
    assert answer.startswith("관련된 기억을 찾지 못했습니다") and "2" in answer


IDK = "관련된 기억을 찾지 못했습니다"


async def test_a_memory_naming_only_the_identifier_is_no_answer(kiwi: KiwiAnalyzer) -> None:
    """`라인 4 설비 고장?` names line 4 and asks about its breakdowns: a memory of line 4's takt
    time shares only the identifier (설비 is a word other memories hold): no answer."""
    memories = [memory("라인 4 택트타임 42초로 단축", i=1), memory("측정 장비 대여 중", i=2)]
    answer = await compose_answer("라인 4 설비 고장 났어?", memories, llm=None, analyzer=kiwi)
    assert answer.startswith(IDK), answer
    answer = await compose_answer("라인 4 택트타임 얼마야?", memories, llm=None, analyzer=kiwi)
    assert "42초" in answer


async def test_a_memory_without_the_unit_or_time_asked_is_no_answer(kiwi: KiwiAnalyzer) -> None:
    """`몇 명`, `언제`: a memory on the same words that states no number of people, no time,
    is not quoted as the answer."""
    memories = [memory("라인 4 작업자 교육 완료, 택트타임 42초", i=1),
                memory("R사 납품 단가 3% 인하 합의", i=2)]
    for question in ("라인 4 작업자 몇 명이야?", "R사 납품 언제야?"):
        answer = await compose_answer(question, memories, llm=None, analyzer=kiwi)
        assert answer.startswith(IDK), (question, answer)
    answer = await compose_answer("R사 납품 단가 몇 % 내렸어?", memories, llm=None,
                                  analyzer=kiwi)
    assert "3%" in answer


async def test_two_equally_good_memories_on_other_subjects_are_no_answer(
        kiwi: KiwiAnalyzer) -> None:
    """A question two facts answer equally well (here: 고객 클레임, said of a form and of a
    meeting) does not say which it wants: the answerer does not pick one."""
    memories = [memory("고객 클레임 접수 양식 개정", i=1),
                memory("고객 클레임 대응 회의는 목요일", i=2)]
    answer = await compose_answer("고객 클레임 어떻게 됐어?", memories, llm=None, analyzer=kiwi)
    assert answer.startswith(IDK), answer
    answer = await compose_answer("고객 클레임 회의 언제야?", memories, llm=None, analyzer=kiwi)
    assert "목요일" in answer


async def test_two_copies_of_one_text_are_not_ambiguous(kiwi: KiwiAnalyzer) -> None:
    """The same text twice (a room copy and a personal one, as another backend may return
    them) ties with itself: that is one fact, quoted, even when it has no subject."""
    text = "Supplier Acme ships housings from the Penang plant"
    memories = [memory(text, i=1), memory(text, scope="personal", i=2)]
    answer = await compose_answer("Where does Acme ship housings from?", memories, llm=None,
                                  analyzer=kiwi)
    assert "Penang" in answer, answer


async def test_how_often_is_answered_by_the_interval_not_the_date(kiwi: KiwiAnalyzer) -> None:
    """`언제마다`, `how often`: the memory stating the interval is quoted (언제 alone would ask a
    time, and `500샷마다` is none); a memory with only a date of the same work is no answer."""
    interval = [memory("사출 3호기 노즐 청소는 500샷마다", i=1),
                memory("Belt tension is checked every 4 hours", i=2)]
    answer = await compose_answer("3호기 노즐 청소 언제마다 해?", interval, llm=None,
                                  analyzer=kiwi)
    assert "500샷마다" in answer, answer
    answer = await compose_answer("How often is belt tension checked?", interval, llm=None,
                                  analyzer=kiwi)
    assert "every 4 hours" in answer, answer
    dated = [memory("사출 3호기 노즐 청소 11월 28일 완료", i=3),
             memory("Belt tension was checked on Tuesday", i=4)]
    for question in ("3호기 노즐 청소 얼마나 자주 해?", "How often is belt tension checked?"):
        answer = await compose_answer(question, dated, llm=None, analyzer=kiwi)
        assert answer.startswith(("관련된 기억을 찾지 못했습니다", "I have no stored memory")), (
            question, answer)


def ranked(content: str, score: float, i: int) -> MemoryRecord:
    return attrs.evolve(memory(content, i=i), score=score)


async def test_the_searchs_clear_first_is_answered_at_half_coverage(kiwi: KiwiAnalyzer) -> None:
    """A paraphrase says part of the question in other words (잉크 번짐 for 토너 얼룩): the
    memory covers half of it, below the 2/3 a memory must cover. When the memories are the
    local search's (``ranked``) and it put that one ahead of the next by ``LEAD_MARGIN`` of
    its fused score, it is quoted; not when the next is close, not from another backend's
    ranking (scores of another scale), and never when it states no value of the kind asked."""
    question = "라벨 프린터 잉크 번짐 몇 건이야?"
    clear = [ranked("라벨 프린터 토너 얼룩 불량 6건", 1.0, 1),
             ranked("사무실 잉크 번짐 없는 펜 구매", 1.0 - LEAD_MARGIN - 0.05, 2)]
    answer = await compose_answer(question, clear, llm=None, analyzer=kiwi, ranked=True)
    assert "6건" in answer, answer
    answer = await compose_answer(question, clear, llm=None, analyzer=kiwi)
    assert answer.startswith(IDK), answer
    close = [clear[0], attrs.evolve(clear[1], score=1.0 - LEAD_MARGIN + 0.05)]
    answer = await compose_answer(question, close, llm=None, analyzer=kiwi, ranked=True)
    assert answer.startswith(IDK), answer
    no_count = [ranked("라벨 프린터 토너 교체 완료", 1.0, 1), clear[1]]
    answer = await compose_answer(question, no_count, llm=None, analyzer=kiwi, ranked=True)
    assert answer.startswith(IDK), answer


@pytest.mark.parametrize(("stored", "asked"), [
    ("수입검사 불합격 3건", "수입검사 합격 몇 건이야?"),
    ("수입검사 합격 12건", "수입검사 불합격 몇 건이야?"),
    ("서버 비정상 종료 5건", "서버 정상 종료 몇 건이야?"),
    ("A사 부품 미입고 2건", "A사 부품 입고 몇 건이야?"),
])
async def test_the_opposite_fact_is_no_answer(kiwi: KiwiAnalyzer, stored: str,
                                              asked: str) -> None:
    """A count of rejections never answers a question about passes, nor the other way round
    (before: 불합격 was read as 합격 and quoted as the answer). A yes/no question is answered
    by the opposite fact: it says no."""
    answer = await compose_answer(asked, [memory(stored)], llm=None, analyzer=kiwi)
    assert answer.startswith(IDK), answer
    yes_no = asked.replace(" 몇 건이야?", "됐어?")  # 수입검사 합격됐어?
    assert stored in await compose_answer(yes_no, [memory(stored)], llm=None, analyzer=kiwi)
    answer = await compose_answer(stored.rsplit(" ", 1)[0] + " 몇 건이야?", [memory(stored)],
                                  llm=None, analyzer=kiwi)
    assert stored in answer


async def test_an_attribute_no_memory_states_is_no_answer_for_the_identifier(
        kiwi: KiwiAnalyzer) -> None:
    """Only X부품's defect rate is stored: its yield is not known, and the identifier alone
    must not quote the defect rate for it (it did: a noun no memory holds was left out of the
    question, and the identifier covered the rest). The defect rate is answered, in English
    too."""
    memories = [memory("X부품 불량률 12%"), memory("Y부품 불량률 3%", i=2)]
    for question in ("X부품 수율 몇 %야?", "What is the yield of part X?"):
        answer = await compose_answer(question, memories, llm=None, analyzer=kiwi)
        assert answer.startswith((IDK, "I have no stored memory")), (question, answer)
    for question in ("X부품 불량률 어때?", "What is the defect rate of part X?",
                     "X부품 불랑률 몇 %야?"):  # misspelt, the attribute is still one held
        answer = await compose_answer(question, memories, llm=None, analyzer=kiwi)
        assert "12%" in answer and "3%" not in answer, (question, answer)
