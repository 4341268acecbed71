from __future__ import annotations

import mchat_actors


def test_public_names_are_exactly_these():
    """The package re-exports the config, the errors a caller handles, and nothing else."""
    assert mchat_actors.__all__ == sorted(mchat_actors.__all__)
    assert set(mchat_actors.__all__) == {"ChatServiceError", "Config", "ConfigError",
                                         "MattermostError", "MchatActorsError", "RateLimited"}
    for name in mchat_actors.__all__:
        assert getattr(mchat_actors, name).__module__.startswith("mchat_actors.")
