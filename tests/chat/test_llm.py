"""OpenAICompatibleLLM against the fake OpenAI server over real sockets on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
import traceback

import attrs
import pytest
import trio
import trio.testing

from mchat_actors.chat.llm import OpenAICompatibleLLM, open_llm
from mchat_actors.config import ChatConfig
from mchat_actors.errors import (
    ChatServiceError,
    ChatServiceRejected,
    ChatServiceTimeout,
    ConfigError,
)
from mchat_actors.testing.fake_openai import FakeOpenAI, Hang, Malformed, Reply, Status

KEY = "sk-test-SECRET-0123456789"
QUESTION = [{"role": "user", "content": "X부품 불량률 몇 %야?"}]


def _cfg(url: str, **changes: object) -> ChatConfig:
    base = ChatConfig(llm_base_url=url, llm_api_key=KEY, llm_model="fake-model", llm_timeout_s=5.0)
    return attrs.evolve(base, **changes)


def _assert_secret_free(exc: BaseException, llm: OpenAICompatibleLLM, log_text: str) -> None:
    rendered = "".join(traceback.format_exception(exc))
    for text in (str(exc), repr(exc), rendered, repr(llm), log_text):
        assert KEY not in text


@pytest.fixture
async def fake():
    async with FakeOpenAI(api_key=KEY) as server:
        yield server


async def test_answers_with_the_completion_content(fake: FakeOpenAI) -> None:
    """A 200 answer returns choices[0].message.content; the request carries model and body."""
    fake.script(Reply("불량률은 12%입니다."))
    async with open_llm(_cfg(fake.url)) as llm:
        text = await llm.complete(QUESTION, temperature=0.0, max_tokens=64)
    assert text == "불량률은 12%입니다."
    [request] = fake.requests
    assert request.authorized
    assert request.path == "/v1/chat/completions"
    assert request.json == {
        "model": "fake-model",
        "messages": QUESTION,
        "temperature": 0.0,
        "max_tokens": 64,
    }


async def test_default_answerer_quotes_the_prompt_and_omits_unset_max_tokens(
    fake: FakeOpenAI,
) -> None:
    """Without a script the fake quotes the last message; max_tokens is left out when None."""
    async with open_llm(_cfg(fake.url + "/")) as llm:
        text = await llm.complete(QUESTION)
    assert "X부품 불량률" in text
    assert "max_tokens" not in fake.requests[0].json


async def test_retries_after_429_honouring_retry_after(
    fake: FakeOpenAI, autojump_clock: trio.testing.MockClock
) -> None:
    """A 429 with Retry-After: 7 waits 7 s (not the 0.5 s backoff), then succeeds."""
    fake.script(Status(429, retry_after_s=7), Reply("ok"))
    async with open_llm(_cfg(fake.url, llm_timeout_s=30.0)) as llm:
        start = trio.current_time()
        assert await llm.complete(QUESTION) == "ok"
        elapsed = trio.current_time() - start
    assert 7.0 <= elapsed < 7.5
    assert len(fake.requests) == 2


async def test_retries_5xx_with_backoff_then_succeeds(
    fake: FakeOpenAI, autojump_clock: trio.testing.MockClock
) -> None:
    """500, 500, success: two retries after 0.5 s and 1 s."""
    fake.script(Status(500), Status(503), Reply("ok"))
    async with open_llm(_cfg(fake.url)) as llm:
        start = trio.current_time()
        assert await llm.complete(QUESTION) == "ok"
        elapsed = trio.current_time() - start
    assert 1.5 <= elapsed < 2.0
    assert len(fake.requests) == 3


async def test_gives_up_after_three_retries(
    fake: FakeOpenAI, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Four 500s in a row raise ChatServiceError; the key is in no message, repr or log."""
    caplog.set_level(logging.DEBUG)
    fake.script(*[Status(500)] * 4)
    async with open_llm(_cfg(fake.url)) as llm:
        with pytest.raises(ChatServiceError) as info:
            await llm.complete(QUESTION)
    assert type(info.value) is ChatServiceError
    assert "HTTP 500" in str(info.value)
    assert len(fake.requests) == 4
    _assert_secret_free(info.value, llm, caplog.text)


async def test_hanging_server_times_out(
    fake: FakeOpenAI, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A server that never answers raises ChatServiceTimeout at llm_timeout_s."""
    caplog.set_level(logging.DEBUG)
    fake.script(Hang())
    async with open_llm(_cfg(fake.url, llm_timeout_s=2.0)) as llm:
        start = trio.current_time()
        with pytest.raises(ChatServiceTimeout) as info:
            await llm.complete(QUESTION)
        assert trio.current_time() - start == pytest.approx(2.0, abs=0.1)
    _assert_secret_free(info.value, llm, caplog.text)


async def test_deadline_covers_the_retries(
    fake: FakeOpenAI, autojump_clock: trio.testing.MockClock
) -> None:
    """A Retry-After longer than the overall deadline ends in ChatServiceTimeout."""
    fake.script(Status(429, retry_after_s=20), Reply("too late"))
    async with open_llm(_cfg(fake.url, llm_timeout_s=3.0)) as llm:
        with pytest.raises(ChatServiceTimeout):
            await llm.complete(QUESTION)


async def test_wrong_key_is_rejected_without_retry(
    fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    """401 raises ChatServiceRejected at once; neither key appears anywhere."""
    caplog.set_level(logging.DEBUG)
    wrong = "sk-wrong-SECRET-987654"
    async with open_llm(_cfg(fake.url, llm_api_key=wrong)) as llm:
        with pytest.raises(ChatServiceRejected) as info:
            await llm.complete(QUESTION)
    assert "401" in str(info.value)
    assert len(fake.requests) == 1
    _assert_secret_free(info.value, llm, caplog.text)
    assert wrong not in caplog.text + str(info.value) + repr(llm)


@pytest.mark.parametrize("status", [400, 403, 404])
async def test_other_client_errors_are_rejections(fake: FakeOpenAI, status: int) -> None:
    """400, 403 and 404 raise ChatServiceRejected without retrying."""
    fake.script(Status(status))
    async with open_llm(_cfg(fake.url)) as llm:
        with pytest.raises(ChatServiceRejected):
            await llm.complete(QUESTION)
    assert len(fake.requests) == 1


async def test_malformed_answer_is_an_error(
    fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    """A 200 that is not a chat completion raises ChatServiceError, not a KeyError."""
    caplog.set_level(logging.DEBUG)
    fake.script(Malformed("not json"), Malformed('{"choices": []}'))
    async with open_llm(_cfg(fake.url)) as llm:
        for _ in range(2):
            with pytest.raises(ChatServiceError) as info:
                await llm.complete(QUESTION)
            _assert_secret_free(info.value, llm, caplog.text)


async def test_unreachable_server_is_an_error_after_retries(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Connection refused is retried 3 times, then ChatServiceError; the key stays secret."""
    caplog.set_level(logging.DEBUG)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with open_llm(_cfg(f"http://127.0.0.1:{port}/v1")) as llm:
        with pytest.raises(ChatServiceError) as info:
            await llm.complete(QUESTION)
    assert type(info.value) is ChatServiceError
    _assert_secret_free(info.value, llm, caplog.text)


async def test_repr_hides_the_key(fake: FakeOpenAI) -> None:
    """The client's repr names the URL and model only."""
    async with open_llm(_cfg(fake.url)) as llm:
        assert "fake-model" in repr(llm)
        assert KEY not in repr(llm)


async def test_missing_url_or_model_is_a_config_error() -> None:
    """open_llm refuses a config without LLM_BASE_URL or LLM_MODEL."""
    with pytest.raises(ConfigError):
        async with open_llm(ChatConfig()):
            pass
