"""Demand-weighted shares of a leased resource pool (the request budget's ``budget:`` rows).

The channel buckets are shared out evenly (``ceil(total / live replicas)``); the budget's
shares follow demand instead: work is split by channel hash, not evenly, and a share a
replica does not use was never lent to one that had a backlog (3 replicas used 56-65 % of the
budget, docs/benchmarks.md "replicas"). Every replica publishes its demand at its tick
(``replicas.demand``: requests it wanted in the last window, or the whole pool when it was
held back by its shares) and computes the same plan from the same rows:

- ``want``: max-min fair over the demands, integer, in replica id order for ties; every
  live replica with demand gets one share first (busiest first when there are more replicas
  than shares), then every idle one gets one if the pool allows (so a first request does not
  wait for a tick and a window), then shares go one at a time to the lowest allocation still
  under its demand;
- ``target``: ``want`` plus what nobody wants, spread evenly (all idle: the even split);
- ``give_back``: a replica over its target gives back only what the others' unmet ``want``
  (not ``target``) needs beyond the free shares, the over-holders covering it in a fixed
  order (biggest excess first) so they do not all give for one need. Shares nobody needs
  stay with their holder: the hysteresis that keeps shares from moving every tick as
  demand wobbles.

Pure functions: no database, no clock (``pg.leases.Lessee.tick`` feeds them).
"""

from __future__ import annotations

from collections.abc import Mapping


def want(total: int, demands: Mapping[str, int]) -> dict[str, int]:
    """The shares each replica needs for its demand (sum <= ``total``)."""
    ids = sorted(demands)
    alloc = dict.fromkeys(ids, 0)
    left = max(0, total)
    # one each: those with demand first (busiest first), then the idle ones
    for r in sorted(ids, key=lambda r: (-max(0, demands[r]), r)):
        if not left:
            break
        alloc[r] = 1
        left -= 1
    while left:
        hungry = [r for r in ids if alloc[r] < demands[r]]
        if not hungry:
            break
        r = min(hungry, key=lambda r: (alloc[r], r))
        alloc[r] += 1
        left -= 1
    return alloc


def target(total: int, demands: Mapping[str, int]) -> dict[str, int]:
    """``want`` with the shares nobody wants spread evenly (sum == ``total`` when any
    replica is live)."""
    alloc = want(total, demands)
    left = max(0, total) - sum(alloc.values())
    while left > 0 and alloc:
        r = min(alloc, key=lambda r: (alloc[r], r))
        alloc[r] += 1
        left -= 1
    return alloc


def give_back(me: str, total: int, demands: Mapping[str, int],
              held: Mapping[str, int]) -> int:
    """How many of its shares ``me`` gives back now: its part of the others' unmet need.

    ``held``: the shares each owner holds (unexpired rows, dead owners included: theirs
    lapse by themselves); ``demands``: the live replicas' demands (``me`` among them).
    """
    goal = target(total, demands)
    needs = want(total, demands)
    need = sum(max(0, needs[r] - held.get(r, 0)) for r in needs if r != me)
    need -= max(0, total - sum(held.values()))  # the free shares cover their part first
    over = sorted(((held.get(r, 0) - goal[r], r) for r in goal if held.get(r, 0) > goal[r]),
                  key=lambda e: (-e[0], e[1]))
    for excess, r in over:
        if need <= 0:
            return 0
        part = min(excess, need)
        if r == me:
            return part
        need -= part
    return 0


def take(me: str, total: int, demands: Mapping[str, int], held: Mapping[str, int]) -> int:
    """How many free shares ``me`` takes now: up to its ``target``, but what others still
    lack for their ``want`` stays free for them. A replica that ticks first must not take
    the freed shares a later one needs (with ``target`` alone, an idle replica ticking just
    after the one giving back took every freed share up to its even split while another
    idle one, ticking later, stayed at none: ``tests/pg/test_share_plan.py``).

    ``held``: the shares each owner holds now (``me``'s after its give-back).
    """
    goal = target(total, demands)
    needs = want(total, demands)
    mine = held.get(me, 0)
    free = max(0, total - sum(held.values()))
    short = max(0, needs.get(me, 0) - mine)
    others_short = sum(max(0, needs[r] - held.get(r, 0)) for r in needs if r != me)
    spare = max(0, free - short - others_short)
    return max(0, min(goal.get(me, 0) - mine, free, short + spare))
