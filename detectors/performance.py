"""Realized model performance from joined (prediction, label) pairs."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.alerts import Evidence
from detectors.base import Change, Hysteresis, RingSum, as_times
from detectors.windows import RunningMoments, WindowClock, add_in_order, all_finite

__all__ = [
    "CLASSIFICATION",
    "REGRESSION",
    "Label",
    "PerformanceMonitor",
    "canonical_class",
    "canonical_classes",
    "infer_task",
    "numeric_labels",
    "same_class",
]

CLASSIFICATION = "classification"
REGRESSION = "regression"
Label = float | int | str | bool  # a predicted class or value, or a true label


def infer_task(prediction: Any) -> str:
    """Regression when predictions are floats, else classification.

    >>> infer_task(0.73), infer_task(1), infer_task("spam"), infer_task(True)
    ('regression', 'classification', 'classification', 'classification')
    """
    return REGRESSION if isinstance(prediction, float) else CLASSIFICATION


def same_class(prediction: Any, label: Any) -> bool:
    """Compare classes across JSON types: ``1``, ``1.0``, ``"1"``, ``true`` and ``"true"`` are one class.

    >>> same_class(1, "1"), same_class(True, 1), same_class("false", 0), same_class("a", "b")
    (True, True, True, False)
    """
    return canonical_class(prediction) == canonical_class(label)


def canonical_class(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return "1" if value.lower() == "true" else "0"
    return str(value)


# Values equal in Python (1, 1.0, True) share a cache entry; they share their class too.
_cached_canonical = functools.lru_cache(maxsize=1 << 14)(canonical_class)


def canonical_classes(values: Sequence[Any]) -> list[str]:
    """Each value's class as ``same_class`` compares it (idempotent: a class maps to itself).

    >>> canonical_classes([1, 1.0, "1", True, "true", "no", 2.5])
    ['1', '1', '1', '1', '1', 'no', '2.5']
    """
    try:
        return list(map(_cached_canonical, values))
    except TypeError:  # an unhashable value
        return [canonical_class(v) for v in values]


def numeric_labels(values: Sequence[Any]) -> np.ndarray:
    """Regression predictions or labels as float64, NaN where a value is not a finite number.

    >>> numeric_labels([1.5, "2", None, "x", True, float("inf")]).tolist()
    [1.5, 2.0, nan, nan, 1.0, nan]
    """
    try:
        out = np.array(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        out = np.array([_float(v) for v in values], dtype=np.float64)
    out[~np.isfinite(out)] = np.nan
    return out


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


@dataclass
class PerformanceMonitor:
    """Rolling and cumulative accuracy (classification) or MAE (regression).

    The first ``baseline_size`` joined pairs set the baseline. Every
    ``check_every`` pairs after it (as each block of that many closes, at
    absolute positions), the condition is judged: it holds when the
    rolling metric is worse than the baseline by ``min_drop`` (accuracy
    points; for MAE, a relative increase of ``5 * min_drop``) with a z-score of
    at least ``min_z`` (:class:`~detectors.base.Hysteresis`); it clears below
    half that degradation. :meth:`update_many` takes the pairs' losses
    (:meth:`losses`: 0/1 errors or absolute errors).

    Examples
    --------
    >>> import random
    >>> rng = random.Random(1)
    >>> wrong = [float(rng.random() >= (0.9 if i < 3000 else 0.7)) for i in range(6000)]
    >>> monitor = PerformanceMonitor(CLASSIFICATION)
    >>> changes = monitor.update_many(np.array(wrong), np.arange(6000.0))
    >>> [(c.index, c.active, round(c.evidence.statistic, 2)) for c in changes]
    [(3503, True, 0.8)]
    >>> monitor.metric_name, round(monitor.rolling, 2)
    ('accuracy', 0.72)
    """

    task: str
    baseline_size: int = 500
    window: int = 1000
    min_drop: float = 0.10
    min_z: float = 4.0
    check_every: int = 16
    n: int = 0
    total_loss: float = 0.0
    baseline_loss: RunningMoments = field(default_factory=RunningMoments)
    recent: RingSum = field(default_factory=lambda: RingSum(1))  # the last ``window`` losses up to the last block
    block: list[float] = field(default_factory=list)  # losses of the open block (fewer than ``check_every``)
    clock: WindowClock = field(default_factory=lambda: WindowClock(1))
    rule: Hysteresis = field(default_factory=lambda: Hysteresis(0.1))
    degradation: float = 0.0
    last_ts: float = 0.0

    def __post_init__(self) -> None:
        if self.recent.size != self.window:  # a new monitor (a decoded one comes with its own)
            self.recent = RingSum(self.window)
            self.clock = WindowClock(self.window)
            self.rule = Hysteresis(self.bound, self.min_z)

    # -- reading -------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.rule.active

    @property
    def metric_name(self) -> str:
        return "accuracy" if self.task == CLASSIFICATION else "mae"

    @property
    def bound(self) -> float:
        """The degradation that raises the condition: accuracy points, or MAE's relative increase."""
        return self.min_drop if self.task == CLASSIFICATION else 5 * self.min_drop

    def _value(self, mean_loss: float) -> float:
        return 1.0 - mean_loss if self.task == CLASSIFICATION else mean_loss

    @property
    def recent_n(self) -> int:
        """Pairs in the rolling window."""
        return min(self.n, self.window)

    @property
    def rolling(self) -> float:
        """The metric over the last ``window`` pairs."""
        ring, m = self.recent, len(self.block)
        if not m:
            return self._value(ring.mean)
        if m >= ring.size:  # a window shorter than a block
            return self._value(math.fsum(self.block[-ring.size :]) / ring.size)
        leaving = min(max(ring.count + m - ring.size, 0), m)  # the oldest values the open block has replaced
        oldest = ring.head if ring.count >= ring.size else 0
        old = ring.values[(oldest + np.arange(leaving)) % ring.size]
        return self._value(math.fsum([ring.total, *self.block, *(-old).tolist()]) / self.recent_n)

    @property
    def cumulative(self) -> float:
        """The metric since the start."""
        return self._value(self.total_loss / self.n) if self.n else float("nan")

    @property
    def baseline(self) -> float:
        return self._value(self.baseline_loss.mean)

    # -- losses ----------------------------------------------------------------------------

    def loss(self, prediction: Any, label: Any) -> float:
        """0/1 error for classification, absolute error for regression."""
        if self.task == CLASSIFICATION:
            return 0.0 if same_class(prediction, label) else 1.0
        loss = abs(float(prediction) - float(label))
        if not math.isfinite(loss):
            raise ValueError(f"non-finite regression error for label {label!r}")
        return loss

    def losses(self, predictions: Sequence[Any], labels: Sequence[Any]) -> np.ndarray:
        """:meth:`loss` of each pair; for regression, NaN where a value is not a finite number."""
        if self.task == CLASSIFICATION:
            guesses, truths = canonical_classes(predictions), canonical_classes(labels)
            return np.array([g != t for g, t in zip(guesses, truths, strict=True)], dtype=np.float64)
        errors: np.ndarray = np.abs(numeric_labels(predictions) - numeric_labels(labels))
        return errors

    # -- updating ------------------------------------------------------------------------

    def update(self, prediction: Any, label: Any, ts: float) -> None:
        """Score one joined pair."""
        self.update_many(np.array([self.loss(prediction, label)]), np.array([ts], dtype=np.float64))

    def update_many(self, losses: np.ndarray, ts: np.ndarray | float) -> list[Change]:
        """Add the losses of joined pairs in order; return where the condition started or stopped holding."""
        losses = np.asarray(losses, dtype=np.float64)
        k = len(losses)
        if not k:
            return []
        times = as_times(ts, k)
        if not all_finite(losses):
            raise ValueError("non-finite loss")
        self.rule.bound, self.rule.min_z = self.bound, self.min_z  # thresholds set since apply now
        if self.baseline_loss.n < self.baseline_size:
            self.baseline_loss.update_many(losses[: self.baseline_size - self.baseline_loss.n])
        need = self.check_every - len(self.block)  # values that close the open block
        if k < need:  # no decision in this batch
            self._advance(losses, times)
            return []
        # each block that closes is judged, from the ring's totals after it
        ends = np.arange(need - 1, k, self.check_every)  # batch index of each closing block's last value
        counts = self.n + ends + 1
        recent_n = np.minimum(counts, self.window)
        judged = (counts > self.baseline_size) & (recent_n >= min(self.window, 200))
        closing = np.concatenate((self.block, losses[: ends[-1] + 1]))
        trial = RingSum(
            self.recent.size, self.recent.values.copy(), self.recent.head, self.recent.count, self.recent.total
        )
        totals = trial.push_many(closing)[len(self.block) + ends]
        at, recent_n = ends[judged], recent_n[judged]
        degradation, z = self._decisions(totals[judged] / recent_n, recent_n)
        changes: list[Change] = []
        done, j = 0, 0
        while (flip := self.rule.first_change(degradation[j:], z[j:])) >= 0:
            j += flip
            stop = int(at[j]) + 1
            self._advance(losses[done:stop], times[done:stop])
            done = stop
            self.degradation = float(degradation[j])
            self.rule.active = not self.rule.active
            changes.append(Change(stop - 1, self.active, self.evidence()))
            j += 1
        self._advance(losses[done:], times[done:], trial if not done else None)
        if len(at):
            self.degradation = float(degradation[-1])
        return changes

    def _advance(self, losses: np.ndarray, times: np.ndarray, pushed: RingSum | None = None) -> None:
        """Take losses: whole blocks into the ring (``pushed``: a ring that already holds them), the rest open."""
        if not len(losses):
            return
        need = self.check_every - len(self.block)
        if len(losses) < need:
            self.block += losses.tolist()
        else:
            whole = need + (len(losses) - need) // self.check_every * self.check_every
            if pushed is None:
                self.recent.extend(np.concatenate((self.block, losses[:whole])))
            else:
                self.recent = pushed
            self.block = losses[whole:].tolist()
        self.clock.tick_many(times)
        self.n += len(losses)
        self.total_loss = add_in_order(self.total_loss, losses)
        self.last_ts = float(times[-1])

    def _decisions(self, mean_loss: np.ndarray, recent_n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Degradation and its z-score for rolling mean losses over ``recent_n`` pairs."""
        base = self.baseline_loss.mean
        worse = mean_loss - base
        if self.task == CLASSIFICATION:
            degradation = worse
            p = min(max(base, 0.01), 0.5)
            spread = math.sqrt(p * (1 - p))
        else:
            degradation = worse / max(base, 1e-12)
            spread = max(self.baseline_loss.std, 1e-12) / max(base, 1e-12)
        return degradation, degradation / (spread / np.sqrt(recent_n))

    def evidence(self) -> Evidence:
        """The current measurement, whether or not the condition holds."""
        bound = self.bound
        severity = "critical" if self.degradation >= 2 * bound else "warning"
        threshold = self.baseline - bound if self.task == CLASSIFICATION else self.baseline * (1 + bound)
        message = (
            f"rolling {self.metric_name} {self.rolling:.4g} over the last {self.recent_n} labelled "
            f"predictions (baseline {self.baseline:.4g})"
        )
        return Evidence(
            "performance",
            None,
            f"rolling_{self.metric_name}",
            round(self.rolling, 6),
            round(threshold, 6),
            self.recent_n,
            self.clock.start,
            self.last_ts,
            severity,
            message,
        )
