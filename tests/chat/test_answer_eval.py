"""The answer eval: >= 120 questions as people ask them, answered by the built-in answerer.

Categories: siblings, updates (current value), history, identifiers, confidentiality,
abstention (tests/chat/eval_cases.py). Per category it prints

- recall: answers that give what was asked (every expected value), or, where nothing may be
  answered, that say so without it;
- precision: of the answers given (not "I don't know"), those with no sibling's, superseded or
  secret value (a current answer's "(M/D 변경, 이전: ...)" note does not count),

and asserts recall >= 0.9 and precision >= 0.95 in each. The questions measure; they are never
tuned against (see eval_cases.py).
"""

from __future__ import annotations

import re
from collections import defaultdict

from mchat_actors.chat.embedded import open_embedded_chat_service
from mchat_actors.chat.protocol import ChatRoom, ChatUser

from .chat_fakes import T0, FakeClock
from .eval_cases import CASES, MEMORIES

DAY = 86_400.0
ASKED_ON_DAY = 45
MIN_RECALL = 0.9
MIN_PRECISION = 0.95
_CHANGE_NOTE = re.compile(r"\((?:\d+/\d+ 변경, 이전: |changed \d+/\d+, before: )[^)]*\)")
_DONT_KNOW = ("관련된 기억을 찾지 못했습니다", "I have no stored memory")

ROOMS = {"quality": ("channel", "kim lee park"), "ops": ("channel", "lee choi"),
         "defects": ("private", "kim park"), "hr": ("private", "choi")}
USERS = ("kim", "lee", "park", "choi")


async def _world(svc, clock) -> tuple[dict[str, ChatUser], dict[str, ChatRoom]]:  # noqa: ANN001
    users = {n: await svc.create_user(name=n, email=f"{n}@example.com") for n in USERS}
    rooms = {}
    for name, (kind, members) in ROOMS.items():
        rooms[name] = await svc.create_room(name=name, kind=kind)
        for member in members.split():
            await svc.add_room_member(rooms[name].id, users[member].id)
    for n in USERS:
        rooms[f"dm-{n}"] = await svc.create_room(name=f"dm-{n}", kind="direct")
        await svc.add_room_member(rooms[f"dm-{n}"].id, users[n].id)
    return users, rooms


def _abstains(answer: str) -> bool:
    return answer.startswith(_DONT_KNOW)


async def test_answer_eval_recall_and_precision_per_category(tmp_path, capsys) -> None:  # noqa: ANN001
    assert len(CASES) >= 120
    clock = FakeClock(T0)
    async with open_embedded_chat_service(str(tmp_path / "eval.db"), clock=clock) as svc:
        users, rooms = await _world(svc, clock)
        for i, (day, author, room, text) in enumerate(sorted(MEMORIES, key=lambda m: m[0])):
            clock.now = T0 + day * DAY + i
            result = await svc.send_message(
                rooms[room].id, users[author].id, f"@ai /remember {text}", post_id=f"m{i}",
                respond=True, prompt=f"/remember {text}", permalink=f"http://mm/pl/m{i}")
            assert (result.assistant_message or "").startswith(("기억했습니다", "Remembered")), text
        clock.now = T0 + ASKED_ON_DAY * DAY
        hits: dict[str, int] = defaultdict(int)
        total: dict[str, int] = defaultdict(int)
        answered: dict[str, int] = defaultdict(int)
        clean: dict[str, int] = defaultdict(int)
        misses = []
        for n, (category, asker, room, question, expected, forbidden) in enumerate(CASES):
            result = await svc.send_message(
                rooms[room].id, users[asker].id, f"@ai {question}", post_id=f"q{n}",
                respond=True, prompt=question)
            answer = result.assistant_message or ""
            checked = answer if category == "history" else _CHANGE_NOTE.sub("", answer)
            leaked = [f for f in forbidden if f in checked]
            if expected:
                hit = all(e in answer for e in expected)
            else:
                hit = not leaked and (_abstains(answer) or category == "confidentiality")
            total[category] += 1
            hits[category] += hit
            if not _abstains(answer):
                answered[category] += 1
                clean[category] += not leaked
            if not hit or leaked:
                misses.append((category, question, answer.replace("\n", " / ")[:160], leaked))
    report = {}
    with capsys.disabled():
        print(f"\nanswer eval: {len(CASES)} questions (built-in answerer)")
        for category in total:
            recall = hits[category] / total[category]
            precision = clean[category] / answered[category] if answered[category] else 1.0
            report[category] = (recall, precision)
            print(f"  {category:16s} n={total[category]:3d}  recall {recall:6.1%}  "
                  f"precision {precision:6.1%}")
        for miss in misses:
            print(f"  miss [{miss[0]}] {miss[1]!r} -> {miss[2]!r} leaked={miss[3]}")
    for category, (recall, precision) in report.items():
        assert recall >= MIN_RECALL, (category, recall)
        assert precision >= MIN_PRECISION, (category, precision)


async def test_answerer_on_the_retrieval_evals_questions(tmp_path, capsys) -> None:  # noqa: ANN001
    """A second, held-out measure: the 48 questions of test_retrieval_eval.py (written before
    this answerer) asked in a DM with their memories and distractors stored. Recall: the
    answer quotes the memory; precision: answers given that quote it."""
    from .test_retrieval_eval import CASES as RETRIEVAL
    from .test_retrieval_eval import DISTRACTORS

    async with open_embedded_chat_service(str(tmp_path / "h.db"), clock=FakeClock()) as svc:
        kim = await svc.create_user(name="kim", email=None)
        dm = await svc.create_room(name="dm-kim", kind="direct")
        await svc.add_room_member(dm.id, kim.id)
        for i, text in enumerate([m for m, _ in RETRIEVAL] + DISTRACTORS):
            await svc.send_message(dm.id, kim.id, f"/remember {text}", respond=True,
                                   prompt=f"/remember {text}", post_id=f"p{i}")
        right = given = 0
        for memory, question in RETRIEVAL:
            answer = await svc.answer_question(dm.id, kim.id, question)
            if not _abstains(answer):
                given += 1
                right += memory in answer
    recall, precision = right / len(RETRIEVAL), right / given
    with capsys.disabled():
        print(f"\nanswer eval, held-out (retrieval eval's questions): {len(RETRIEVAL)} questions,"
              f" recall {recall:.1%}, precision {precision:.1%}")
    assert recall >= 0.85 and precision >= 0.95
