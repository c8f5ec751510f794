"""Realistic prediction/outcome streams for one simulated model, as contract v1 events.

The world is river's Agrawal generator (a loan-application data set with nine
features), the deployed model is a river logistic regression trained once on
the first ``train_size`` samples of the pre-drift concept and then frozen, the
way a model serves in production. Three scenarios:

``steady``
    Nothing changes: the live data comes from the concept the model learned.
``data_drift``
    From event ``drift_at`` on, one numeric input (``salary`` by default) moves
    up by ``shift_std`` standard deviations of its training distribution. The
    world's rule is unchanged (labels follow the same concept on the shifted
    inputs), so the inputs and scores drift while accuracy mostly holds.
``concept_drift``
    From event ``drift_at`` on, labels come from another Agrawal concept while
    the inputs keep their distribution: the model's accuracy falls.

Only the standard library, numpy and river are used, so the module can be
copied next to any producer.

>>> pairs = generate("credit-risk", "steady", 3, drift_at=2, seed=1, start=1_700_000_000.0)
>>> prediction, outcome = pairs[0]
>>> sorted(prediction)
['features', 'model_id', 'model_version', 'prediction', 'prediction_id', 'score', 'segment', 'timestamp']
>>> prediction["prediction_id"], outcome["prediction_id"], sorted(outcome)
('credit-risk-0', 'credit-risk-0', ['label', 'model_id', 'prediction_id', 'timestamp'])
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from river import linear_model, optim, preprocessing
from river.datasets import synth

KINDS = ("steady", "data_drift", "concept_drift")

FEATURES = ("salary", "commission", "age", "elevel", "car", "zipcode", "hvalue", "hyears", "loan")
NUMERIC = ("salary", "commission", "age", "elevel", "car", "hvalue", "hyears", "loan")  # zipcode: categorical
MONEY = ("salary", "commission", "hvalue", "loan")

REGIONS = (("eu-west", 0.45), ("us-east", 0.35), ("ap-south", 0.20))
CHANNELS = (("web", 0.55), ("app", 0.35), ("branch", 0.10))

#: Agrawal concept 6: "disposable income" = 2/3 (salary + commission) - loan / 5 - 20000;
#: class 1 (decline) when it is not positive. About half the applications are class 1.
DEFAULT_FUNCTION = 6
#: Agrawal concept 2: class decided by age band and education level only. A model
#: trained on concept 6 is right about half of the time on it.
DEFAULT_DRIFT_FUNCTION = 2


def train_model(
    function: int = DEFAULT_FUNCTION, train_size: int = 2000, seed: int = 0, label_noise: float = 0.05
) -> Any:
    """Train the simulated model on ``train_size`` samples of concept ``function``.

    Returns a river pipeline (``StandardScaler | LogisticRegression``) with its
    training-time feature statistics in ``model.feature_stats`` (mean, std).

    >>> model = train_model(seed=3)
    >>> sorted(model.feature_stats) == sorted(NUMERIC + ("zipcode",))
    True
    """
    world = synth.Agrawal(classification_function=function, seed=10_000 + seed)
    rng = random.Random(20_000 + seed)
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression(optim.SGD(0.05))
    rows = []
    for epoch in range(2):  # two passes over the same history: a batch-trained model, frozen afterwards
        for x, y in itertools.islice(world, train_size) if epoch == 0 else rows:
            if epoch == 0:
                y = _noisy(y, label_noise, rng)
                rows.append((x, y))
            model.learn_one(x, y)
    table = np.array([[x[f] for f in FEATURES] for x, _ in rows], dtype=float)
    model.feature_stats = {f: (float(table[:, i].mean()), float(table[:, i].std())) for i, f in enumerate(FEATURES)}
    return model


def stream(
    model_id: str,
    kind: str = "steady",
    n: int | None = None,
    drift_at: int = 0,
    seed: int = 0,
    start: float | None = None,
    *,
    interval_s: float = 0.0025,
    outcome_lag_s: float = 5.0,
    model_version: str = "v1",
    function: int = DEFAULT_FUNCTION,
    drift_function: int = DEFAULT_DRIFT_FUNCTION,
    drift_feature: str = "salary",
    shift_std: float = 1.0,
    label_noise: float = 0.05,
    train_size: int = 2000,
    model: Any = None,
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Yield ``(prediction_event, outcome_event)`` pairs lazily; ``n=None`` never ends.

    Event times start at ``start`` (default: now) with Poisson arrivals of mean
    ``interval_s``; each outcome is stamped ``outcome_lag_s`` (on average) after its
    prediction. ``label_noise`` flips that share of the labels, so even a perfect
    model stays below 100 % accuracy. ``model`` reuses a model from
    :func:`train_model` (it is only read).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown scenario {kind!r}: expected one of {', '.join(KINDS)}")
    if drift_feature not in NUMERIC:
        raise ValueError(f"drift_feature must be a numeric feature, one of {', '.join(NUMERIC)}")
    model = model if model is not None else train_model(function, train_size, seed, label_noise)
    world = synth.Agrawal(classification_function=function, seed=seed)
    concepts = world._classification_functions  # noqa: SLF001 - its own rules per concept, not public (river 0.26)
    rng = random.Random(seed ^ 0x5EED)
    shift = shift_std * model.feature_stats[drift_feature][1]
    regions, region_w = zip(*REGIONS, strict=True)
    channels, channel_w = zip(*CHANNELS, strict=True)
    clock = time.time() if start is None else float(start)
    indexes = range(n) if n is not None else itertools.count()
    for i, (x, y) in zip(indexes, world, strict=False):  # the world never ends
        drifted = kind != "steady" and i >= drift_at
        if drifted and kind == "data_drift":
            x = dict(x)
            x[drift_feature] += shift
            y = concepts[function](**x)  # same world rule, new population
        elif drifted and kind == "concept_drift":
            y = concepts[drift_function](**x)  # same population, new rule
        y = _noisy(y, label_noise, rng)
        proba = model.predict_proba_one(x)
        score = float(proba.get(1, 0.0))
        clock += rng.expovariate(1.0 / interval_s) if interval_s > 0 else 0.0
        prediction_id = f"{model_id}-{i}"
        features: dict[str, Any] = {}
        for name in FEATURES:
            value = x[name]
            if name in MONEY:
                features[name] = round(float(value), 2)
            elif name == "zipcode":
                features[name] = f"z{int(value)}"
            else:
                features[name] = int(value)
        prediction = {
            "model_id": model_id,
            "prediction_id": prediction_id,
            "features": features,
            "prediction": int(score >= 0.5),
            "score": round(score, 6),
            "model_version": model_version,
            "timestamp": round(clock, 6),
            "segment": {"region": rng.choices(regions, region_w)[0], "channel": rng.choices(channels, channel_w)[0]},
        }
        outcome = {
            "model_id": model_id,
            "prediction_id": prediction_id,
            "label": int(y),
            "timestamp": round(clock + outcome_lag_s * (0.5 + rng.random()), 6),
        }
        yield prediction, outcome


def generate(
    model_id: str, kind: str, n: int, drift_at: int, seed: int = 0, start: float | None = None, **options: Any
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The first ``n`` pairs of :func:`stream`, as a list (see :func:`stream` for ``options``)."""
    return list(stream(model_id, kind, n, drift_at, seed, start, **options))


def accuracy(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> float:
    """Share of predictions that match their label.

    >>> accuracy([({"prediction": 1}, {"label": 1}), ({"prediction": 0}, {"label": 1})])
    0.5
    """
    if not pairs:
        return math.nan
    return sum(p["prediction"] == o["label"] for p, o in pairs) / len(pairs)


def _noisy(y: int, noise: float, rng: random.Random) -> int:
    return 1 - y if noise > 0 and rng.random() < noise else y


if __name__ == "__main__":  # a quick look at each scenario: accuracy and mean salary before/after the drift
    for scenario in KINDS:
        began = time.perf_counter()
        sample = generate("m", scenario, 20_000, drift_at=10_000, seed=1, start=0.0)
        took = time.perf_counter() - began
        before, after = sample[:10_000], sample[10_000:]
        salary = [np.mean([p["features"]["salary"] for p, _ in part]) for part in (before, after)]
        score = [np.mean([p["score"] for p, _ in part]) for part in (before, after)]
        print(
            f"{scenario:14s} 20k pairs in {took:.2f} s  accuracy {accuracy(before):.3f} -> {accuracy(after):.3f}  "
            f"salary {salary[0]:,.0f} -> {salary[1]:,.0f}  score {score[0]:.3f} -> {score[1]:.3f}"
        )
