"""What a model's detectors are fed: its events in event-time order, as columns.

The stream side decodes each event once and hands a model's released events
over as columns: one list per feature, one array of scores, of event times and
of positions. Positions (``seq``) number every event of the model (predictions
and outcomes together) in event-time order, so the changes of all its
detectors can be put in one order.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeGuard

import numpy as np

FeatureValue = float | int | str | bool | None  # a number is numeric, a string or boolean categorical, None missing
Label = float | int | str | bool  # a predicted class or value, or a true label

__all__ = ["FeatureValue", "Label", "PairColumns", "PredictionColumns", "numeric_column", "is_number"]


def is_number(value: object) -> TypeGuard[int | float]:
    """Whether a value is a real number, finite or not: an int or a float (numpy's too), not a boolean.

    The one test of "numeric" for events, references and detectors alike.

    >>> is_number(3), is_number(2.5), is_number(float("nan")), is_number(np.int64(3)), is_number(np.float32(1))
    (True, True, True, True, True)
    >>> is_number(True), is_number(np.True_), is_number("3"), is_number(None)
    (False, False, False, False)
    """
    kind = type(value)
    if kind is float or kind is int:
        return True
    if kind is str or kind is bool or value is None:  # the common cases, without the ABC's slower check
        return False
    return isinstance(value, numbers.Real) and not isinstance(value, np.bool_)


def numeric_column(values: Sequence[FeatureValue]) -> np.ndarray:
    """Values as float64, NaN where a value is missing or not a number (or too large for a float).

    >>> numeric_column([1, 2.5, None, "x", True]).tolist()
    [1.0, 2.5, nan, nan, nan]
    """
    if values and set(map(type, values)) <= {float, int}:
        try:
            return np.array(values, dtype=np.float64)
        except OverflowError:
            pass
    return np.array([_as_float(v) for v in values], dtype=np.float64)


def _as_float(value: FeatureValue) -> float:
    if not is_number(value):
        return math.nan
    try:
        return float(value)
    except OverflowError:
        return math.nan


@dataclass(frozen=True, slots=True)
class PredictionColumns:
    """A model's predictions in event-time order, as columns.

    ``features`` maps each feature name to its values, ``None`` where an event
    lacks it; a name missing from the mapping is missing from every event.
    ``scores`` is NaN where an event has no score. ``segments`` holds each
    event's segment key (canonical JSON), or None.

    >>> batch = PredictionColumns.from_rows([{"x": 1.0}, {"x": 2.0, "plan": "pro"}], ts=[5.0, 6.0])
    >>> len(batch), batch.column("plan"), batch.column("age")
    (2, [None, 'pro'], [None, None])
    """

    seq: np.ndarray
    ts: np.ndarray
    features: Mapping[str, list[FeatureValue]]
    scores: np.ndarray
    predictions: list[Label | None]  # None: the event carries no prediction
    versions: list[str]
    segments: list[str | None] | None = None

    def __len__(self) -> int:
        return len(self.ts)

    def column(self, name: str) -> list[FeatureValue]:
        """One feature's values (all None when no event has it)."""
        found = self.features.get(name)
        return found if found is not None else [None] * len(self)

    def take(self, rows: np.ndarray) -> PredictionColumns:
        """The events at ``rows`` (ascending), as columns."""
        pick = rows.tolist()
        return PredictionColumns(
            self.seq[rows],
            self.ts[rows],
            {name: [values[i] for i in pick] for name, values in self.features.items()},
            self.scores[rows],
            [self.predictions[i] for i in pick],
            [self.versions[i] for i in pick],
            None if self.segments is None else [self.segments[i] for i in pick],
        )

    @classmethod
    def from_rows(
        cls,
        rows: Sequence[Mapping[str, FeatureValue]],
        ts: Sequence[float],
        scores: Sequence[float | None] | None = None,
        predictions: Sequence[Label] | None = None,
        version: str = "",
        segments: Sequence[str | None] | None = None,
        first_seq: int = 0,
    ) -> PredictionColumns:
        """Columns from one features mapping per event (tests, tools, a reference upload)."""
        n = len(rows)
        features: dict[str, list[FeatureValue]] = {}
        for i, row in enumerate(rows):
            for name, value in row.items():
                features.setdefault(name, [None] * n)[i] = value
        score_values = [math.nan if s is None else s for s in (scores or [None] * n)]
        return cls(
            np.arange(first_seq, first_seq + n, dtype=np.int64),
            np.asarray(ts, dtype=np.float64),
            features,
            np.asarray(score_values, dtype=np.float64),
            list(predictions) if predictions is not None else [None] * n,
            [version] * n,
            list(segments) if segments is not None else None,
        )


@dataclass(frozen=True, slots=True)
class PairColumns:
    """A model's joined (prediction, label) pairs in event-time order: the event time of each pair is
    when its second half arrived, so pairs come in the order labels became known.

    >>> pairs = PairColumns.from_pairs([(1, 1, 0.9), (0, 1, None)], ts=[7.0, 8.0])
    >>> len(pairs), pairs.scores.tolist()
    (2, [0.9, nan])
    """

    seq: np.ndarray
    ts: np.ndarray
    predictions: list[Label]
    labels: list[Label]
    scores: np.ndarray
    segments: list[str | None] | None = None

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, rows: np.ndarray) -> PairColumns:
        pick = rows.tolist()
        return PairColumns(
            self.seq[rows],
            self.ts[rows],
            [self.predictions[i] for i in pick],
            [self.labels[i] for i in pick],
            self.scores[rows],
            None if self.segments is None else [self.segments[i] for i in pick],
        )

    @classmethod
    def from_pairs(
        cls,
        pairs: Sequence[tuple[Label, Label, float | None]],
        ts: Sequence[float],
        first_seq: int = 0,
        segments: Sequence[str | None] | None = None,
    ) -> PairColumns:
        """Columns from (prediction, label, score) tuples."""
        n = len(pairs)
        return cls(
            np.arange(first_seq, first_seq + n, dtype=np.int64),
            np.asarray(ts, dtype=np.float64),
            [p for p, _, _ in pairs],
            [y for _, y, _ in pairs],
            np.asarray([math.nan if s is None else s for _, _, s in pairs], dtype=np.float64),
            list(segments) if segments is not None else None,
        )
