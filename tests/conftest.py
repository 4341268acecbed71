from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from mchat_actors.chat.morph import KiwiAnalyzer

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=50
)
settings.register_profile("ci", parent=settings.get_profile("default"), max_examples=25)
settings.register_profile("patience", parent=settings.get_profile("default"), max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


class _SharedAnalyzer:
    """Kiwi's model, read once per test session on first use (2-3 s, ~300 MB)."""

    def __init__(self) -> None:
        self._analyzer: KiwiAnalyzer | None = None
        self._lock = threading.Lock()
        self.real_load = KiwiAnalyzer.load

    def get(self) -> KiwiAnalyzer:
        with self._lock:
            if self._analyzer is None:
                self._analyzer = self.real_load()
            return self._analyzer


@pytest.fixture(scope="session")
def shared_analyzer() -> _SharedAnalyzer:
    return _SharedAnalyzer()


@pytest.fixture
def kiwi(shared_analyzer: _SharedAnalyzer) -> KiwiAnalyzer:
    """The session's Kiwi analyzer (default options)."""
    return shared_analyzer.get()


@pytest.fixture(scope="session", autouse=True)
def _one_kiwi_per_session(shared_analyzer: _SharedAnalyzer) -> Iterator[None]:
    """Services opened in-process share the session's model instead of reading their own
    (processes a test starts still read theirs). A load with options reads a new one."""

    def load(**options: object) -> KiwiAnalyzer:
        return shared_analyzer.real_load(**options) if options else shared_analyzer.get()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(KiwiAnalyzer, "load", staticmethod(load))
        yield
