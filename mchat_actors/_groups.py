"""Collapse trio's strict exception groups where exactly one real error is inside.

trio wraps every exception leaving a nursery in an ``ExceptionGroup``. Where a nursery has one
meaningful failure (the others are the ``Cancelled`` it caused), callers want to catch the typed
error (``except MattermostUnavailable``), so ``collapse_groups`` re-raises that single leaf.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import trio


def leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        out: list[BaseException] = []
        for inner in exc.exceptions:
            out.extend(leaves(inner))
        return out
    return [exc]


@contextmanager
def collapse_groups() -> Iterator[None]:
    try:
        yield
    except BaseExceptionGroup as group:
        real = [e for e in leaves(group) if not isinstance(e, trio.Cancelled)]
        if len(real) == 1:
            raise real[0] from real[0].__cause__
        if not real:  # only Cancelled inside: let trio see one Cancelled
            raise leaves(group)[0] from None
        raise
