"""The bench's own arithmetic: percentiles, fairness, windows, loss/duplicate/order counting."""

from __future__ import annotations

from bench.delay_agent import delay_for
from bench.load import Answer, Outcome
from bench.metrics import jain, max_in_window, pct, per_second
from bench.report import ratios, table


def test_pct_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert pct(values, 0.5) == 50.0
    assert pct(values, 0.99) == 99.0
    assert pct(values, 1.0) == 100.0
    assert pct([7.0], 0.99) == 7.0
    assert pct([], 0.5) is None


def test_jain_is_one_when_even_and_one_over_n_when_one_takes_all() -> None:
    assert jain([5, 5, 5, 5]) == 1.0
    assert jain([8, 0, 0, 0]) == 0.25
    assert 0.25 < jain([4, 2, 1, 1]) < 1.0  # type: ignore[operator]
    assert jain([0, 0]) is None


def test_max_in_window_counts_a_sliding_second() -> None:
    times = [0.0, 0.1, 0.2, 0.95, 1.05, 1.9, 2.5]
    assert max_in_window(times) == 4  # 0.0 .. 0.95 and 0.1 .. 1.05
    assert max_in_window([0.0, 0.5, 0.99, 1.0]) == 3  # a window is (t - 1 s, t]
    assert max_in_window([]) == 0


def test_per_second_buckets_from_start() -> None:
    assert per_second([10.2, 10.7, 11.1, 13.0], 10.0) == [2, 1, 0, 1]


def _post(pid: str, channel: str, at: int, root: str = "") -> dict[str, object]:
    return {"id": pid, "channel_id": channel, "create_at": at, "root_id": root}


def test_outcome_counts_lost_duplicated_and_reordered() -> None:
    q = [_post(f"q{i}", "A" if i < 3 else "B", 1000 + i) for i in range(5)]
    answers = [
        Answer(q[0], [_post("r0", "A", 2000, "q0")]),
        Answer(q[1], [_post("r1", "A", 2500, "q1"), _post("r1b", "A", 2600, "q1")]),
        Answer(q[2], [_post("r2", "A", 2400, "q2")]),  # before q1's reply: reordered
        Answer(q[3], []),  # lost
        Answer(q[4], [_post("r4", "B", 1900, "q4")]),  # other channel: no order relation
    ]
    result = Outcome(answers=answers, bot_requests=[], bot_posts=[])
    assert (result.lost, result.duplicated, result.reordered) == (1, 1, 1)
    assert answers[0].latency_s == 1.0 and answers[3].latency_s is None


def test_delay_marker_overrides_the_default() -> None:
    assert delay_for("@ai 질문 [delay=30]", 0.2) == 30.0
    assert delay_for("@ai 질문 [delay=0.5] more", 0.2) == 0.5
    assert delay_for("@ai 질문", 0.2) == 0.2


def test_ratios_and_table_put_peers_beside_mchat_actors() -> None:
    doc = {
        "columns": [{"key": "rate", "header": "answers/s", "target": ">= 10x", "ratio": True},
                    {"key": "lost", "header": "lost", "target": "0", "ratio": False}],
        "systems": {"mchat-actors": {"1s": {"rate": 8.0, "lost": 0}},
                    "serial": {"1s": {"rate": 0.8, "lost": 3}},
                    "mmpy": {"error": "not run: mmpy_bot is not installed"}},
    }
    doc["ratios"] = ratios(doc)
    assert doc["ratios"] == {"1s": {"serial": {"rate": 10.0}}}
    text = table(doc)
    assert "ratio vs serial" in text and "10.00" in text
    assert "not run: mmpy_bot is not installed" in text
    assert "answers/s: >= 10x" in text


def test_bootstrap_diff_finds_a_shift_and_no_shift() -> None:
    import random

    from bench.metrics import bootstrap_diff

    rng = random.Random(3)
    quiet = [[0.2 + rng.expovariate(20) for _ in range(100)] for _ in range(4)]
    same = [[0.2 + rng.expovariate(20) for _ in range(100)] for _ in range(4)]
    shifted = [[x + 0.1 for x in block] for block in quiet]
    d, low, high = bootstrap_diff(quiet, same, .5)  # type: ignore[misc]
    assert low <= d <= high and low < 0 < high
    d, low, high = bootstrap_diff(quiet, shifted, .5)  # type: ignore[misc]
    assert abs(d - 0.1) < 1e-9 and 0.05 < low <= 0.1 <= high < 0.15
    # blocks that disagree with each other widen the interval (the between-block spread counts)
    drifting = [[x + 0.05 * k for x in block] for k, block in enumerate(same)]
    _, low2, high2 = bootstrap_diff(quiet, drifting, .5)  # type: ignore[misc]
    _, low1, high1 = bootstrap_diff(quiet, same, .5)  # type: ignore[misc]
    assert high2 - low2 > 2 * (high1 - low1)
    assert bootstrap_diff([], same, .5) is None and bootstrap_diff([[]], same, .5) is None


def test_median_ci_is_distribution_free_and_widens_with_fewer_values() -> None:
    from bench.metrics import median_ci

    twelve = [-83, -57, -35, -6, -6, -6, -5, -1, 0, 2, 30, 93]
    assert median_ci(twelve) == (-5.5, -35, 2)  # 3rd and 10th of 12 (96 % coverage)
    assert median_ci(list(range(6))) == (2.5, 0, 5)  # 6 values: only min .. max
    assert median_ci([1, 2, 3, 4, 5]) is None  # too few for 95 %
    wide = median_ci([float(x) for x in range(100)])
    assert wide is not None and 38 <= wide[1] < 49.5 < wide[2] <= 61
