"""Classification and regression metrics over a rolling window and since the start."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.performance import _canonical  # the class identity that same_class compares

EPS = 1e-15  # probabilities are clipped to [EPS, 1 - EPS] for the log loss
UNTRACKED = -1  # a class beyond ``max_classes``: counted in the accuracy only


def probability(score: Any) -> float:
    """A score as a float in [0, 1], or ``ValueError``.

    >>> probability(0.25), probability(1)
    (0.25, 1.0)
    """
    p = float(score)
    if not 0.0 <= p <= 1.0:  # also rejects NaN
        raise ValueError(f"score {score!r} is not a probability")
    return p


@dataclass
class ClassificationMetrics:
    """Accuracy, precision, recall, F1, log loss and Brier score, rolling and since the start.

    Per-class confusion counts are kept for the last ``window`` pairs (exact
    ring buffers, O(1) per update) and since the start. With ``average="binary"``
    precision, recall and F1 are those of ``positive``; with ``"macro"`` they are
    unweighted means over the classes seen in the scope (a class never predicted
    counts 0 precision, as scikit-learn's ``zero_division=0``); ``"auto"`` is
    binary while at most two classes (counting ``positive``) have been seen.
    Classes beyond ``max_classes`` count in the accuracy only. ``score`` is the
    probability of ``positive``: log loss and Brier score are those of
    ``positive`` against the rest, over the pairs that carry a score.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(2)
    >>> metrics = ClassificationMetrics(window=500)
    >>> for i in range(3000):
    ...     p = rng.random()
    ...     label = int(rng.random() < p)
    ...     metrics.update(int(p >= 0.5), label, p)
    >>> {k: round(v, 3) for k, v in metrics.snapshot().items() if not k.endswith("_total")}
    {'accuracy': 0.736, 'precision': 0.742, 'recall': 0.73, 'f1': 0.736, 'log_loss': 0.53, 'brier': 0.178}
    """

    positive: Any = 1
    window: int = 1000
    max_classes: int = 50
    average: str = "auto"
    classes: dict[str, int] = field(default_factory=dict)  # canonical class -> index in the counts
    n: int = 0  # pairs in the window
    head: int = 0  # the ring slot written next
    correct: int = 0
    scored: int = 0
    log_loss_sum: float = 0.0
    brier_sum: float = 0.0
    n_total: int = 0
    correct_total: int = 0
    scored_total: int = 0
    log_loss_total: float = 0.0
    brier_total: float = 0.0
    # per class: true positives, predictions and labels, in the window and since the start
    counts: dict[str, list[int]] = field(init=False)
    # the window's pairs: class indices, 0/1 correct, and losses (NaN when the pair had no score)
    ring: dict[str, list[Any]] = field(init=False)

    def __post_init__(self) -> None:
        if self.average not in ("auto", "binary", "macro"):
            raise ValueError(f"average must be auto, binary or macro, not {self.average!r}")
        self.classes.setdefault(_canonical(self.positive), 0)
        self.counts = {name: [0] * self.max_classes for name in
                       ("tp", "predicted", "actual", "tp_total", "predicted_total", "actual_total")}
        self.ring = {name: [0] * self.window for name in ("predicted", "actual", "correct")}
        self.ring |= {name: [math.nan] * self.window for name in ("log_loss", "brier")}

    @property
    def binary(self) -> bool:
        return self.average == "binary" or (self.average == "auto" and len(self.classes) <= 2)

    def _index(self, key: str) -> int:
        index = self.classes.get(key)
        if index is None:
            if len(self.classes) >= self.max_classes:
                return UNTRACKED
            index = self.classes[key] = len(self.classes)
        return index

    def update(self, prediction: Any, label: Any, score: float | None = None) -> None:
        """Add one joined pair; ``score`` is the predicted probability of ``positive``."""
        guess, truth = _canonical(prediction), _canonical(label)
        row = [self._index(guess), self._index(truth), int(guess == truth), math.nan, math.nan]
        if score is not None:
            p, y = probability(score), float(truth == _canonical(self.positive))
            q = min(max(p, EPS), 1.0 - EPS)
            row[3:] = -math.log(q) if y else -math.log1p(-q), (p - y) ** 2
        ring, h = self.ring, self.head
        if self.n == self.window:
            self._count([ring[name][h] for name in ring], -1, "")
        else:
            self.n += 1
        for name, value in zip(ring, row):
            ring[name][h] = value
        self._count(row, 1, "")
        self._count(row, 1, "_total")
        self.head = (h + 1) % self.window
        if self.head == 0:  # once per lap, so float error never builds up
            self.log_loss_sum = math.fsum(x for x in ring["log_loss"] if x == x)
            self.brier_sum = math.fsum(x for x in ring["brier"] if x == x)

    def _count(self, row: list[Any], sign: int, scope: str) -> None:
        predicted, actual, correct, log_loss, brier = row
        counts, scored = self.counts, log_loss == log_loss  # False for NaN
        if predicted != UNTRACKED:
            counts["predicted" + scope][predicted] += sign
            counts["tp" + scope][predicted] += sign * correct
        if actual != UNTRACKED:
            counts["actual" + scope][actual] += sign
        if scope:
            self.n_total += 1
            self.correct_total += correct
            if scored:
                self.scored_total += 1
                self.log_loss_total += log_loss
                self.brier_total += brier
        else:
            self.correct += sign * correct
            if scored:
                self.scored += sign
                self.log_loss_sum += sign * log_loss
                self.brier_sum += sign * brier

    def _metrics(self, scope: str) -> dict[str, float]:
        n, correct, scored = (self.n_total, self.correct_total, self.scored_total) if scope else (
            self.n, self.correct, self.scored)
        if n == 0:
            return {}
        tp, predicted, actual = (np.array(self.counts[name + scope]) for name in ("tp", "predicted", "actual"))
        out = {"accuracy": correct / n}
        if self.binary:
            t, guessed, real = int(tp[0]), int(predicted[0]), int(actual[0])
            out |= {"precision": t / guessed} if guessed else {}
            out |= {"recall": t / real} if real else {}
            out |= {"f1": 2 * t / (guessed + real)} if guessed + real else {}
        elif (seen := (predicted + actual) > 0).any():
            tp, predicted, actual = tp[seen], predicted[seen], actual[seen]
            out["precision"] = float(np.mean(tp / np.maximum(predicted, 1)))
            out["recall"] = float(np.mean(tp / np.maximum(actual, 1)))
            out["f1"] = float(np.mean(2 * tp / (predicted + actual)))
        if scored:
            loss, brier = (self.log_loss_total, self.brier_total) if scope else (self.log_loss_sum, self.brier_sum)
            out |= {"log_loss": max(loss, 0.0) / scored, "brier": min(max(brier / scored, 0.0), 1.0)}
        return {f"{name}{scope}": value for name, value in out.items()}

    def snapshot(self) -> dict[str, float]:
        """Every defined metric: rolling (``accuracy``...) and since the start (``accuracy_total``...)."""
        return self._metrics("") | self._metrics("_total")


@dataclass
class RegressionMetrics:
    """Mean absolute error and root mean squared error, rolling and since the start.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(4)
    >>> metrics = RegressionMetrics(window=1000)
    >>> for i in range(5000):
    ...     y = rng.gauss(10.0, 3.0)
    ...     metrics.update(y + rng.gauss(0.0, 2.0), y)
    >>> {k: round(v, 2) for k, v in metrics.snapshot().items()}
    {'mae': 1.63, 'rmse': 2.05, 'mae_total': 1.62, 'rmse_total': 2.03}
    """

    window: int = 1000
    n: int = 0
    head: int = 0
    abs_sum: float = 0.0
    sq_sum: float = 0.0
    n_total: int = 0
    abs_total: float = 0.0
    sq_total: float = 0.0
    errors: np.ndarray = field(init=False)  # prediction - label, the last ``window`` pairs

    def __post_init__(self) -> None:
        self.errors = np.zeros(self.window)

    def update(self, prediction: float, label: float) -> None:
        """Add one joined pair."""
        error = float(prediction) - float(label)
        if not math.isfinite(error):
            raise ValueError(f"non-finite regression error for label {label!r}")
        if self.n == self.window:
            old = float(self.errors[self.head])
            self.abs_sum -= abs(old)
            self.sq_sum -= old * old
        else:
            self.n += 1
        self.errors[self.head] = error
        self.abs_sum += abs(error)
        self.sq_sum += error * error
        self.n_total += 1
        self.abs_total += abs(error)
        self.sq_total += error * error
        self.head = (self.head + 1) % self.window
        if self.head == 0:  # once per lap, so float error never builds up
            self.abs_sum = math.fsum(np.abs(self.errors))
            self.sq_sum = math.fsum(self.errors * self.errors)

    def snapshot(self) -> dict[str, float]:
        """``mae``, ``rmse``, ``mae_total`` and ``rmse_total``, once defined."""
        out = {}
        if self.n:
            out |= {"mae": max(self.abs_sum, 0.0) / self.n, "rmse": math.sqrt(max(self.sq_sum, 0.0) / self.n)}
        if self.n_total:
            out |= {"mae_total": self.abs_total / self.n_total, "rmse_total": math.sqrt(self.sq_total / self.n_total)}
        return out
