"""The detection benchmark's streams: constants, seeded draws, river's concept-drift generators, and alarm onsets.

Everything is keyed by integers into numpy ``Generator``s (:func:`rng_for`), so
the same arguments give the same streams in any process.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
from river import compose, linear_model, preprocessing, tree
from river.datasets import synth
from river.drift import binary

from detectors.windowed_tests import CUSUM_SHARE, WindowedDriftMonitor

CHANGE = 5000  # the change happens at event CHANGE + u, u uniform in [0, PHASE) per seed
PHASE = 500  # ... so it falls at any phase of the 500-event windows and check intervals
HORIZON = 5000  # a detection counts if it comes within this many events after the change
REFERENCE_SIZE = 10_000  # values behind the windowed monitor's reference profile
BUDGET_EVENTS = WindowedDriftMonitor.budget_events  # per model: events between false alarms (default 1e6)
SMALL_DELTA, SMALL_DELTA_LABEL = 1e-5, "1e-5"  # a second ADWIN: fewer false alarms than its default 0.002
KSWIN_LEAD = 1000  # KSWIN (window 100) is fed from this many events before the change
TRAIN_SIZE = 3000  # samples the frozen model learns from before the monitored stream
CATEGORIES = ("A", "B", "C", "D", "E")
CAT_BEFORE = (0.1, 0.3, 0.3, 0.2, 0.1)
CAT_AFTER = (0.3,) + tuple(p * 0.7 / 0.9 for p in CAT_BEFORE[1:])  # A: 10% -> 30%, the rest scaled
NULL_BEFORE, NULL_AFTER = 0.01, 0.20
SCORE_BEFORE, SCORE_AFTER = (2.0, 5.0), (3.0, 4.0)  # Beta parameters

DATA_KINDS: dict[str, str] = {
    "mean_0.1": "mean shift 0.1 sigma",
    "mean_0.25": "mean shift 0.25 sigma",
    "mean_0.5": "mean shift 0.5 sigma",
    "mean_1": "mean shift 1 sigma",
    "var_x2": "variance x2 (same mean)",
    "category": "category mix: A 10% -> 30%",
    "nulls": "null injection: 1% -> 20% nulls",
    "score": "score Beta(2,5) -> Beta(3,4)",
}
CONCEPT_KINDS: dict[str, str] = {
    "agrawal": "Agrawal f0 -> f2, Hoeffding tree",
    "sea": "SEA variant 0 -> 1, logistic regression",
    "hyperplane": "Hyperplane seed a -> seed b, logistic regression",
}
STATIONARY_NUMERIC: dict[str, str] = {
    "normal": "normal N(0, 1)",
    "lognormal": "lognormal (0, 1)",
    "uniform": "uniform [0, 1)",
    "integer": "integer Poisson(4)",
    "category": "categorical (5 categories; river: 0/1 indicator of A, 10%)",
}
STATIONARY_BINARY: dict[str, tuple[str, float]] = {
    "missing_1": ("missing indicator, 1% missing", 0.01),
    "missing_5": ("missing indicator, 5% missing", 0.05),
    "errors_2": ("0/1 errors, 2% error rate", 0.02),
    "errors_5": ("0/1 errors, 5% error rate", 0.05),
    "errors_15": ("0/1 errors, 15% error rate", 0.15),
    "errors_30": ("0/1 errors, 30% error rate", 0.30),
}
DATA_COLUMNS = ("cusum", "wdm", "deployed", "adwin", "adwin_small", "ph", "kswin")
DATA_HEADERS = {
    "cusum": "driftline CUSUM",
    "wdm": "driftline windowed tests",
    "deployed": "driftline (as deployed: windowed + CUSUM)",
    "adwin": "river ADWIN",
    "adwin_small": f"river ADWIN (delta={SMALL_DELTA_LABEL})",
    "ph": "river PageHinkley",
    "kswin": "river KSWIN (subsample)",
}
CONCEPT_COLUMNS = ("cdm", "ddm", "eddm", "hddma", "hddmw")
CONCEPT_HEADERS = {
    "cdm": "driftline ConceptDriftMonitor",
    "ddm": "river DDM",
    "eddm": "river EDDM",
    "hddma": "river HDDMA",
    "hddmw": "river HDDMW",
}
BINARY_COLUMNS = ("mrm",) + CONCEPT_COLUMNS
BINARY_HEADERS = {"mrm": "driftline MissingRateMonitor", **CONCEPT_HEADERS}
RIVER_BINARY: dict[str, Callable[[], Any]] = {
    "ddm": binary.DDM,
    "eddm": binary.EDDM,
    "hddma": binary.HDDMA,
    "hddmw": binary.HDDMW,
}
SALT = 20_240_611


def rng_for(*key: int) -> np.random.Generator:
    """A numpy generator for one key (drift kind, seed, ...): the same key, the same draws."""
    return np.random.default_rng([SALT, *key])


def int_seed(*key: int) -> int:
    """An integer seed for one key, for the libraries that take one."""
    return int(rng_for(*key).integers(0, 2**31 - 1))


# Running one detector over a stream: the event indices at which it raises an alarm.
# driftline's monitors raise an alarm when ``active`` turns on (an episode); river's
# raise one on every ``drift_detected`` (they reset themselves after it).


def monitor_onsets(update: Callable[[Any, float], None], monitor: Any, values: Iterable[Any]) -> list[int]:
    """Indices at which a driftline monitor's ``active`` turns on, fed ``values`` one by one."""
    onsets, prev = [], False
    for i, x in enumerate(values):
        update(x, float(i))
        on = monitor.active
        if on and not prev:
            onsets.append(i)
        prev = on
    return onsets


def river_onsets(detector: Any, values: list[float], start: int = 0, stop_after: int | None = None) -> list[int]:
    """Alarms of a river detector fed ``values[start:]``; stops at the first alarm at or after ``stop_after``."""
    onsets, update = [], detector.update
    for i in range(start, len(values)):
        update(values[i])
        if detector.drift_detected:
            onsets.append(i)
            if stop_after is not None and i >= stop_after:
                break
    return onsets


def driftline_onsets(values: list[Any], profile: Any, n_features: int) -> dict[str, list[int]]:
    """driftline's data-drift monitor on one stream: as deployed, its CUSUM alone, its windowed tests alone.

    The deployed ``WindowedDriftMonitor`` (``sequential=True``, the default) gives "deployed"
    (its ``active``); a copy of its CUSUM, fresh, fed the same values, gives "cusum" (what
    ``cusum.active`` does inside it). The windowed tests alone come from a second monitor built
    with ``sequential=False`` (same profile, budget and calibration). A categorical profile has
    no CUSUM: the deployed monitor is then the windowed tests, and there is no "cusum" entry.
    Missing values (``None``) are skipped, as driftline does (the missing rate has its own
    monitor). Each detector takes the whole stream in one ``update_many`` call, whose changes are
    those of one value at a time (any split gives the same).
    """
    deployed = WindowedDriftMonitor("x", profile, n_features=n_features)
    cusum = copy.deepcopy(deployed.cusum)
    present = np.array([i for i, x in enumerate(values) if x is not None], dtype=np.int64)
    column = np.array([values[i] for i in present], dtype=np.float64 if cusum is not None else object)
    ts = present.astype(np.float64)

    def onsets(changes: list[Any]) -> list[int]:
        return [int(present[c.index]) for c in changes if c.active]

    out = {"deployed": onsets(deployed.update_many(column, ts))}
    if cusum is None:
        out["wdm"] = out["deployed"]
        return out
    windowed = WindowedDriftMonitor(  # the deployed monitor's windowed tests: the same share of the budget
        "x", profile, n_features=n_features, sequential=False, budget_events=BUDGET_EVENTS / (1 - CUSUM_SHARE)
    )
    out["wdm"] = onsets(windowed.update_many(column, ts))
    out["cusum"] = onsets(cusum.update_many(column, ts))
    return out


# Streams


def draw_numeric(kind: str, rng: np.random.Generator, n: int, after: bool) -> np.ndarray:
    """``n`` values of a numeric drift kind, before or ``after`` its change."""
    if kind.startswith("mean_"):
        return rng.normal(float(kind.split("_")[1]) if after else 0.0, 1.0, n)
    if kind == "var_x2":
        return rng.normal(0.0, math.sqrt(2.0) if after else 1.0, n)
    if kind == "nulls":
        return rng.normal(0.0, 1.0, n)
    if kind == "score":
        a, b = SCORE_AFTER if after else SCORE_BEFORE
        return rng.beta(a, b, n)
    raise ValueError(kind)


def draw_categories(rng: np.random.Generator, n: int, shares: tuple[float, ...]) -> list[str]:
    """``n`` categories drawn with ``shares``."""
    idx = rng.choice(len(CATEGORIES), size=n, p=np.asarray(shares) / sum(shares))
    return [CATEGORIES[i] for i in idx]


def draw_stationary(dist: str, rng: np.random.Generator, n: int) -> Any:
    """``n`` values of a stationary distribution."""
    if dist == "normal":
        return rng.normal(0.0, 1.0, n)
    if dist == "lognormal":
        return rng.lognormal(0.0, 1.0, n)
    if dist == "uniform":
        return rng.random(n)
    if dist == "integer":
        return rng.poisson(4.0, n).astype(np.float64)
    if dist == "category":
        return draw_categories(rng, n, CAT_BEFORE)
    raise ValueError(dist)


class ConceptDriftStream(synth.ConceptDriftStream):
    """river's ConceptDriftStream, with the exponent of its sigmoid clamped.

    In river 0.26.1, ``ConceptDriftStream(width=1, position=p)`` raises ``OverflowError``
    (``math.exp`` of ``4 * (p - i)``) for every ``p`` above about 178. This copy of its
    ``__iter__`` only clamps that exponent at 700: the same random draws, the same
    samples (the drift probability far before the change is ``1e-304`` instead of
    ``1e-2000``).
    """

    def __iter__(self) -> Iterator[tuple[dict[str, Any], Any]]:
        rng = random.Random(self.seed)
        stream, drifted = iter(self.stream), iter(self.drift_stream)
        i = 0
        while True:
            i += 1
            v = -4.0 * float(i - self.position) / float(self.width)
            p = 1.0 / (1.0 + math.exp(min(v, 700.0)))
            try:
                x, y = next(stream) if rng.random() > p else next(drifted)
            except StopIteration:
                break
            yield x, y


def concept_stream(kind: str, seed: int, position: int) -> tuple[Any, Any]:
    """river's concept-drift stream of ``kind`` changing at ``position``, and the model to monitor."""
    ci = list(CONCEPT_KINDS).index(kind)
    s = [int_seed(7, ci, seed, k) for k in range(3)]
    if kind == "agrawal":
        a, b = synth.Agrawal(classification_function=0, seed=s[0]), synth.Agrawal(classification_function=2, seed=s[1])
        model = tree.HoeffdingTreeClassifier()
    elif kind == "sea":
        a, b = synth.SEA(variant=0, seed=s[0]), synth.SEA(variant=1, seed=s[1])
        model = compose.Pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression())
    elif kind == "hyperplane":
        a, b = synth.Hyperplane(seed=s[0]), synth.Hyperplane(seed=s[1])
        model = compose.Pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression())
    else:
        raise ValueError(kind)
    return ConceptDriftStream(stream=a, drift_stream=b, position=position, width=1, seed=s[2]), model
