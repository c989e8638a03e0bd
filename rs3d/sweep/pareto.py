"""Which points are on the speed-accuracy (or memory-accuracy) Pareto front. Pure functions.

A point is on the front when no other point is at least as good in both cost and error and
strictly better in one: nothing is both cheaper (or as cheap) and more accurate (or as accurate).
Two identical points are both on it. Points with an unknown cost or error are never on it.
"""

from __future__ import annotations

from typing import List, Optional, Sequence


def pareto_front(costs: Sequence[Optional[float]], errors: Sequence[Optional[float]]) -> List[bool]:
    """``front[i]`` is True when point ``i`` (lower cost and lower error are better) is not dominated."""
    if len(costs) != len(errors):
        raise ValueError(f"{len(costs)} costs for {len(errors)} errors")
    known = [i for i, (c, e) in enumerate(zip(costs, errors)) if c is not None and e is not None]
    front = [False] * len(costs)
    for i in known:
        ci, ei = costs[i], errors[i]
        front[i] = not any(
            costs[j] <= ci and errors[j] <= ei and (costs[j] < ci or errors[j] < ei) for j in known if j != i
        )
    return front


def front_line(costs: Sequence[Optional[float]], errors: Sequence[Optional[float]]) -> List[int]:
    """Indices of the front's points in order of increasing cost (what a plot connects)."""
    on = pareto_front(costs, errors)
    return sorted((i for i, f in enumerate(on) if f), key=lambda i: (costs[i], errors[i]))
