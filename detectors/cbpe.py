"""Accuracy estimated from the scores of a binary classifier alone, before labels arrive (CBPE)."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from detectors.alerts import Evidence
from detectors.base import Change, Hysteresis, as_times
from detectors.metrics import probability
from detectors.performance import Label, canonical_classes
from detectors.windows import Ring, WindowClock

__all__ = ["ConfidenceBasedEstimator", "isotonic"]


def isotonic(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The non-decreasing sequence closest to ``values`` in weighted least squares (pool adjacent violators).

    >>> isotonic(np.array([0.1, 0.3, 0.2, 0.6]), np.array([1.0, 1.0, 1.0, 1.0])).round(2).tolist()
    [0.1, 0.25, 0.25, 0.6]
    """
    blocks: list[tuple[float, float, int]] = []  # (mean, weight, length)
    for v, w in zip(values.tolist(), weights.tolist(), strict=True):
        blocks.append((v, w, 1))
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks[-1]
            blocks[-1] = ((v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2)
    return np.array([v for v, _, n in blocks for _ in range(n)])


@functools.lru_cache(maxsize=8)
def _midpoints(bins: int) -> np.ndarray:
    """Each score bin's midpoint: the calibration before any reference (shared by every estimator)."""
    out = (np.arange(bins) + 0.5) / bins
    out.flags.writeable = False
    return out


def _nothing() -> np.ndarray:
    return np.zeros(0, dtype=np.float64)


def _codes(scores: np.ndarray, said_positive: np.ndarray | bool, bins: int) -> tuple[np.ndarray | None, np.ndarray]:
    """The rows that carry a score (None: every row) and their codes, ``2 * bin + predicted positive``.

    ``ValueError`` if a score is not a probability. A short batch is coded in
    Python: integers only, so the codes are the same either way.
    """
    if len(scores) <= 16:
        values = scores.tolist()
        one = isinstance(said_positive, (bool, np.bool_))
        said = [bool(said_positive)] * len(values) if one else np.asarray(said_positive).tolist()
        keep = [i for i, p in enumerate(values) if p == p]
        if any(not 0.0 <= values[i] <= 1.0 for i in keep):
            raise ValueError("a score is not a probability")
        codes = np.array([2 * min(int(values[i] * bins), bins - 1) + bool(said[i]) for i in keep], dtype=np.int64)
        return (None if len(keep) == len(values) else np.array(keep, dtype=np.int64)), codes
    missing = np.isnan(scores)
    rows = np.flatnonzero(~missing) if np.count_nonzero(missing) else None
    if rows is not None:
        scores = scores[rows]
        if not isinstance(said_positive, (bool, np.bool_)):
            said_positive = np.asarray(said_positive)[rows]
    if np.count_nonzero((scores < 0.0) | (scores > 1.0)):
        raise ValueError("a score is not a probability")
    bin_index = np.minimum((scores * bins).astype(np.int64), bins - 1)
    return rows, 2 * bin_index + np.asarray(said_positive, dtype=np.int64)


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
    over those pairs. Every ``check_every`` scored predictions the condition is
    judged: it holds when the rolling estimate falls at least ``min_drop``
    below the reference with a z-score of at least ``min_z``
    (:class:`~detectors.base.Hysteresis`); it clears below half that drop.
    Labels joined later only feed ``realized_accuracy``.

    The window keeps each prediction's code (``2 * bin + predicted positive``)
    as one byte; the estimate is counted from the codes and the calibration
    when it is needed, so calibrating changes no stored prediction.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(8)
    >>> cbpe = ConfidenceBasedEstimator()
    >>> found = []
    >>> for i in range(8000):
    ...     p = 1 / (1 + math.exp(-rng.gauss(0.0, 4.0 if i < 5000 else 1.5)))  # less confident from 5000
    ...     found += [i for c in cbpe.observe_predictions(None, np.array([p]), np.array([float(i)])) if c.active]
    ...     if i < 1000:
    ...         cbpe.observe_outcome(None, int(rng.random() < p), p)
    >>> found[:1], round(cbpe.reference_accuracy, 3)
    ([5375], 0.852)
    """

    positive: Label = 1
    reference_size: int = 1000
    window: int = 1000
    bins: int = 20
    prior_strength: float = 2.0
    min_drop: float = 0.05
    min_z: float = 4.0
    check_every: int = 16
    threshold: float = 0.5  # the decision threshold, when a prediction comes without its class
    # reference pairs per score bin (until calibrated): count, positive labels, summed score, predicted positive
    bin_n: np.ndarray = field(default_factory=_nothing)
    bin_positive: np.ndarray = field(default_factory=_nothing)
    bin_score: np.ndarray = field(default_factory=_nothing)
    bin_predicted: np.ndarray = field(default_factory=_nothing)
    reference_n: int = 0
    calibrated: bool = False
    calibration: np.ndarray = field(default_factory=_nothing)  # P(positive) per score bin, once calibrated
    reference_accuracy: float = math.nan
    reference_std: float = 0.0
    codes: Ring = field(default_factory=lambda: Ring(1, "int8"))  # 2 * bin + predicted positive, the last window
    realized: Ring = field(default_factory=lambda: Ring(1, "bool"))  # whether each of the last window pairs was right
    clock: WindowClock = field(default_factory=lambda: WindowClock(1))
    rule: Hysteresis = field(default_factory=lambda: Hysteresis(0.05))
    drop: float = 0.0
    z: float = 0.0
    predictions: int = 0
    last_ts: float = 0.0

    def __post_init__(self) -> None:
        if self.codes.size != self.window:  # a new estimator (a decoded one comes with its own)
            self.codes = Ring(self.window, "int8" if 2 * self.bins <= 127 else "int32")
            self.realized = Ring(self.window, "bool")
            self.clock = WindowClock(self.window)
            self.rule = Hysteresis(self.min_drop, self.min_z)

    # -- reading -------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.rule.active

    @property
    def n(self) -> int:
        """Scored predictions in the window."""
        return self.codes.n

    @property
    def rates(self) -> np.ndarray:
        """P(positive) per score bin: the calibration, or the bins' midpoints until then."""
        return self.calibration if self.calibrated else _midpoints(self.bins)

    def _right_by_code(self) -> np.ndarray:
        """The probability that a prediction is right, by code."""
        rates = self.rates
        return np.column_stack((1.0 - rates, rates)).ravel()

    def _bins(self, p: np.ndarray) -> np.ndarray:
        return np.minimum((p * self.bins).astype(np.int64), self.bins - 1)

    def calibrated_probability(self, score: float) -> float:
        """The calibrated probability of ``positive`` for a raw score."""
        return float(self.rates[self._bins(np.array([probability(score)]))[0]])

    def _expected_right(self, codes: np.ndarray, right: np.ndarray | None = None) -> float:
        """Summed probability of being right of predictions with these codes (from their counts, exactly rounded)."""
        counts = np.bincount(codes, minlength=2 * self.bins)
        return math.fsum((counts * (self._right_by_code() if right is None else right)).tolist())

    @property
    def estimated_accuracy(self) -> float:
        """Estimated accuracy of the last ``window`` predictions (NaN before any)."""
        return self._expected_right(self.codes.window()) / self.n if self.n else math.nan

    @property
    def realized_accuracy(self) -> float:
        """Accuracy of the last ``window`` joined pairs (NaN before any)."""
        n = self.realized.n
        return int(np.count_nonzero(self.realized.window())) / n if n else math.nan

    @property
    def gap(self) -> float:
        """Estimated minus realized accuracy (NaN until both exist)."""
        return self.estimated_accuracy - self.realized_accuracy

    # -- predictions ---------------------------------------------------------------------

    def _said_positive(self, predictions: Sequence[Label | None] | None, p: np.ndarray) -> np.ndarray:
        """Whether each prediction is ``positive``: its class, or its score at ``threshold`` when it has none."""
        said = p >= self.threshold
        if predictions is not None:
            positive = canonical_classes([self.positive])[0]
            for i, name in enumerate(canonical_classes(predictions)):
                if predictions[i] is not None:
                    said[i] = name == positive
        return said

    def observe_prediction(self, prediction: Label | None, score: float | None, ts: float) -> None:
        """Feed one prediction (``None``: the class the score gives at ``threshold``) with its score."""
        if score is None:
            return
        self.observe_predictions([prediction], np.array([probability(score)]), np.array([ts], dtype=np.float64))

    def observe_predictions(
        self,
        predictions: Sequence[Label | None] | None,
        scores: np.ndarray,
        ts: np.ndarray | float,
    ) -> list[Change]:
        """Feed predictions in order (``None``: classes from the scores) with their scores, NaN where none."""
        scores = np.asarray(scores, dtype=np.float64)
        return self.observe_scores(scores, self._said_positive(predictions, scores), ts)

    def observe_scores(
        self,
        scores: np.ndarray,
        said_positive: np.ndarray | bool,
        ts: np.ndarray | float,
    ) -> list[Change]:
        """Feed scored predictions in order: probability of ``positive`` (NaN: no score) and whether each said it.

        Returns where the condition started or stopped holding, as indices into this batch.
        """
        scores = np.asarray(scores, dtype=np.float64)
        times = as_times(ts, len(scores))
        rows, codes = _codes(scores, said_positive, self.bins)
        if not len(codes):
            return []
        if rows is not None:
            times = times[rows]
        first = -(self.predictions + 1) % self.check_every  # the first value that ends a block of predictions
        if not self.calibrated or first >= len(codes):
            self._commit(codes, times)
            return []
        self.rule.bound, self.rule.min_z = self.min_drop, self.min_z
        at, drop, z = self._decisions(codes, first)
        changes: list[Change] = []
        done, j = 0, 0
        while (flip := self.rule.first_change(drop[j:], z[j:])) >= 0:
            j += flip
            stop = int(at[j]) + 1
            self._commit(codes[done:stop], times[done:stop])
            done = stop
            self.drop, self.z = float(drop[j]), float(z[j])
            self.rule.active = not self.rule.active
            changes.append(Change(stop - 1 if rows is None else int(rows[stop - 1]), self.active, self.evidence()))
            j += 1
        self._commit(codes[done:], times[done:])
        if len(at):
            self.drop, self.z = float(drop[-1]), float(z[-1])
        return changes

    def _decisions(self, codes: np.ndarray, first: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The batch positions judged (every ``check_every``-th prediction from ``first``), with drop and z there."""
        ends = np.arange(first, len(codes), self.check_every)  # batch index of each judged prediction
        sizes = np.minimum(self.codes.n + ends + 1, self.window)  # the window there
        judged = sizes >= min(self.window, 200)
        at, sizes = ends[judged], sizes[judged]
        seen = np.concatenate((self.codes.oldest(), codes[: at[-1] + 1] if len(at) else codes[:0]))
        stops = self.codes.n + at + 1  # where each window ends in ``seen``
        right = self._right_by_code()
        expected = np.array(
            [
                self._expected_right(seen[stop - size : stop], right)
                for stop, size in zip(stops.tolist(), sizes.tolist(), strict=True)
            ]
        )
        drop = self.reference_accuracy - expected / sizes
        spread = max(self.reference_std, 1e-6) * np.sqrt(1.0 / sizes + 1.0 / self.reference_n)
        return at, drop, drop / spread

    def _commit(self, codes: np.ndarray, times: np.ndarray) -> None:
        if len(codes):
            self.codes.push_many(codes)
            self.clock.tick_many(times)
            self.predictions += len(codes)
            self.last_ts = float(times[-1])

    # -- outcomes ------------------------------------------------------------------------

    def observe_outcome(self, prediction: Label | None, label: Label, score: float | None) -> None:
        """Feed one prediction joined with its true label."""
        p = math.nan if score is None else probability(score)
        self.observe_outcomes([prediction], [label], np.array([p]))

    def observe_outcomes(
        self,
        predictions: Sequence[Label | None] | None,
        labels: Sequence[Label],
        scores: np.ndarray,
    ) -> None:
        """Feed predictions joined with their labels, in order; scores NaN where none.

        A pair with neither a class nor a score is skipped (no way to tell which class was predicted).
        """
        scores = np.asarray(scores, dtype=np.float64)
        known = ~np.isnan(scores)
        if predictions is not None:
            known |= np.array([v is not None for v in predictions], dtype=bool)
        said = self._said_positive(predictions, scores)
        positive = canonical_classes([self.positive])[0]
        truth = np.array([name == positive for name in canonical_classes(labels)], dtype=bool)
        rows = np.flatnonzero(known)
        self.observe_labelled(scores[rows], said[rows], truth[rows])

    def observe_labelled(self, scores: np.ndarray, said_positive: np.ndarray | bool, positive: np.ndarray) -> None:
        """Feed labelled pairs in order: score (NaN: none), whether the prediction and the label are ``positive``.

        Each pair feeds the realized accuracy; the first ``reference_size`` scored pairs calibrate.
        """
        scores = np.asarray(scores, dtype=np.float64)
        positive = np.asarray(positive, dtype=bool)
        rows, codes = _codes(scores, said_positive, self.bins)  # validates the scores
        self.realized.push_many(np.asarray(said_positive, dtype=bool) == positive)
        if self.calibrated or not len(codes):
            return
        take = slice(0, self.reference_size - self.reference_n)
        codes, truth = codes[take], (positive if rows is None else positive[rows])[take]
        p = (scores if rows is None else scores[rows])[take]
        if len(self.bin_n) != self.bins:
            self.bin_n, self.bin_positive, self.bin_score, self.bin_predicted = (np.zeros(self.bins) for _ in range(4))
        b = codes // 2
        np.add.at(self.bin_n, b, 1.0)
        np.add.at(self.bin_positive, b, truth.astype(np.float64))
        np.add.at(self.bin_score, b, p)
        np.add.at(self.bin_predicted, b, (codes % 2).astype(np.float64))
        self.reference_n += len(codes)
        if self.reference_n == self.reference_size:
            self._fit()

    def _fit(self) -> None:
        n, score = self.bin_n, self.bin_score
        prior = np.where(n > 0, score / np.maximum(n, 1), _midpoints(self.bins))
        m = self.prior_strength
        rate = isotonic((self.bin_positive + m * prior) / (n + m), n + m)
        said = self.bin_predicted
        right = said * rate + (n - said) * (1 - rate)
        right2 = said * rate**2 + (n - said) * (1 - rate) ** 2
        self.reference_accuracy = float(right.sum() / n.sum())
        self.reference_std = math.sqrt(max(float(right2.sum() / n.sum()) - self.reference_accuracy**2, 0.0))
        self.calibration = rate
        self.calibrated = True
        self.bin_n = self.bin_positive = self.bin_score = self.bin_predicted = _nothing()  # no longer needed

    def evidence(self) -> Evidence:
        """The current measurement, whether or not the condition holds."""
        severity = "critical" if self.drop >= 2 * self.min_drop else "warning"
        realized = f"{self.realized_accuracy:.4g}" if self.realized.n else "n/a"
        message = (
            f"estimated accuracy {self.estimated_accuracy:.4g} over the last {self.n} predictions, from their "
            f"scores (reference {self.reference_accuracy:.4g}; realized {realized} over {self.realized.n} labelled)"
        )
        return Evidence(
            "performance",
            None,
            "cbpe",
            round(self.estimated_accuracy, 6),
            round(self.reference_accuracy - self.min_drop, 6),
            self.n,
            self.clock.start,
            self.last_ts,
            severity,
            message,
        )
