"""The latency the runtime adds to a live answer (``outbox.AnswerClock``): from the question's
WebSocket frame reaching the process to its reply's POST written, less the ChatService's own
time; counted by the sender, exposed on /metrics (``mchat_answer_added_seconds``)."""

from __future__ import annotations

import trio
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from mchat_actors.actors.send_queue import SenderCounters
from mchat_actors.http import metrics
from mchat_actors.outbox import AnswerClock
from mchat_actors.testing import FakeMattermost
from tests.fakes import FakeChat
from tests.scenarios.harness import replies_to, running_bot, wait_until

SLOW_S = 0.6


async def live(rt) -> None:
    """The WebSocket is up and its start-up backfill done: a post now arrives as a frame
    (a post the backfill reads from REST is not timed)."""
    await wait_until(lambda: rt.reconnect_stats.connection.live_at is not None)


async def test_a_slow_chat_service_is_not_counted_as_the_runtime_s(tmp_path):
    """A ChatService that takes 0.6 s: the answer takes longer than that end to end, and the
    runtime's own share (what the sender counted) leaves those 0.6 s out."""
    chat = FakeChat(hang_rooms={"Town Square": SLOW_S})
    async with FakeMattermost() as mm, running_bot(mm, str(tmp_path / "b.db"), chat=chat) as rt:
        await live(rt)
        asked_at = trio.current_time()
        post = await mm.post_as("kim", "town-square", "@ai 오늘 X부품 불량률 몇 %야?")
        await wait_until(lambda: replies_to(mm, post["id"]))
        took = trio.current_time() - asked_at
        sender = rt.sender_stats
        await wait_until(lambda: sender.answer_added_s.count == 1)
        [added] = sender.answer_added_recent_s
    assert took >= SLOW_S
    assert 0.0 < added < SLOW_S  # the ChatService's 0.6 s are not the runtime's
    assert sender.answer_added_s.sum_s == added


async def test_the_in_process_chat_service_s_answer_is_timed_too(tmp_path):
    """The embedded ChatService answers inside the storage request (``compose``): the reply
    is timed the same way; a plain post is not an answer and is not timed."""
    async with FakeMattermost() as mm, running_bot(mm, str(tmp_path / "b.db")) as rt:
        await live(rt)
        plain = await mm.post_as("kim", "town-square", "그냥 잡담")
        post = await mm.post_as("kim", "town-square", "@ai 오늘 X부품 불량률 몇 %야?")
        await wait_until(lambda: replies_to(mm, post["id"]))
        await wait_until(lambda: rt.sender_stats.answer_added_s.count >= 1)
        assert rt.sender_stats.answer_added_s.count == 1, plain
        [added] = rt.sender_stats.answer_added_recent_s
    assert 0.0 < added < 5.0


def test_answer_clock_leaves_the_chat_service_out():
    clock = AnswerClock(received_at=10.0, chat_s=2.5)
    assert clock.added_s(12.75) == 0.25
    assert clock.added_s(11.0) == 0.0  # never negative (clocks of a mocked test)


def test_metrics_show_count_sum_and_recent_quantiles():
    counters = SenderCounters()
    for ms in range(1, 101):
        counters.answer_added(ms / 1000)

    class Only:
        def collect(self):
            return metrics._answer_added(counters)  # noqa: SLF001

    registry = CollectorRegistry()
    registry.register(Only())  # type: ignore[arg-type]
    from prometheus_client import generate_latest
    fams = {f.name: f for f in text_string_to_metric_families(
        generate_latest(registry).decode())}
    hist = fams["mchat_answer_added_seconds"].samples
    values = {(s.name, s.labels.get("le")): s.value for s in hist}
    assert values[("mchat_answer_added_seconds_count", None)] == 100
    assert abs(values[("mchat_answer_added_seconds_sum", None)] - 5.05) < 1e-9
    assert values[("mchat_answer_added_seconds_bucket", "0.005")] == 5  # 1..5 ms
    assert values[("mchat_answer_added_seconds_bucket", "+Inf")] == 100
    recent = {s.labels["quantile"]: s.value
              for s in fams["mchat_answer_added_recent_seconds"].samples}
    assert abs(recent["0.5"] - 0.0505) < 1e-3 and recent["0.99"] > 0.098
    for _ in range(1500):  # only the last 1 000 are kept
        counters.answer_added(1.0)
    assert len(counters.answer_added_recent_s) == 1000
    assert counters.answer_added_s.count == 1600
