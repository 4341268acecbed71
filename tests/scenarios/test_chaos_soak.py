"""The chaos soak (bench/chaos_soak.py), short: faults, a SIGKILL, and nothing lost."""

from __future__ import annotations

import pytest

from bench.chaos_soak import SoakConfig, max_in_any_window, soak


def test_window_counter():
    assert max_in_any_window([0.0, 0.5, 0.99, 1.0, 1.5]) == 3
    assert max_in_any_window([]) == 0


@pytest.mark.slow
@pytest.mark.serve
async def test_short_chaos_soak_loses_nothing(tmp_path):
    """20 s, 6 channels, a fault every ~4 s, a SIGKILL + restart every ~10 s: every post
    stored once and in channel order, every question answered once, never over 10 req/s."""
    cfg = SoakConfig(seconds=20, channels=6, posts_per_s=5, fault_every_s=4, kill_every_s=10,
                     converge_timeout_s=60, seed=7)
    result = await soak(cfg, tmp_path)
    assert result["posts_sent"] > 50 and result["kills"] >= 1
    assert result["lost"] == 0, (result, (tmp_path / "serve.log").read_text()[-3000:])
    assert result["duplicated"] == 0 and result["out_of_order"] == 0, result
    assert result["max_requests_in_1s"] <= cfg.rate_limit, result
    assert result["exit_status"] == 0, result
