"""Loop guards: two bots that answer each other must not talk forever.

1. Posts by other bots (``props.from_bot``) and by webhooks (``props.from_webhook``) are stored
   like any post but never answered, unless the author's username is listed in
   ``MCHAT_ANSWER_BOTS`` (for a webhook post the author is the hook's creator).
2. Whatever slips through (a bot that does not set ``from_bot``, an allowed bot gone wild) meets
   a per-channel cap: at most ``MCHAT_MAX_ANSWERS_PER_MIN`` answers in any 60 s window of one
   channel. A post over the cap is stored and not answered; each one is counted per channel and
   logged (at most one warning per channel per window).

The guard is owned by the handler (one serializer per channel calls it, in order); its stats
are read by the status API, the admin page and ``/metrics``.
"""

from __future__ import annotations

import logging
from collections import Counter, deque

import attrs
import trio

from .messages import Post

logger = logging.getLogger(__name__)

WINDOW_S = 60.0
MAX_TRACKED_CHANNELS = 512  # above this, idle windows are dropped


@attrs.define
class LoopGuardStats:
    bot_posts_unanswered: int = 0  # from_bot/from_webhook posts that would have been answered
    capped: Counter[str] = attrs.Factory(Counter)  # answers refused by the cap, per channel

    def total_capped(self) -> int:
        return sum(self.capped.values())


@attrs.define
class LoopGuard:
    answer_bots: frozenset[str] = frozenset()  # lower-case usernames
    max_per_min: int = 30
    stats: LoopGuardStats = attrs.Factory(LoopGuardStats)
    _answers: dict[str, deque[float]] = attrs.Factory(dict)
    _warned_at: dict[str, float] = attrs.Factory(dict)

    @classmethod
    def create(cls, answer_bots: tuple[str, ...], max_per_min: int) -> LoopGuard:
        return cls(answer_bots=frozenset(n.lstrip("@").lower() for n in answer_bots if n),
                   max_per_min=max_per_min)

    @staticmethod
    def is_automated(post: Post) -> bool:
        return post.from_bot or post.from_webhook

    def bot_allowed(self, username: str | None) -> bool:
        """May an automated post by ``username`` be answered? Counts a refusal."""
        if username and username.lstrip("@").lower() in self.answer_bots:
            return True
        self.stats.bot_posts_unanswered += 1
        return False

    def take(self, channel_id: str, now: float | None = None) -> bool:
        """Reserve one answer in ``channel_id``; False (counted, logged) over the cap."""
        now = trio.current_time() if now is None else now
        if len(self._answers) > MAX_TRACKED_CHANNELS:
            self.forget_idle(now)
        window = self._answers.setdefault(channel_id, deque())
        while window and now - window[0] >= WINDOW_S:
            window.popleft()
        if len(window) < self.max_per_min:
            window.append(now)
            return True
        self.stats.capped[channel_id] += 1
        last = self._warned_at.get(channel_id)
        if last is None or now - last >= WINDOW_S:
            self._warned_at[channel_id] = now
            logger.warning("loop guard: channel %s reached %d answers in %g s; further posts "
                           "are stored but not answered until the window moves (a bot loop?)",
                           channel_id, self.max_per_min, WINDOW_S)
        return False

    def give_back(self, channel_id: str) -> None:
        """Undo the channel's newest ``take`` (the caller's own: one lane per channel takes at
        a time): the post turned out to be a duplicate and is not answered again."""
        window = self._answers.get(channel_id)
        if window:
            window.pop()

    def forget_idle(self, now: float | None = None) -> None:
        """Drop windows with no answer in the last minute (bounded memory)."""
        now = trio.current_time() if now is None else now
        for channel_id in [c for c, w in self._answers.items()
                           if not w or now - w[-1] >= WINDOW_S]:
            del self._answers[channel_id]
