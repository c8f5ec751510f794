"""Classification and regression metrics over a rolling window and since the start."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.performance import (  # the class identity that same_class compares
    Label,
    canonical_class,
    canonical_classes,
)
from detectors.windows import Ring, add_in_order, all_finite

__all__ = ["EPS", "UNTRACKED", "ClassificationMetrics", "RegressionMetrics", "probability"]

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


def _probabilities(scores: np.ndarray | None, n: int) -> np.ndarray | None:
    """Scores as float64 (NaN: none), or ``ValueError`` if one is not a probability."""
    if scores is None:
        return None
    p = np.asarray(scores, dtype=np.float64)
    if len(p) != n:
        raise ValueError(f"{len(p)} scores for {n} pairs")
    if np.count_nonzero((p < 0.0) | (p > 1.0)):
        raise ValueError("a score is not a probability")
    return p


def _log_losses(p: np.ndarray, positive: np.ndarray) -> np.ndarray:
    q = np.clip(p, EPS, 1.0 - EPS)
    losses: np.ndarray = np.where(positive, -np.log(q), -np.log1p(-q))
    return losses


@dataclass
class ClassificationMetrics:
    """Accuracy, precision, recall, F1, log loss and Brier score, rolling and since the start.

    The window's last ``window`` pairs are kept as class indices (one byte
    each), a right/wrong flag and the score, and counted when a snapshot is
    asked for; per-class counts since the start grow with the classes seen.
    With ``average="binary"`` precision, recall and F1 are those of
    ``positive``; with ``"macro"`` they are unweighted means over the classes
    seen in the scope (a class never predicted counts 0 precision, as
    scikit-learn's ``zero_division=0``); ``"auto"`` is binary while at most two
    classes (counting ``positive``) have been seen. Classes beyond
    ``max_classes`` count in the accuracy only. ``scores`` are the probability
    of ``positive`` (NaN: none): log loss and Brier score are those of
    ``positive`` against the rest, over the pairs that carry a score.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(2)
    >>> pairs = []
    >>> for i in range(3000):
    ...     p = rng.random()
    ...     pairs.append((int(p >= 0.5), int(rng.random() < p), p))
    >>> predictions, labels, scores = zip(*pairs)
    >>> metrics = ClassificationMetrics(window=500)
    >>> metrics.update_many(predictions, labels, np.array(scores))
    >>> {k: round(v, 3) for k, v in metrics.snapshot().items() if not k.endswith("_total")}
    {'accuracy': 0.736, 'precision': 0.742, 'recall': 0.73, 'f1': 0.736, 'log_loss': 0.53, 'brier': 0.178}
    """

    positive: Label = 1
    window: int = 1000
    max_classes: int = 50
    average: str = "auto"
    classes: dict[str, int] = field(default_factory=dict)  # canonical class -> index in the counts
    n_total: int = 0
    correct_total: int = 0
    scored_total: int = 0
    log_loss_total: float = 0.0
    brier_total: float = 0.0
    # per class since the start, by index: true positives, predictions and labels
    tp_total: list[int] = field(default_factory=list)
    predicted_total: list[int] = field(default_factory=list)
    actual_total: list[int] = field(default_factory=list)
    # the window's pairs: predicted and true class indices, right or not, and the score (NaN: none)
    predicted: Ring = field(default_factory=lambda: Ring(1, "int8"))
    actual: Ring = field(default_factory=lambda: Ring(1, "int8"))
    correct: Ring = field(default_factory=lambda: Ring(1, "bool"))
    scores: Ring = field(default_factory=lambda: Ring(1))  # allocated with the first score

    def __post_init__(self) -> None:
        if self.average not in ("auto", "binary", "macro"):
            raise ValueError(f"average must be auto, binary or macro, not {self.average!r}")
        self.classes.setdefault(canonical_class(self.positive), 0)
        if self.predicted.size != self.window:  # new metrics (decoded ones come with their own)
            index = "int8" if self.max_classes <= 127 else "int32"
            self.predicted, self.actual = Ring(self.window, index), Ring(self.window, index)
            self.correct, self.scores = Ring(self.window, "bool"), Ring(self.window)

    @property
    def binary(self) -> bool:
        return self.average == "binary" or (self.average == "auto" and len(self.classes) <= 2)

    @property
    def n(self) -> int:
        """Pairs in the window."""
        return self.predicted.n

    def _index(self, key: str) -> int:
        index = self.classes.get(key)
        if index is None:
            if len(self.classes) >= self.max_classes:
                return UNTRACKED
            index = self.classes[key] = len(self.classes)
        return index

    def _indices(self, guesses: list[str], truths: list[str]) -> tuple[list[int], list[int]]:
        classes = self.classes
        try:
            return [classes[g] for g in guesses], [classes[t] for t in truths]
        except KeyError:  # a class not seen before: indices in the order of the pairs
            predicted, actual = [], []
            for g, t in zip(guesses, truths, strict=True):
                predicted.append(self._index(g))
                actual.append(self._index(t))
            return predicted, actual

    def update(self, prediction: Label, label: Label, score: float | None = None) -> None:
        """Add one joined pair; ``score`` is the predicted probability of ``positive``."""
        p = None if score is None else np.array([probability(score)])
        self.update_many([prediction], [label], p)

    def update_many(
        self,
        predictions: Sequence[Label],
        labels: Sequence[Label],
        scores: np.ndarray | None = None,
    ) -> None:
        """Add joined pairs in order; ``scores`` (NaN: none) are the predicted probabilities of ``positive``."""
        guesses, truths = canonical_classes(predictions), canonical_classes(labels)
        if len(truths) != len(guesses):
            raise ValueError(f"{len(guesses)} predictions for {len(truths)} labels")
        p = _probabilities(scores, len(guesses))
        if not guesses:
            return
        predicted, actual = self._indices(guesses, truths)
        right = [g == t for g, t in zip(guesses, truths, strict=True)]
        values = None if p is None else p.tolist()
        scored = [] if values is None else [i for i, q in enumerate(values) if q == q]
        if scored or len(self.scores.values):
            if not len(self.scores.values):  # the first score: the ring starts aligned with the others
                self.scores.count = self.predicted.count
            self.scores.push_many(np.full(len(guesses), np.nan) if p is None else p)
        self.predicted.push_many(predicted)
        self.actual.push_many(actual)
        self.correct.push_many(right)
        self._add_counts(predicted, actual, right)
        if scored and values is not None:  # (scored implies values)
            self._add_losses([values[i] for i in scored], [actual[i] == 0 for i in scored])  # index 0: ``positive``

    def _add_counts(self, predicted: list[int], actual: list[int], right: list[bool]) -> None:
        size = len(self.classes)
        for counts in (self.tp_total, self.predicted_total, self.actual_total):
            counts += [0] * (size - len(counts))  # classes seen for the first time
        tp, guessed, real = self.tp_total, self.predicted_total, self.actual_total
        if len(predicted) <= 16:  # a short batch: Python's integers
            for g, a, r in zip(predicted, actual, right, strict=True):
                if g >= 0:
                    guessed[g] += 1
                    tp[g] += r
                if a >= 0:
                    real[a] += 1
        else:
            gs, as_, rs = np.array(predicted), np.array(actual), np.array(right)
            for counts, add in ((guessed, gs[gs >= 0]), (tp, gs[(gs >= 0) & rs]), (real, as_[as_ >= 0])):
                counts[:] = [c + d for c, d in zip(counts, np.bincount(add, minlength=size).tolist(), strict=True)]
        self.n_total += len(predicted)
        self.correct_total += sum(right)

    def _add_losses(self, scores: list[float], positive: list[bool]) -> None:
        """Log loss and Brier score of scored pairs, added in order (``math.log``: the same in any split)."""
        losses, squares = [], []
        for q, y in zip(scores, positive, strict=True):
            clipped = min(max(q, EPS), 1.0 - EPS)
            losses.append(-math.log(clipped) if y else -math.log1p(-clipped))
            squares.append((q - y) * (q - y))
        self.scored_total += len(scores)
        self.log_loss_total = add_in_order(self.log_loss_total, losses)
        self.brier_total = add_in_order(self.brier_total, squares)

    def _scope(self, total: bool) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray, int, float, float]:
        """n, correct, per-class tp / predicted / actual, scored, log loss sum and Brier sum of a scope."""
        if total:
            tp, guessed, real = (
                np.array(c, dtype=np.int64) for c in (self.tp_total, self.predicted_total, self.actual_total)
            )
            return (
                self.n_total,
                self.correct_total,
                tp,
                guessed,
                real,
                self.scored_total,
                self.log_loss_total,
                self.brier_total,
            )
        size = len(self.classes)
        predicted, actual, right = self.predicted.window(), self.actual.window(), self.correct.window()
        tracked = predicted >= 0
        p = self.scores.window()
        scored = ~np.isnan(p)
        q, y = p[scored], actual[scored] == 0
        return (
            len(predicted),
            int(np.count_nonzero(right)),
            np.bincount(predicted[tracked & right], minlength=size),
            np.bincount(predicted[tracked], minlength=size),
            np.bincount(actual[actual >= 0], minlength=size),
            len(q),
            float(np.sum(_log_losses(q, y))),
            float(np.sum((q - y) ** 2)),
        )

    def _metrics(self, scope: str) -> dict[str, float]:
        n, correct, tp, predicted, actual, scored, loss, brier = self._scope(bool(scope))
        if n == 0:
            return {}
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
    >>> pairs = []
    >>> for i in range(5000):
    ...     y = rng.gauss(10.0, 3.0)
    ...     pairs.append((y + rng.gauss(0.0, 2.0), y))
    >>> metrics = RegressionMetrics(window=1000)
    >>> metrics.update_many(*zip(*pairs))
    >>> {k: round(v, 2) for k, v in metrics.snapshot().items()}
    {'mae': 1.63, 'rmse': 2.05, 'mae_total': 1.62, 'rmse_total': 2.03}
    """

    window: int = 1000
    n_total: int = 0
    abs_total: float = 0.0
    sq_total: float = 0.0
    errors: Ring = field(default_factory=lambda: Ring(1))  # prediction - label, the last ``window`` pairs

    def __post_init__(self) -> None:
        if self.errors.size != self.window:
            self.errors = Ring(self.window)

    @property
    def n(self) -> int:
        """Pairs in the window."""
        return self.errors.n

    def update(self, prediction: float, label: float) -> None:
        """Add one joined pair."""
        self.update_many([prediction], [label])

    def update_many(self, predictions: Sequence[float] | np.ndarray, labels: Sequence[float] | np.ndarray) -> None:
        """Add joined pairs in order; ``ValueError`` (and nothing added) if an error is not a finite number."""
        errors = np.asarray(predictions, dtype=np.float64) - np.asarray(labels, dtype=np.float64)
        if not all_finite(errors):
            raise ValueError("non-finite regression error")
        self.errors.push_many(errors)
        self.n_total += len(errors)
        self.abs_total = add_in_order(self.abs_total, np.abs(errors))
        self.sq_total = add_in_order(self.sq_total, errors * errors)

    def snapshot(self) -> dict[str, float]:
        """``mae``, ``rmse``, ``mae_total`` and ``rmse_total``, once defined."""
        out: dict[str, float] = {}
        if self.n:
            window = self.errors.window()
            out |= {
                "mae": float(np.sum(np.abs(window))) / self.n,
                "rmse": math.sqrt(float(np.sum(window * window)) / self.n),
            }
        if self.n_total:
            out |= {"mae_total": self.abs_total / self.n_total, "rmse_total": math.sqrt(self.sq_total / self.n_total)}
        return out
