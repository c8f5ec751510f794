"""Accuracy estimated from the scores of a binary classifier alone, before labels arrive (CBPE)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.alerts import Evidence
from detectors.metrics import probability
from detectors.performance import same_class
from detectors.windows import RollingMean, WindowClock


def isotonic(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The non-decreasing sequence closest to ``values`` in weighted least squares (pool adjacent violators).

    >>> isotonic(np.array([0.1, 0.3, 0.2, 0.6]), np.array([1.0, 1.0, 1.0, 1.0])).round(2).tolist()
    [0.1, 0.25, 0.25, 0.6]
    """
    blocks: list[list[float]] = []  # [mean, weight, length]
    for v, w in zip(values.tolist(), weights.tolist()):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks[-1]
            blocks[-1] = [(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2]
    return np.array([v for v, _, n in blocks for _ in range(n)])


@dataclass
class ConfidenceBasedEstimator:
    """Confidence-based performance estimation (NannyML's CBPE), streaming.

    A prediction whose calibrated probability of ``positive`` is ``p`` is right
    with probability ``p`` if it predicts ``positive`` and ``1 - p`` otherwise;
    the mean of that over the last ``window`` predictions estimates accuracy
    with no labels. Calibration is histogram binning (``bins`` equal-width bins
    of the score, each rate smoothed by ``prior_strength`` pseudo-counts at the
    bin's mean score, then made monotone): it is learned from the first
    ``reference_size`` labelled, scored pairs, then frozen; until then scores
    count as their bin's midpoint. The reference estimated accuracy is the estimate
    over those pairs. The condition holds when the rolling estimate falls at
    least ``min_drop`` below it with a z-score of at least ``min_z``; it clears
    below half that drop. Labels joined later only feed ``realized_accuracy``.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(8)
    >>> cbpe = ConfidenceBasedEstimator()
    >>> for i in range(8000):
    ...     p = 1 / (1 + math.exp(-rng.gauss(0.0, 4.0 if i < 5000 else 1.5)))  # less confident from 5000
    ...     cbpe.observe_prediction(None, p, float(i))
    ...     if i < 1000:
    ...         cbpe.observe_outcome(None, int(rng.random() < p), p)
    ...     if cbpe.active:
    ...         break
    >>> i, round(cbpe.reference_accuracy, 3), round(cbpe.estimated_accuracy, 3)
    (5375, 0.852, 0.802)
    """

    positive: Any = 1
    reference_size: int = 1000
    window: int = 1000
    bins: int = 20
    prior_strength: float = 2.0
    min_drop: float = 0.05
    min_z: float = 4.0
    check_every: int = 16
    threshold: float = 0.5  # the decision threshold, when a prediction comes without its class
    # reference pairs per score bin: count, positive labels, summed score, predicted positive
    bin_n: list[float] = field(init=False)
    bin_positive: list[float] = field(init=False)
    bin_score: list[float] = field(init=False)
    bin_predicted: list[float] = field(init=False)
    reference_n: int = 0
    calibrated: bool = False
    calibration: list[float] = field(init=False)  # P(positive) per score bin
    reference_accuracy: float = math.nan
    reference_std: float = 0.0
    codes: list[int] = field(init=False)  # 2 * bin + predicted positive, the last ``window`` predictions
    expected: list[float] = field(init=False)  # their probability of being right
    head: int = 0
    n: int = 0
    expected_sum: float = 0.0
    realized: RollingMean = field(init=False)
    clock: WindowClock = field(init=False)
    active: bool = False
    drop: float = 0.0
    z: float = 0.0
    predictions: int = 0
    last_ts: float = 0.0

    def __post_init__(self) -> None:
        self.bin_n, self.bin_positive, self.bin_score, self.bin_predicted = ([0.0] * self.bins for _ in range(4))
        self.calibration = [(b + 0.5) / self.bins for b in range(self.bins)]
        self.codes, self.expected = [0] * self.window, [0.0] * self.window
        self.realized = RollingMean(self.window)
        self.clock = WindowClock(self.window)

    def _said_positive(self, prediction: Any, p: float) -> bool:
        return p >= self.threshold if prediction is None else same_class(prediction, self.positive)

    def _bin(self, p: float) -> int:
        return min(int(p * self.bins), self.bins - 1)

    def _right(self, code: int) -> float:
        p = self.calibration[code // 2]
        return p if code % 2 else 1.0 - p

    def calibrated_probability(self, score: float) -> float:
        """The calibrated probability of ``positive`` for a raw score."""
        return self.calibration[self._bin(probability(score))]

    def observe_prediction(self, prediction: Any, score: float | None, ts: float) -> None:
        """Feed one prediction (``None``: the class the score gives at ``threshold``) with its score."""
        if score is None:
            return
        p = probability(score)
        code = 2 * self._bin(p) + self._said_positive(prediction, p)
        self.predictions += 1
        self.last_ts = ts
        self.clock.tick(ts)
        right, h = self._right(code), self.head
        if self.n == self.window:
            self.expected_sum -= self.expected[h]
        else:
            self.n += 1
        self.codes[h], self.expected[h] = code, right
        self.expected_sum += right
        self.head = (h + 1) % self.window
        if self.head == 0:  # once per lap, so float error never builds up
            self.expected_sum = math.fsum(self.expected)
        if self.calibrated and self.predictions % self.check_every == 0:
            self._check()

    def observe_outcome(self, prediction: Any, label: Any, score: float | None) -> None:
        """Feed one prediction joined with its true label."""
        p = None if score is None else probability(score)
        if p is None and prediction is None:
            return  # no way to tell which class was predicted
        said_positive = self._said_positive(prediction, p)  # type: ignore[arg-type]
        positive = same_class(label, self.positive)
        self.realized.update(float(said_positive == positive))
        if self.calibrated or p is None:
            return
        b = self._bin(p)
        self.bin_n[b] += 1
        self.bin_positive[b] += positive
        self.bin_score[b] += p
        self.bin_predicted[b] += said_positive
        self.reference_n += 1
        if self.reference_n == self.reference_size:
            self._fit()

    def _fit(self) -> None:
        n, score = np.array(self.bin_n), np.array(self.bin_score)
        centre = (np.arange(self.bins) + 0.5) / self.bins
        prior = np.where(n > 0, score / np.maximum(n, 1), centre)
        m = self.prior_strength
        rate = isotonic((np.array(self.bin_positive) + m * prior) / (n + m), n + m)
        self.calibration = rate.tolist()
        said = np.array(self.bin_predicted)
        right = said * rate + (n - said) * (1 - rate)
        right2 = said * rate**2 + (n - said) * (1 - rate) ** 2
        self.reference_accuracy = float(right.sum() / n.sum())
        self.reference_std = math.sqrt(max(float(right2.sum() / n.sum()) - self.reference_accuracy**2, 0.0))
        self.calibrated = True
        self.expected[: self.n] = [self._right(code) for code in self.codes[: self.n]]
        self.expected_sum = math.fsum(self.expected[: self.n])

    @property
    def estimated_accuracy(self) -> float:
        """Estimated accuracy of the last ``window`` predictions (NaN before any)."""
        return self.expected_sum / self.n if self.n else math.nan

    @property
    def realized_accuracy(self) -> float:
        """Accuracy of the last ``window`` joined pairs (NaN before any)."""
        return self.realized.mean if self.realized.n else math.nan

    @property
    def gap(self) -> float:
        """Estimated minus realized accuracy (NaN until both exist)."""
        return self.estimated_accuracy - self.realized_accuracy

    def _check(self) -> None:
        if self.n < min(self.window, 200):
            return
        self.drop = self.reference_accuracy - self.estimated_accuracy
        spread = max(self.reference_std, 1e-6) * math.sqrt(1.0 / self.n + 1.0 / self.reference_n)
        self.z = self.drop / spread
        if self.active:
            self.active = self.drop >= self.min_drop / 2
        else:
            self.active = self.drop >= self.min_drop and self.z >= self.min_z

    def evidence(self) -> Evidence:
        """The current measurement, whether or not the condition holds."""
        severity = "critical" if self.drop >= 2 * self.min_drop else "warning"
        realized = f"{self.realized_accuracy:.4g}" if self.realized.n else "n/a"
        message = (
            f"estimated accuracy {self.estimated_accuracy:.4g} over the last {self.n} predictions, from their "
            f"scores (reference {self.reference_accuracy:.4g}; realized {realized} over {self.realized.n} labelled)"
        )
        return Evidence(
            "performance", None, "cbpe", round(self.estimated_accuracy, 6),
            round(self.reference_accuracy - self.min_drop, 6), self.n, self.clock.start, self.last_ts,
            severity, message,
        )
