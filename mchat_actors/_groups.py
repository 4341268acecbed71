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


def first_leaf(exc: BaseException,
               types: type[BaseException] | tuple[type[BaseException], ...]
               ) -> BaseException | None:
    """The first leaf of ``exc`` (itself when not a group) that is one of ``types``."""
    return next((e for e in leaves(exc) if isinstance(e, types)), None)


@contextmanager
def collapse_groups(
    fatal: tuple[type[BaseException], ...] = (),
) -> Iterator[None]:
    """Re-raise the single real error of a group; or its first ``fatal`` leaf, whatever else
    the group holds (a rejected token ends the service even when another actor failed too)."""
    try:
        yield
    except BaseExceptionGroup as group:
        stop = first_leaf(group, fatal) if fatal else None
        if stop is not None:
            raise stop from stop.__cause__
        real = [e for e in leaves(group) if not isinstance(e, trio.Cancelled)]
        if len(real) == 1:
            raise real[0] from real[0].__cause__
        if not real:  # only Cancelled inside: let trio see one Cancelled
            raise leaves(group)[0] from None
        raise
