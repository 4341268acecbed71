"""Benchmark of the embedded ChatService: /search latency over many memories, message throughput.

    python -m bench.bench_chat            # 100 000 memories, 300 searches, 5 000 messages
    python -m bench.bench_chat --small    # quick: 5 000 memories, 100 searches, 1 000 messages
    python -m bench.bench_chat --corpus uniform   # only the worst-case corpus (see ``Corpus``)

Prints numbers; asserts nothing. The database is a temporary file (WAL, as in production).
``/search`` is timed end to end through ``send_message`` (store the post, search, store the
answer); ``search()`` alone is timed too.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mchat_actors.chat.analysis import normalize  # noqa: E402
from mchat_actors.chat.embedded import EmbeddedChatService, open_embedded_chat_service  # noqa: E402
from mchat_actors.chat.search import index_memory  # noqa: E402

KO_NOUNS = ("불량률 배포 회의 일정 공급사 납기 검사 테스트 결과 금형 사출 라인 가동률 클레임 "
            "보고서 "
            "기준서 교정 측정기 샘플링 출하 입고 협력사 감사 원인 대책 치수 도금 포장 반품 목표 "
            "고객사 승인 초도품 신뢰성 고온고습 낙하 진동 소음 외관 회식 교육").split()
EN_WORDS = ("defect rate release meeting schedule supplier delivery inspection test result mold "
            "line yield claim report calibration shipment audit root cause fixture torque spec "
            "firmware deployment corrosion vibration customer approval").split()
PARTS = ("X부품", "Y부품", "Z모듈", "K-220", "M3", "PCB", "ESD", "EOL")
PARTICLES = ("", "은", "는", "이", "가", "을", "의", "에서")
SYLLABLES = "가나다라마바사아자차카타파하고노도로모보소오조초코토포호구누두루무부수우주추쿠투푸후"


class Corpus:
    """Synthetic quality-team memories and questions about them.

    ``uniform`` (the worst case for an inverted index): every memory names one of 8 parts and 3
    of 40 nouns, so each query word occurs in 5-12% of all memories. ``zipf`` (closer to a real
    team's chat): 400 parts, the 40 nouns and 3 000 rarer terms drawn with Zipf weights; a
    question names a part, a common noun and a rarer term of a stored memory.
    """

    def __init__(self, kind: str, seed: int) -> None:
        self.kind = kind
        self.rng = random.Random(seed)
        gen = random.Random(99)
        self.parts = list(PARTS) + [f"{gen.choice('ABCDEFGHJKLMNPQRSTUVW')}{i}부품"
                                    for i in range(400)]
        self.terms = list(dict.fromkeys(
            "".join(gen.choice(SYLLABLES) for _ in range(gen.choice((2, 3))))
            for _ in range(3_500)))[:3_000]
        self._cum = {n: list(itertools.accumulate(1 / (i + 1) for i in range(n)))
                     for n in (len(self.parts), len(KO_NOUNS), len(self.terms))}

    def _pick(self, items: list[str] | tuple[str, ...]) -> str:
        if self.kind == "uniform":
            return self.rng.choice(items)
        return self.rng.choices(items, cum_weights=self._cum[len(items)])[0]

    def memory(self) -> str:
        rng = self.rng
        if self.kind == "uniform":
            if rng.random() < 0.7:
                words = [w + rng.choice(PARTICLES) for w in rng.sample(KO_NOUNS, 3)]
                return f"{rng.choice(PARTS)} {' '.join(words)} {self._figure()}"
            return f"{rng.choice(PARTS)} {' '.join(rng.sample(EN_WORDS, 4))} {rng.randint(1, 999)}"
        words = [self._pick(KO_NOUNS), self._pick(KO_NOUNS), self._pick(self.terms)]
        words = [w + rng.choice(PARTICLES) for w in words]
        if rng.random() < 0.3:
            words.append(rng.choice(EN_WORDS))
        return f"{self._pick(self.parts)} {' '.join(words)} {self._figure()}"

    def _figure(self) -> str:
        return f"{self.rng.randint(1, 999)}{self.rng.choice('%일건개')}"

    def question(self) -> str:
        rng = self.rng
        if self.kind == "uniform":
            if rng.random() < 0.7:
                return f"{rng.choice(PARTS)} {' '.join(rng.sample(KO_NOUNS, 2))} 몇이야?"
            return f"what is the {' '.join(rng.sample(EN_WORDS, 2))} of {rng.choice(PARTS)}?"
        return f"{self._pick(self.parts)} {self._pick(KO_NOUNS)} {self._pick(self.terms)} 몇이야?"


def bulk_load(conn, corpus: Corpus, rooms: list[str], users: list[str], count: int) -> None:  # noqa: ANN001
    """Insert ``count`` memories directly (no near-duplicate check), 80% room, 20% personal."""
    rng = random.Random(1)
    now = int(time.time() * 1000)
    for i in range(count):
        text = corpus.memory()
        scope = "personal" if rng.random() < 0.2 else "room"
        room, owner = rng.choice(rooms), rng.choice(users) if scope == "personal" else None
        cur = conn.execute(
            "INSERT INTO memories (content, norm, scope, kind, room_id, owner_id, author_id,"
            " created_at, updated_at) VALUES (?, ?, ?, 'remember', ?, ?, ?, ?, ?)",
            (text, normalize(text), scope, room, owner, rng.choice(users), now - i, now - i))
        index_memory(conn, cur.lastrowid, text, scope=scope, room=room, owner=owner)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def time_searches(svc: EmbeddedChatService, corpus: Corpus, room: str, user: str, n: int,
                        *, end_to_end: bool) -> list[float]:
    samples = []
    for i, query in enumerate([corpus.question() for _ in range(n)]):
        start = time.perf_counter()
        if end_to_end:
            await svc.send_message(room, user, f"@ai /search {query}", post_id=f"s{i}",  # type: ignore[arg-type]
                                   respond=True, prompt=f"/search {query}")
        else:
            await svc.search(room, user, query)  # type: ignore[arg-type]
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def time_messages(svc: EmbeddedChatService, corpus: Corpus, rooms: list[str],
                        users: list[str], n: int, concurrency: int) -> float:
    rng = random.Random(11)
    texts = [corpus.memory() for _ in range(n)]

    async def sender(worker: int) -> None:
        for i in range(worker, n, concurrency):
            await svc.send_message(rooms[i % len(rooms)], rng.choice(users), texts[i],  # type: ignore[arg-type]
                                   post_id=f"b{concurrency}-{i}")

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for worker in range(concurrency):
            nursery.start_soon(sender, worker)
    return n / (time.perf_counter() - start)


async def main(kind: str, memories: int, searches: int, messages: int) -> None:
    corpus = Corpus(kind, seed=1)
    print(f"corpus {kind!r}: {memories} memories over 20 rooms (the asker is in 5)")
    with tempfile.TemporaryDirectory() as tmp:
        async with open_embedded_chat_service(str(Path(tmp) / "bench.db")) as svc:
            rooms = [(await svc.create_room(name=f"room{i}", kind="private")).id for i in range(20)]
            users = [(await svc.create_user(name=f"user{i}", email=f"u{i}@example.com")).id
                     for i in range(50)]
            asker = users[0]
            for room in rooms[:5]:
                await svc.add_room_member(room, asker)  # type: ignore[arg-type]
            start = time.perf_counter()
            await svc.db(bulk_load, corpus, rooms, users, memories)
            load_s = time.perf_counter() - start
            print(f"loaded {memories} memories in {load_s:.1f} s ({memories / load_s:,.0f}/s)")
            for label, end_to_end in (("search()", False), ("/search via send_message", True)):
                samples = await time_searches(svc, corpus, rooms[0], asker, searches,
                                              end_to_end=end_to_end)
                print(f"{label:<28} n={searches}  p50 {statistics.median(samples):6.2f} ms  "
                      f"p99 {percentile(samples, 0.99):6.2f} ms  max {max(samples):6.2f} ms")
            for concurrency in (1, 8):
                rate = await time_messages(svc, corpus, rooms, users, messages, concurrency)
                print(f"messages stored, {concurrency} sender(s): {rate:,.0f}/s (n={messages})")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a quick run with fewer items")
    parser.add_argument("--memories", type=int, help="override the number of memories")
    parser.add_argument("--corpus", choices=("zipf", "uniform", "both"), default="both",
                        help="zipf: closer to real chat; uniform: worst case (default: both)")
    args = parser.parse_args()
    memories, searches, messages = (5_000, 100, 1_000) if args.small else (100_000, 300, 5_000)
    for kind in ("zipf", "uniform") if args.corpus == "both" else (args.corpus,):
        trio.run(main, kind, args.memories or memories, searches, messages)
        print()


if __name__ == "__main__":
    cli()
