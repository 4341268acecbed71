from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from hypothesis import HealthCheck, settings

from mchat_actors.chat.local_embeddings import LocalEmbedder
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


class _SharedEncoder:
    """The sentence encoder in the wheel, read once per test session on first use (~1 s)."""

    def __init__(self) -> None:
        self._embedder: LocalEmbedder | None = None
        self._lock = threading.Lock()
        self.real_load = LocalEmbedder.load

    def get(self, **intervals: float) -> LocalEmbedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = self.real_load()
            return self._embedder.with_intervals(**intervals)


@pytest.fixture(scope="session")
def shared_encoder() -> _SharedEncoder:
    return _SharedEncoder()


@pytest.fixture
def encoder(shared_encoder: _SharedEncoder) -> LocalEmbedder:
    """An embedder on the session's sentence encoder (its own statistics)."""
    return shared_encoder.get()


@pytest.fixture(scope="session", autouse=True)
def _one_encoder_per_session(shared_encoder: _SharedEncoder) -> Iterator[None]:
    """Services opened in-process share the session's encoder, as they share Kiwi."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LocalEmbedder, "load", staticmethod(shared_encoder.get))
        yield


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



# -- make test's workers (pytest-xdist, see the Makefile) ------------------------------------------

SERVE_SLOTS = 2  # tests marked ``serve`` running at once across the workers


def _weight(item: pytest.Item) -> float:
    """A rough guess of a test's seconds, for spreading the serve tests out."""
    return 15.0 if item.get_closest_marker("slow") is not None else 0.3


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist workers, order the tests so the long ones start early and the real-process
    ones are spread out: tests marked ``slow`` first (in collection order), then the others,
    with the ``serve`` ones (those that run alone spaced between the rest) put back at even
    intervals of the others' guessed time over its first 80 % (so a worker that picks one
    seldom waits for a slot, see ``_serve_slot``). Every worker sorts the same collection the
    same way, as xdist requires. A run without workers keeps the file order."""
    if not hasattr(config, "workerinput"):
        return
    rest = [i for i in items if i.get_closest_marker("serve") is None]
    rest.sort(key=lambda item: item.get_closest_marker("slow") is None)
    marks = {i: i.get_closest_marker("serve") for i in items}
    alone = [i for i in items if marks[i] is not None and marks[i].kwargs.get("alone")]
    shared = [i for i in items if marks[i] is not None and not marks[i].kwargs.get("alone")]
    serve: list[pytest.Item] = []
    for k, item in enumerate(alone):  # the k-th before shared[k * len(shared) // len(alone)]
        start = k * len(shared) // len(alone)
        end = (k + 1) * len(shared) // len(alone)
        serve += [item, *shared[start:end]]
    serve += shared[len(shared) if alone else 0:]
    gap = 0.8 * sum(_weight(i) for i in rest) / max(1, len(serve))
    ordered: list[pytest.Item] = []
    spent, placed = 0.0, 0
    for item in rest:
        while placed < len(serve) and spent >= placed * gap:
            ordered.append(serve[placed])
            placed += 1
        ordered.append(item)
        spent += _weight(item)
    ordered += serve[placed:]
    assert len(ordered) == len(items)
    items[:] = ordered


def _take_slots(folder: Path, alone: bool) -> list[IO[str]]:
    """Lock one free slot (``alone``: every slot, waiting for each) among SERVE_SLOTS files.
    Every taker goes through a turnstile lock first, so a test waiting to run alone is not
    overtaken by the ones that come after it."""
    def handle(name: str) -> IO[str]:
        return open(folder / name, "a")  # noqa: SIM115 - closed by the caller

    turnstile = handle("turnstile")
    try:
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        if alone:
            held = [handle(f"slot-{n}") for n in range(SERVE_SLOTS)]
            for slot in held:
                fcntl.flock(slot, fcntl.LOCK_EX)
            return held
        while True:
            for n in range(SERVE_SLOTS):
                slot = handle(f"slot-{n}")
                try:
                    fcntl.flock(slot, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    slot.close()
                    continue
                return [slot]
            time.sleep(0.1)
    finally:
        turnstile.close()  # and its lock with it


@pytest.fixture(autouse=True)
def _serve_slot(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A test marked ``serve`` runs ``mchat-actors serve`` (or the benchmark) as real
    processes: each reads Kiwi's model (~4 s of CPU) and then is measured from the outside
    (latencies, shutdown within its grace period, recovery windows). Under xdist workers it
    holds one of SERVE_SLOTS file locks in the run's shared temporary folder for its duration,
    so at most SERVE_SLOTS of them run at once; ``serve(alone=True)`` (the benchmark's quick
    runs, whose recovery windows are a few seconds) holds them all. Without workers (one test
    at a time) it does nothing."""
    mark = request.node.get_closest_marker("serve")
    if mark is None or not hasattr(request.config, "workerinput"):
        yield
        return
    folder = Path(tmp_path_factory.getbasetemp()).parent / "serve-slots"
    folder.mkdir(exist_ok=True)
    held = _take_slots(folder, bool(mark.kwargs.get("alone")))
    try:
        yield
    finally:
        for slot in held:
            slot.close()  # closing releases the lock
