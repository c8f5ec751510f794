"""ClassificationMetrics and RegressionMetrics: rolling and cumulative, against recomputations."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.metrics import ClassificationMetrics, RegressionMetrics
from detectors.performance import canonical_class
from streams.codec import decode, encode
from tests.detectors.batching import assert_split_invariant, cuts

Pair = tuple[Any, Any, "float | None"]
MAX_LOG_LOSS = -math.log(1 - (1 - 1e-15))  # a certain mistake, clipped: 1 - 1e-15 rounds up in binary


def recompute(pairs: list[Pair], positive: Any, binary: bool) -> dict[str, float]:
    """The metrics of ``pairs`` from scratch, scikit-learn's definitions (macro: zero_division=0)."""
    if not pairs:
        return {}
    guess = [canonical_class(p) for p, _, _ in pairs]
    truth = [canonical_class(y) for _, y, _ in pairs]
    pos = canonical_class(positive)
    out = {"accuracy": float(np.mean([g == t for g, t in zip(guess, truth, strict=True)]))}
    if binary:
        tp = sum(g == t == pos for g, t in zip(guess, truth, strict=True))
        guessed, real = guess.count(pos), truth.count(pos)
        if guessed:
            out["precision"] = tp / guessed
        if real:
            out["recall"] = tp / real
        if guessed + real:
            out["f1"] = 2 * tp / (guessed + real)
    else:
        classes = sorted(set(guess) | set(truth))
        tp = np.array([sum(g == t == c for g, t in zip(guess, truth, strict=True)) for c in classes])
        guessed = np.array([guess.count(c) for c in classes])
        real = np.array([truth.count(c) for c in classes])
        out["precision"] = float(np.mean(np.where(guessed > 0, tp / np.maximum(guessed, 1), 0.0)))
        out["recall"] = float(np.mean(np.where(real > 0, tp / np.maximum(real, 1), 0.0)))
        out["f1"] = float(np.mean(2 * tp / (guessed + real)))
    scored = [(s, float(t == pos)) for (_, _, s), t in zip(pairs, truth, strict=True) if s is not None]
    if scored:
        s, y = np.array(scored).T
        q = np.clip(s, 1e-15, 1 - 1e-15)
        out["log_loss"] = float(np.mean(-(y * np.log(q) + (1 - y) * np.log(1 - q))))
        out["brier"] = float(np.mean((s - y) ** 2))
    return out


def expected_snapshot(pairs: list[Pair], window: int, positive: Any = 1) -> dict[str, float]:
    seen = {canonical_class(positive)} | {canonical_class(v) for p, y, _ in pairs for v in (p, y)}
    binary = len(seen) <= 2
    rolling = recompute(pairs[-window:], positive, binary)
    total = recompute(pairs, positive, binary)
    return rolling | {f"{k}_total": v for k, v in total.items()}


def assert_matches(got: dict[str, float], want: dict[str, float]) -> None:
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def calibrated_binary(seed: int, n: int) -> list[Pair]:
    rng = random.Random(seed)
    pairs: list[Pair] = []
    for _ in range(n):
        p = rng.random()
        pairs.append((int(p >= 0.5), int(rng.random() < p), p))
    return pairs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_metrics_match_numpy(seed: int) -> None:
    pairs = calibrated_binary(seed, 5000)
    metrics = ClassificationMetrics(window=1000)
    for pair in pairs:
        metrics.update(*pair)
    snap = metrics.snapshot()
    assert_matches(snap, expected_snapshot(pairs, 1000))
    assert metrics.binary and metrics.n == 1000 and metrics.n_total == 5000
    # uniform calibrated scores: accuracy 3/4, log loss 1/2, Brier 1/6
    assert snap["accuracy_total"] == pytest.approx(0.75, abs=0.02)
    assert snap["log_loss_total"] == pytest.approx(0.5, abs=0.02)
    assert snap["brier_total"] == pytest.approx(1 / 6, abs=0.01)


@pytest.mark.parametrize("seed", [0, 1])
def test_multiclass_macro_metrics_match_numpy(seed: int) -> None:
    rng = random.Random(seed)
    names = ["cat", "dog", "bird", "fish"]
    pairs: list[Pair] = []
    for _ in range(3000):
        label = rng.choice(names)
        guess = label if rng.random() < 0.7 else rng.choice(names[:3])  # "fish" is never predicted wrongly
        pairs.append((guess, label, None))
    metrics = ClassificationMetrics(positive="cat", window=700)
    for pair in pairs:
        metrics.update(*pair)
    assert not metrics.binary
    assert_matches(metrics.snapshot(), expected_snapshot(pairs, 700, "cat"))


def test_a_small_case_by_hand() -> None:
    metrics = ClassificationMetrics(window=4)
    for prediction, label, score in [(1, 1, 0.9), (1, 0, 0.6), (0, 1, 0.4), (0, 0, 0.2), (1, 1, None)]:
        metrics.update(prediction, label, score)
    snap = metrics.snapshot()
    # window: (1,0,.6) (0,1,.4) (0,0,.2) (1,1,-): tp 1, predicted 2, actual 2
    assert snap["accuracy"] == 0.5
    assert (snap["precision"], snap["recall"], snap["f1"]) == (0.5, 0.5, 0.5)
    assert snap["log_loss"] == pytest.approx((-math.log(0.4) - math.log(0.4) - math.log(0.8)) / 3)
    assert snap["brier"] == pytest.approx((0.36 + 0.36 + 0.04) / 3)
    assert snap["accuracy_total"] == 0.6
    assert snap["precision_total"] == pytest.approx(2 / 3)
    assert snap["recall_total"] == pytest.approx(2 / 3)
    assert snap["brier_total"] == pytest.approx((0.01 + 0.36 + 0.36 + 0.04) / 4)


def test_undefined_metrics_are_left_out() -> None:
    metrics = ClassificationMetrics()
    assert metrics.snapshot() == {}
    metrics.update(0, 0)  # no positive prediction or label, no score
    assert set(metrics.snapshot()) == {"accuracy", "accuracy_total"}
    metrics.update(0, 1)  # a positive label, still no positive prediction
    assert set(metrics.snapshot()) == {"accuracy", "recall", "f1"} | {"accuracy_total", "recall_total", "f1_total"}
    assert RegressionMetrics().snapshot() == {}


def test_positive_class_across_json_types() -> None:
    metrics = ClassificationMetrics(positive=True)
    for prediction, label in [(1, "1"), ("true", 1.0), (False, 0), ("0", "true")]:
        metrics.update(prediction, label, 0.7)
    snap = metrics.snapshot()
    assert metrics.binary and len(metrics.classes) == 2
    assert (snap["accuracy"], snap["precision"], snap["recall"]) == (0.75, 1.0, pytest.approx(2 / 3))


def test_log_loss_clips_certain_mistakes() -> None:
    metrics = ClassificationMetrics()
    metrics.update(0, 1, 0.0)
    metrics.update(1, 0, 1.0)
    snap = metrics.snapshot()
    assert snap["log_loss"] == pytest.approx((-math.log(1e-15) - math.log(1 - (1 - 1e-15))) / 2, rel=1e-12)
    assert snap["log_loss"] <= MAX_LOG_LOSS
    assert snap["brier"] == 1.0


@pytest.mark.parametrize("score", [math.nan, -0.1, 1.5, math.inf, "x"])
def test_a_score_that_is_not_a_probability_is_rejected(score: Any) -> None:
    metrics = ClassificationMetrics()
    with pytest.raises(ValueError):
        metrics.update(1, 1, score)
    assert metrics.n_total == 0  # nothing half-counted


def test_average_modes() -> None:
    with pytest.raises(ValueError):
        ClassificationMetrics(average="micro")
    pairs: list[Pair] = [("a", "a", None), ("b", "a", None), ("b", "b", None)]
    forced = ClassificationMetrics(positive="b", average="binary")
    auto = ClassificationMetrics(positive="b")
    macro = ClassificationMetrics(positive="b", average="macro")
    for pair in pairs:
        for metrics in (forced, auto, macro):
            metrics.update(*pair)
    assert forced.snapshot() == auto.snapshot()
    assert forced.snapshot()["precision"] == 0.5
    assert macro.snapshot()["precision"] == pytest.approx((1.0 + 0.5) / 2)


def test_classes_beyond_the_cap_count_in_accuracy_only() -> None:
    metrics = ClassificationMetrics(positive="a", max_classes=3)
    pairs: list[Pair] = [("a", "a", None), ("b", "b", None), ("c", "c", None), ("d", "d", None), ("e", "d", None)]
    for pair in pairs:
        metrics.update(*pair)
    snap = metrics.snapshot()
    assert set(metrics.classes) == {"a", "b", "c"}
    assert snap["accuracy"] == 0.8
    assert (snap["precision"], snap["recall"], snap["f1"]) == (1.0, 1.0, 1.0)  # over a, b, c


def test_rolling_sums_do_not_drift_over_a_long_stream() -> None:
    rng = random.Random(9)
    pairs = calibrated_binary(9, 100_000)
    metrics, regression = ClassificationMetrics(window=997), RegressionMetrics(window=997)
    errors = []
    for prediction, label, score in pairs:
        metrics.update(prediction, label, score)
        error = rng.gauss(0.0, 1e3)
        regression.update(error, 0.0)
        errors.append(error)
    assert_matches(metrics.snapshot(), expected_snapshot(pairs, 997))
    last = np.array(errors[-997:])
    assert regression.snapshot()["mae"] == pytest.approx(float(np.mean(np.abs(last))), rel=1e-12)
    assert regression.snapshot()["rmse"] == pytest.approx(float(np.sqrt(np.mean(last**2))), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_regression_metrics_match_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.normal(10.0, 3.0, 4000)
    yhat = y + rng.normal(0.5, 2.0, 4000)
    metrics = RegressionMetrics(window=1000)
    for prediction, label in zip(yhat.tolist(), y.tolist(), strict=True):
        metrics.update(prediction, label)
    err = yhat - y
    want = {
        "mae": np.mean(np.abs(err[-1000:])),
        "rmse": np.sqrt(np.mean(err[-1000:] ** 2)),
        "mae_total": np.mean(np.abs(err)),
        "rmse_total": np.sqrt(np.mean(err**2)),
    }
    assert_matches(metrics.snapshot(), {k: float(v) for k, v in want.items()})


@pytest.mark.parametrize("prediction,label", [(math.nan, 1.0), (1.0, math.inf), ("x", 1.0)])
def test_regression_rejects_non_finite_errors(prediction: Any, label: Any) -> None:
    metrics = RegressionMetrics()
    with pytest.raises(ValueError):
        metrics.update(prediction, label)
    assert metrics.n_total == 0


def test_a_checkpoint_round_trip_continues_exactly() -> None:
    from streams import codec

    pairs = calibrated_binary(4, 3000)
    metrics, regression = ClassificationMetrics(window=500), RegressionMetrics(window=500)
    for prediction, label, score in pairs[:1700]:
        metrics.update(prediction, label, score if prediction else None)
        regression.update(score, label)
    metrics2 = codec.decode(codec.encode(metrics), ClassificationMetrics)
    regression2 = codec.decode(codec.encode(regression), RegressionMetrics)
    for prediction, label, score in pairs[1700:]:
        for m in (metrics, metrics2):
            m.update(prediction, label, score if prediction else None)
        for r in (regression, regression2):
            r.update(score, label)
    assert metrics2.snapshot() == metrics.snapshot()
    assert regression2.snapshot() == regression.snapshot()


classes = st.sampled_from([0, 1, "1", True, False, "a", "b"])
scores = st.one_of(st.none(), st.floats(min_value=0.0, max_value=1.0))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(classes, classes, scores), min_size=1, max_size=400), st.integers(1, 60))
def test_metrics_stay_in_range_and_rolling_equals_a_recomputation(pairs: list[Pair], window: int) -> None:
    metrics = ClassificationMetrics(window=window)
    for i, pair in enumerate(pairs):
        metrics.update(*pair)
        snap = metrics.snapshot()
        for key, value in snap.items():
            assert math.isfinite(value)
            if key.startswith("log_loss"):
                assert 0.0 <= value <= MAX_LOG_LOSS
            else:
                assert 0.0 <= value <= 1.0
        if i % 7 == 0 or i == len(pairs) - 1:
            assert_matches(snap, expected_snapshot(pairs[: i + 1], window))


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=300), st.integers(1, 50))
def test_regression_rolling_equals_a_recomputation(pairs: list[tuple[float, float]], window: int) -> None:
    metrics = RegressionMetrics(window=window)
    for prediction, label in pairs:
        metrics.update(prediction, label)
    err = np.array([p - y for p, y in pairs])
    snap = metrics.snapshot()
    scale = max(1.0, float(np.max(np.abs(err))))
    assert snap["mae"] == pytest.approx(float(np.mean(np.abs(err[-window:]))), rel=1e-9, abs=1e-9 * scale)
    assert snap["rmse"] == pytest.approx(float(np.sqrt(np.mean(err[-window:] ** 2))), rel=1e-7, abs=1e-7 * scale)
    assert snap["mae_total"] == pytest.approx(float(np.mean(np.abs(err))), rel=1e-9, abs=1e-9 * scale)
    assert 0.0 <= snap["mae"] <= snap["rmse"] * (1 + 1e-9) + 1e-9 * scale


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    seed=st.integers(0, 10_000),
    n=st.integers(1, 1500),
    window=st.sampled_from([1, 7, 100]),
    max_classes=st.sampled_from([2, 3, 50]),
    scored=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_any_split_gives_the_state_of_one_pair_at_a_time(
    data: st.DataObject,
    seed: int,
    n: int,
    window: int,
    max_classes: int,
    scored: float,
) -> None:
    rng = np.random.default_rng(seed)
    names: list[Any] = [0, 1, "1", True, False, "a", "b", 2.0, "true"]
    predictions = [names[i] for i in rng.integers(0, len(names), n)]
    labels = [names[i] for i in rng.integers(0, len(names), n)]
    scores = np.where(rng.random(n) < scored, rng.random(n), np.nan)
    scores[rng.random(n) < 0.05] = 1.0

    def feed(metrics: ClassificationMetrics, part: slice) -> list[Any]:
        metrics.update_many(predictions[part], labels[part], scores[part] if scored else None)
        return []

    assert_split_invariant(
        lambda: ClassificationMetrics(window=window, max_classes=max_classes), feed, n, data.draw(cuts(n))
    )
    metrics = ClassificationMetrics(window=window, max_classes=max_classes)
    feed(metrics, slice(0, n))
    pairs = [
        (p, y, None if math.isnan(s) or not scored else s) for p, y, s in zip(predictions, labels, scores, strict=True)
    ]
    if max_classes == 50:
        assert_matches(metrics.snapshot(), expected_snapshot(pairs, window))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), seed=st.integers(0, 10_000), n=st.integers(1, 1500), window=st.sampled_from([1, 7, 100]))
def test_regression_any_split_gives_the_state_of_one_pair_at_a_time(
    data: st.DataObject,
    seed: int,
    n: int,
    window: int,
) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.normal(0.0, 10.0 ** rng.uniform(-3, 6), n)
    predictions = labels + rng.normal(0.0, rng.uniform(0.1, 5.0), n)

    def feed(metrics: RegressionMetrics, part: slice) -> list[Any]:
        metrics.update_many(predictions[part], labels[part])
        return []

    assert_split_invariant(lambda: RegressionMetrics(window=window), feed, n, data.draw(cuts(n)))


def test_rings_are_small_and_the_score_ring_waits_for_a_score() -> None:
    metrics = ClassificationMetrics()
    metrics.update_many([1, 0] * 600, [1, 1] * 600)
    assert metrics.predicted.values.dtype == np.int8 and metrics.correct.values.dtype == np.bool_
    assert len(metrics.scores.values) == 0  # no pair carried a score
    metrics.update_many([1, 0], [0, 0], np.array([0.9, np.nan]))
    assert metrics.scores.count == metrics.predicted.count and metrics.scores.n == 1000
    assert metrics.snapshot()["log_loss"] == pytest.approx(-math.log(0.1))  # one scored pair in the window
    assert len(metrics.tp_total) == len(metrics.classes) == 2


@pytest.mark.parametrize("with_scores", [True, False])
def test_a_codec_round_trip_mid_stream_continues_exactly(with_scores: bool) -> None:
    pairs = calibrated_binary(5, 3000)
    predictions, labels = [p for p, _, _ in pairs], [y for _, y, _ in pairs]
    scores = np.array([s for _, _, s in pairs]) if with_scores else None
    straight, interrupted = ClassificationMetrics(window=500), ClassificationMetrics(window=500)
    regression, regression_cut = RegressionMetrics(window=500), RegressionMetrics(window=500)
    straight.update_many(predictions, labels, scores)
    regression.update_many([s for _, _, s in pairs], labels)
    interrupted.update_many(predictions[:1234], labels[:1234], None if scores is None else scores[:1234])
    regression_cut.update_many([s for _, _, s in pairs[:1234]], labels[:1234])
    restored = decode(encode(interrupted), ClassificationMetrics)
    restored_regression = decode(encode(regression_cut), RegressionMetrics)
    restored.update_many(predictions[1234:], labels[1234:], None if scores is None else scores[1234:])
    restored_regression.update_many([s for _, _, s in pairs[1234:]], labels[1234:])
    assert encode(restored) == encode(straight) and restored.snapshot() == straight.snapshot()
    assert encode(restored_regression) == encode(regression)
    assert restored_regression.snapshot() == regression.snapshot()
