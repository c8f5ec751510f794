"""Shared checks for batch updates: any split of a stream gives the changes and state of one value at a time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
from hypothesis import strategies as st

from detectors.base import Change
from streams.codec import encode

Feed = Callable[[Any, slice], list[Change]]


@st.composite
def cuts(draw: st.DrawFn, n: int, max_cuts: int = 12) -> list[int]:
    """Sorted split points inside ``range(1, n)``: the batches of one split of a stream of ``n`` values."""
    if n < 2:
        return []
    return sorted(set(draw(st.lists(st.integers(1, n - 1), max_size=max_cuts))))


def batches(n: int, points: Sequence[int]) -> list[slice]:
    """The slices that ``points`` cut ``range(n)`` into."""
    edges = [0, *points, n]
    return [slice(a, b) for a, b in pairwise(edges) if b > a]


def run(make: Callable[[], Any], feed: Feed, n: int, points: Sequence[int]) -> tuple[Any, list[tuple[int, bool, Any]]]:
    """Feed a fresh detector in the given batches; return it with its changes at absolute indices."""
    detector = make()
    changes = []
    for part in batches(n, points):
        changes += [(part.start + c.index, c.active, c.evidence) for c in feed(detector, part)]
    return detector, changes


def assert_split_invariant(make: Callable[[], Any], feed: Feed, n: int, points: Sequence[int]) -> list[Any]:
    """The same changes (index, condition, evidence) and the same state for ``points`` as for one value at a time."""
    one, one_changes = run(make, feed, n, list(range(1, n)))
    split, split_changes = run(make, feed, n, points)
    assert split_changes == one_changes
    assert encode(split) == encode(one), "the state after a split differs from one value at a time"
    whole, whole_changes = run(make, feed, n, [])
    assert whole_changes == one_changes
    assert encode(whole) == encode(one)
    return one_changes


def times(n: int, rng: np.random.Generator) -> np.ndarray:
    """Non-decreasing event times with ties, as event-time order gives them."""
    return np.cumsum(rng.choice([0.0, 0.5, 1.0], size=n))
