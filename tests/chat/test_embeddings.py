"""Hybrid retrieval's plumbing against a local OpenAI-compatible server (FakeOpenAI's
/v1/embeddings: hashed character bigrams, which prove plumbing, not the quality of real
embeddings): batching, the rate limit, an outage, re-embedding when the model changes, fusion
with the lexical search, and the audience rules on what embeddings find.

Every test runs on both backends: the embedded service on a SQLite file, and on a real
PostgreSQL server (``tests/pg``'s throw-away server; vectors in ``memory_embeddings``,
searched by ``pg.embeddings``' exact scan)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from mchat_actors.chat.embedded import EmbeddedChatService
from mchat_actors.chat.embeddings import (
    BATCH,
    QUERY_TIMEOUT_S,
    EmbeddingsClient,
    open_embeddings,
    pending,
)
from mchat_actors.config import ChatConfig
from mchat_actors.testing.fake_openai import FakeOpenAI, Hang

from .both_backends import Where, both_backends_db, open_local, pg_server, pg_url  # noqa: F401
from .chat_fakes import FakeClock
from .conftest import World, make_world


@asynccontextmanager
async def hybrid(db_path: Where, fake: FakeOpenAI, model: str = "emb-1",
                 rate_per_min: float = 6000.0) -> AsyncIterator[tuple[World, EmbeddingsClient]]:
    cfg = ChatConfig(embeddings_base_url=fake.url, embeddings_api_key="sk-fake",
                     embeddings_model=model)
    clock = FakeClock()
    async with open_embeddings(cfg, rate_per_min=rate_per_min, idle_s=0.02,
                               retry_s=0.05) as client, \
            open_local(db_path, clock=clock, embeddings=client) as svc:
        yield await make_world(svc, clock), client


async def remember_many(svc: EmbeddedChatService, world: World, texts: list[str]) -> None:
    q = svc.database.queries  # chat.repo on SQLite, pg.chat_db.PgQueries on PostgreSQL

    def load(conn) -> None:  # noqa: ANN001
        for text in texts:
            q.save_memory(conn, text, scope="room", kind="remember", room=world.quality.id,
                          owner=None, author=world.kim.id, source_post_id=None,
                          permalink=None, now_ms=0)

    await svc.db(load)


async def all_embedded(svc: EmbeddedChatService, model: str) -> None:
    with trio.fail_after(20):
        while await svc.db(pending, model, 1):  # noqa: ASYNC110 - polls the database
            await trio.sleep(0.02)


async def test_memories_are_embedded_in_batches_under_the_rate_limit(db_path: Where) -> None:
    async with FakeOpenAI(api_key="sk-fake") as fake, \
            hybrid(db_path, fake, rate_per_min=120.0) as (world, client):
        texts = [f"부품 {i}번 검사 결과 메모" for i in range(3 * BATCH)]
        start = trio.current_time()
        await remember_many(world.svc, world, texts)
        await all_embedded(world.svc, client.model)
        elapsed = trio.current_time() - start
        batches = [r.json["input"] for r in fake.authorized_requests]
        assert sorted(fake.embedded_texts) == sorted(texts)
        assert len(batches) == 3 and all(len(b) == BATCH for b in batches)
        assert {r.json["model"] for r in fake.authorized_requests} == {"emb-1"}
        assert elapsed >= 2 * 0.5  # 120 requests a minute: one every 0.5 s
        assert client.statistics.embedded == 3 * BATCH


async def test_a_memory_below_the_embedders_cursor_is_embedded_too(db_path: Where) -> None:
    """The embedder reads forward from the greatest id it embedded (a full look each batch
    made embedding quadratic); a memory below it that lacks a vector (here: its vector
    removed, as for a memory restored after being forgotten) is found by the look from the
    start it makes every ``RESCAN_ROUNDS`` idle rounds, and a new memory is embedded at once."""
    async with FakeOpenAI(api_key="sk-fake") as fake, hybrid(db_path, fake) as (world, client):
        texts = ["포장 규격 메모", "출하 일정 메모", "금형 세척 메모", "라인 점검 메모"]
        await remember_many(world.svc, world, texts)
        await all_embedded(world.svc, client.model)

        def drop_first(conn) -> None:  # noqa: ANN001
            conn.execute("DELETE FROM memory_embeddings WHERE memory_id ="
                         " (SELECT MIN(memory_id) FROM memory_embeddings)")

        await world.svc.db(drop_first)
        await remember_many(world.svc, world, ["교육 계획 메모"])
        await all_embedded(world.svc, client.model)
        assert fake.embedded_texts.count("포장 규격 메모") == 2
        assert fake.embedded_texts.count("교육 계획 메모") == 1
        assert client.statistics.embedded == 6


async def test_the_vector_cache_is_warm_after_a_restart_and_takes_each_new_vector(
        db_path: Where) -> None:
    """The embedder keeps each vector it stores in the service's cache, and a service opened
    on stored vectors reads them into it before any question (the first search after a start
    read every visible vector: 290 ms at 100 000 memories)."""
    texts = ["포장 규격 메모", "출하 일정 메모", "금형 세척 메모"]
    async with FakeOpenAI(api_key="sk-fake") as fake:
        async with hybrid(db_path, fake) as (world, client):
            await remember_many(world.svc, world, texts)
            await all_embedded(world.svc, client.model)
            with trio.fail_after(5):
                while len(world.svc.database.vectors) < 3:
                    await trio.sleep(0.01)
        requests = len(fake.authorized_requests)
        async with hybrid(db_path, fake) as (world, client):
            with trio.fail_after(5):
                while len(world.svc.database.vectors) < 3:  # warmed, nothing embedded again
                    await trio.sleep(0.01)
            assert len(fake.authorized_requests) == requests


async def test_an_outage_keeps_lexical_answers_and_is_retried(db_path: Where) -> None:
    async with FakeOpenAI(api_key="sk-fake") as fake, hybrid(db_path, fake) as (world, client):
        fake.down = True
        await world.say(world.quality, world.kim, "/remember X부품 불량률 12%")
        answer = await world.say(world.quality, world.lee, "X부품 불량률 몇 %야?")
        assert "12%" in (answer.assistant_message or "")  # lexical, the endpoint is down
        await trio.sleep(0.3)
        assert client.statistics.failures >= 2 and client.statistics.embedded == 0
        fake.down = False
        await all_embedded(world.svc, client.model)
        found = await world.svc.search(world.quality.id, world.lee.id, "X부품 불량률")
        assert found[0].content == "X부품 불량률 12%" and found[0].similarity is not None


async def test_a_slow_endpoint_does_not_hold_up_an_answer(db_path: Where) -> None:
    async with FakeOpenAI(api_key="sk-fake") as fake, hybrid(db_path, fake) as (world, _):
        await world.say(world.quality, world.kim, "/remember 배포는 금요일")
        await all_embedded(world.svc, "emb-1")
        fake.script(Hang(60.0))
        start = trio.current_time()
        answer = await world.say(world.quality, world.lee, "배포 언제야?")
        assert "금요일" in (answer.assistant_message or "")
        assert trio.current_time() - start < QUERY_TIMEOUT_S + 2.0


async def test_a_new_model_name_re_embeds_every_memory(db_path: Where) -> None:
    async with FakeOpenAI(api_key="sk-fake") as fake:
        async with hybrid(db_path, fake, model="emb-1") as (world, client):
            await remember_many(world.svc, world, ["납기 6월 2일", "수율 98%"])
            await all_embedded(world.svc, client.model)
        async with hybrid(db_path, fake, model="emb-2") as (world2, client2):
            await all_embedded(world2.svc, client2.model)
            assert await world2.svc.db(pending, "emb-1", 10) != []  # replaced, not kept
        models = [r.json["model"] for r in fake.authorized_requests]
        assert models.count("emb-1") >= 1 and models.count("emb-2") >= 1
        assert sorted(fake.embedded_texts) == sorted(["납기 6월 2일", "수율 98%"] * 2)


async def test_embeddings_never_bring_a_memory_outside_the_audience(db_path: Where) -> None:
    """The secret room's memory is the nearest vector to the question, and still never
    reaches an answer in the quality room nor kim's search (kim is not in the secret room)."""
    async with FakeOpenAI(api_key="sk-fake") as fake, hybrid(db_path, fake) as (world, client):
        await world.say(world.secret, world.park, "/remember 비밀 프로젝트 코드명 블루버드")
        await world.say(world.quality, world.kim, "/remember 품질 회의는 월요일")
        await all_embedded(world.svc, client.model)
        question = "비밀 프로젝트 코드명 블루버드"
        found = await world.svc.search(world.quality.id, world.kim.id, question)
        assert all("블루버드" not in m.content for m in found)
        answer = await world.say(world.quality, world.kim, question)
        assert "블루버드" not in (answer.assistant_message or "").replace(question, "")
        dm = await world.dm(world.park)
        mine = await world.svc.search(dm.id, world.park.id, question)
        assert mine and mine[0].content.endswith("블루버드") and mine[0].similarity is not None
