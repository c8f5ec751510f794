"""ConfidenceBasedEstimator: accuracy estimated from scores alone, and its condition."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import Change
from detectors.cbpe import ConfidenceBasedEstimator, isotonic
from streams.codec import decode, encode
from tests.detectors.batching import assert_split_invariant, cuts, times


def model(rng: random.Random, sigma: float, mu: float = 0.5, sharpness: float = 1.0) -> tuple[float, int]:
    """One prediction of a synthetic binary model: (score, label).

    The true log-odds are N(mu, sigma); the score is the logistic of ``sharpness``
    times them, so ``sharpness`` 1 is calibrated and more than 1 overconfident.
    Smaller ``sigma`` puts the scores nearer 0.5 (less accurate).
    """
    z = rng.gauss(mu, sigma)
    label = int(rng.random() < 1.0 / (1.0 + math.exp(-z)))
    return 1.0 / (1.0 + math.exp(-sharpness * z)), label


def run(
    cbpe: ConfidenceBasedEstimator,
    rng: random.Random,
    sigma: float,
    n: int,
    start: int,
    labelled: bool = False,
    **kw: float,
) -> Iterator[tuple[float, int]]:
    """Feed ``n`` predictions (the first ``reference_size`` pairs are always labelled); yield each."""
    for i in range(start, start + n):
        score, label = model(rng, sigma, **kw)
        cbpe.observe_prediction(None, score, float(i))
        if labelled or cbpe.reference_n < cbpe.reference_size:
            cbpe.observe_outcome(None, label, score)
        yield score, label


def flags(cbpe: ConfidenceBasedEstimator, rng: random.Random, sigma: float, n: int, start: int) -> list[bool]:
    return [cbpe.active for _ in run(cbpe, rng, sigma, n, start)]


@pytest.mark.parametrize("reference_size,bound", [(1000, 0.035), (5000, 0.02)])
@pytest.mark.parametrize("sharpness", [1.0, 1.8, 0.6])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_estimate_tracks_realized_accuracy_on_stationary_data(
    seed: int, sharpness: float, reference_size: int, bound: float
) -> None:
    """A reference of N labels leaves the estimate a bias of sd ~0.33 / sqrt(N) (0.010 for 1000)."""
    rng = random.Random(seed)
    cbpe = ConfidenceBasedEstimator(reference_size=reference_size)
    gaps = []
    for i, _ in enumerate(run(cbpe, rng, 3.0, 15_000 + reference_size, 0, labelled=True, sharpness=sharpness)):
        assert not cbpe.active
        if i >= reference_size + 999 and (i + 1) % 1000 == 0:  # disjoint windows after the reference
            gaps.append(cbpe.gap)
    assert cbpe.calibrated and cbpe.realized.n == 1000
    assert abs(np.mean(gaps)) <= bound  # no bias beyond the reference's, even for a miscalibrated model
    assert np.mean(np.abs(gaps)) <= bound  # realized accuracy alone has a standard error of ~0.012 here
    assert np.max(np.abs(gaps)) <= 0.06


@pytest.mark.parametrize("sharpness", [1.8, 0.6])
def test_without_calibration_a_miscalibrated_model_is_misjudged(sharpness: float) -> None:
    rng = random.Random(0)
    raw = ConfidenceBasedEstimator(reference_size=10**9)  # never calibrates: scores at face value
    gaps = [
        raw.gap
        for i, _ in enumerate(run(raw, rng, 3.0, 10_000, 0, labelled=True, sharpness=sharpness))
        if (i + 1) % 1000 == 0
    ]
    assert abs(np.mean(gaps)) > 0.04


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_scores_moving_toward_one_half_fire_before_any_label(seed: int) -> None:
    rng = random.Random(seed)
    cbpe = ConfidenceBasedEstimator()
    assert not any(flags(cbpe, rng, 3.0, 5000, 0))
    assert cbpe.realized.n == cbpe.reference_size  # no label after the reference
    hidden = []
    for i, (score, label) in enumerate(run(cbpe, rng, 1.5, 2000, 5000)):
        hidden.append(float((score >= 0.5) == label))
        if i == 999:
            assert cbpe.active  # within 1000 predictions of the shift
            assert cbpe.estimated_accuracy <= cbpe.reference_accuracy - cbpe.min_drop
    assert cbpe.active
    # the estimate matches the accuracy the labels will show once they arrive (sd of the difference ~0.021:
    # 0.016 from calibrating the middle bins on few reference pairs, 0.014 from the labels' own noise)
    assert cbpe.estimated_accuracy == pytest.approx(np.mean(hidden[-1000:]), abs=0.065)
    assert cbpe.realized.n == cbpe.reference_size


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_no_alert_on_stationary_data(seed: int) -> None:
    rng = random.Random(seed)
    cbpe = ConfidenceBasedEstimator()
    largest = 0.0
    for _ in run(cbpe, rng, 3.0, 20_000, 0):
        assert not cbpe.active
        largest = max(largest, cbpe.drop)
    assert largest < 0.04  # sd ~0.007 (window and reference noise); the condition needs 0.05 and z >= 4


def test_more_confident_scores_are_never_a_problem() -> None:
    rng = random.Random(6)
    cbpe = ConfidenceBasedEstimator()
    flags(cbpe, rng, 2.0, 2000, 0)
    assert not any(flags(cbpe, rng, 6.0, 5000, 2000))
    assert cbpe.drop < 0


def test_hysteresis() -> None:
    rng = random.Random(2)
    cbpe = ConfidenceBasedEstimator(min_drop=0.10)
    assert not any(flags(cbpe, rng, 3.0, 3000, 0))
    assert any(flags(cbpe, rng, 1.0, 1500, 3000))  # ~0.15 below the reference
    stays = flags(cbpe, rng, 1.75, 2500, 4500)  # ~0.075 below: under min_drop, over half of it
    assert all(stays)
    assert cbpe.min_drop / 2 <= cbpe.drop < cbpe.min_drop
    assert not flags(cbpe, rng, 3.0, 2000, 7000)[-1]

    fresh = ConfidenceBasedEstimator(min_drop=0.10)
    flags(fresh, rng, 3.0, 3000, 0)
    assert not any(flags(fresh, rng, 1.75, 4000, 3000))


@pytest.mark.parametrize("sigma,severity", [(1.8, "warning"), (0.7, "critical")])
def test_evidence(sigma: float, severity: str) -> None:
    rng = random.Random(3)
    cbpe = ConfidenceBasedEstimator()
    flags(cbpe, rng, 3.0, 3000, 0)
    flags(cbpe, rng, sigma, 2000, 3000)
    assert cbpe.active
    e = cbpe.evidence()
    assert (e.kind, e.feature, e.detector, e.severity) == ("performance", None, "cbpe", severity)
    assert e.statistic == round(cbpe.estimated_accuracy, 6) < e.threshold
    assert e.threshold == pytest.approx(cbpe.reference_accuracy - cbpe.min_drop, abs=1e-6)
    assert e.n == cbpe.window
    assert 4999 - cbpe.window - 16 <= e.window_start <= e.window_end == 4999.0
    assert "estimated accuracy" in e.message


def test_nothing_fires_before_the_reference_is_labelled() -> None:
    rng = random.Random(1)
    cbpe = ConfidenceBasedEstimator()
    for i in range(5000):
        cbpe.observe_prediction(None, model(rng, 3.0 if i < 1000 else 0.5)[0], float(i))
        assert not cbpe.active
    assert not cbpe.calibrated and math.isnan(cbpe.reference_accuracy) and math.isnan(cbpe.realized_accuracy)
    assert cbpe.estimated_accuracy < 0.7  # still estimated, from raw scores


def test_the_calibration_map_corrects_an_overconfident_model() -> None:
    rng = random.Random(5)
    cbpe = ConfidenceBasedEstimator(reference_size=40_000)
    for _ in run(cbpe, rng, 3.0, 40_000, 0, sharpness=2.0):
        pass
    table = cbpe.calibration.tolist()
    assert all(0.0 < p < 1.0 for p in table) and table == sorted(table)
    for score in (0.1, 0.25, 0.75, 0.9):
        lo, hi = math.floor(score * 20) / 20, math.floor(score * 20 + 1) / 20
        z = np.linspace(math.log(lo / (1 - lo)) / 2, math.log(hi / (1 - hi)) / 2, 1001)  # score = sigmoid(2z)
        density = np.exp(-((z - 0.5) ** 2) / 18)
        truth = float(np.sum(density / (1 + np.exp(-z))) / np.sum(density))  # P(positive | score in the bin)
        assert cbpe.calibrated_probability(score) == pytest.approx(truth, abs=0.065)  # >= 540 pairs a bin: sd < 0.022
        assert abs(cbpe.calibrated_probability(score) - 0.5) < abs(score - 0.5) - 0.03  # pulled toward 1/2


def test_explicit_classes_and_incomplete_events() -> None:
    cbpe = ConfidenceBasedEstimator(positive="fraud", reference_size=2, window=4)
    cbpe.observe_prediction("fraud", 0.3, 1.0)  # the model's own class wins over the threshold
    assert cbpe.estimated_accuracy == pytest.approx(0.325)  # uncalibrated: the midpoint of 0.3's bin
    cbpe.observe_prediction("ok", None, 2.0)  # no score: nothing to estimate from
    assert cbpe.n == 1
    cbpe.observe_outcome(None, "ok", None)  # neither class nor score: ignored
    assert cbpe.realized.n == 0
    cbpe.observe_outcome("ok", "fraud", None)  # realized accuracy only
    assert (cbpe.realized.n, cbpe.reference_n, cbpe.realized_accuracy) == (1, 0, 0.0)
    for bad in (math.nan, 1.01, -0.5):
        with pytest.raises(ValueError):
            cbpe.observe_prediction(None, bad, 3.0)
    assert cbpe.n == 1


def test_a_checkpoint_round_trip_continues_exactly() -> None:
    from streams import codec

    rng = random.Random(7)
    cbpe = ConfidenceBasedEstimator()
    flags(cbpe, rng, 3.0, 2500, 0)
    restored = codec.decode(codec.encode(cbpe), ConfidenceBasedEstimator)
    events = [model(rng, 1.0) for _ in range(2000)]
    seen: list[list[Any]] = []
    for monitor in (cbpe, restored):
        seen.append([])
        for i, (score, _) in enumerate(events):
            monitor.observe_prediction(None, score, float(2500 + i))
            seen[-1].append((monitor.active, monitor.estimated_accuracy))
    assert seen[0] == seen[1]
    assert restored.evidence() == cbpe.evidence()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.01, 100.0)), min_size=1, max_size=30))
def test_isotonic_is_monotone_and_keeps_the_weighted_mean(points: list[tuple[float, float]]) -> None:
    values, weights = (np.array(column) for column in zip(*points, strict=True))
    fitted = isotonic(values, weights)
    assert fitted.shape == values.shape
    assert np.all(np.diff(fitted) >= -1e-12)
    assert np.average(fitted, weights=weights) == pytest.approx(np.average(values, weights=weights), abs=1e-9)
    if np.all(np.diff(values) >= 0):
        assert fitted == pytest.approx(values)


def score_stream(rng: np.random.Generator, n: int) -> np.ndarray:
    """Scores of a binary model whose confidence moves in 1 to 4 segments, NaN for some events (no score)."""
    edges = np.sort(rng.integers(0, n + 1, size=rng.integers(0, 4)))
    sigma = rng.uniform(0.5, 4.0, size=len(edges) + 1)[np.searchsorted(edges, np.arange(n), side="right")]
    scores = 1.0 / (1.0 + np.exp(-rng.normal(0.5, sigma)))
    scores[rng.random(n) < rng.uniform(0.0, 0.3)] = np.nan
    return scores


def calibrated(window: int, check_every: int, reference: int = 200) -> ConfidenceBasedEstimator:
    rng = np.random.default_rng(99)
    cbpe = ConfidenceBasedEstimator(reference_size=reference, window=window, check_every=check_every, min_z=2.0)
    p = 1.0 / (1.0 + np.exp(-rng.normal(0.5, 3.0, reference)))
    cbpe.observe_labelled(p, p >= 0.5, rng.random(reference) < p)
    assert cbpe.calibrated
    return cbpe


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    seed=st.integers(0, 10_000),
    n=st.integers(1, 2500),
    window=st.sampled_from([64, 300]),
    check_every=st.sampled_from([1, 3, 16]),
    calibrate=st.booleans(),
)
def test_any_split_of_predictions_gives_the_changes_and_state_of_one_value_at_a_time(
    data: st.DataObject,
    seed: int,
    n: int,
    window: int,
    check_every: int,
    calibrate: bool,
) -> None:
    rng = np.random.default_rng(seed)
    scores, ts = score_stream(rng, n), times(n, rng)
    said = (scores >= 0.5) ^ (rng.random(n) < 0.05)  # mostly the class the score gives

    def make() -> ConfidenceBasedEstimator:
        if calibrate:
            return calibrated(window, check_every)
        return ConfidenceBasedEstimator(window=window, check_every=check_every, min_z=2.0)

    assert_split_invariant(
        make, lambda c, part: c.observe_scores(scores[part], said[part], ts[part]), n, data.draw(cuts(n))
    )


@settings(max_examples=60, deadline=None)
@given(data=st.data(), seed=st.integers(0, 10_000), n=st.integers(1, 1500), reference=st.sampled_from([1, 50, 400]))
def test_any_split_of_outcomes_gives_the_state_of_one_value_at_a_time(
    data: st.DataObject,
    seed: int,
    n: int,
    reference: int,
) -> None:
    rng = np.random.default_rng(seed)
    scores = score_stream(rng, n)
    said, positive = rng.random(n) < 0.5, rng.random(n) < 0.6

    def feed(cbpe: ConfidenceBasedEstimator, part: slice) -> list[Any]:
        cbpe.observe_labelled(scores[part], said[part], positive[part])
        return []

    assert_split_invariant(
        lambda: ConfidenceBasedEstimator(reference_size=reference, window=100), feed, n, data.draw(cuts(n))
    )


def test_conditions_flip_both_ways_in_the_split_streams() -> None:
    seen = set()
    for seed in range(40):
        rng = np.random.default_rng(seed)
        scores, ts = score_stream(rng, 2500), times(2500, rng)
        cbpe = calibrated(64, 1)
        said = (scores >= 0.5) ^ (rng.random(2500) < 0.05)
        seen |= {c.active for c in cbpe.observe_scores(scores, said, ts)}
    assert seen == {True, False}


def test_batches_match_one_prediction_at_a_time_and_skip_missing_scores() -> None:
    rng = random.Random(4)
    events = [model(rng, 3.0 if i < 3000 else 1.0) for i in range(5000)]
    one, batch = ConfidenceBasedEstimator(), ConfidenceBasedEstimator()
    flips = []
    for i, (score, label) in enumerate(events):
        was = one.active
        one.observe_prediction(None, score if i % 7 else None, float(i))
        if i < 1500:
            one.observe_outcome(None, label, score)
        if one.active != was:
            flips.append((i, one.active, one.evidence()))
    scores = np.array([s if i % 7 else np.nan for i, (s, _) in enumerate(events)])
    changes = batch.observe_predictions(None, scores[:1500], np.arange(1500.0))
    batch.observe_outcomes(None, [y for _, y in events[:1500]], np.array([s for s, _ in events[:1500]]))
    changes += [
        Change(c.index + 1500, c.active, c.evidence)
        for c in batch.observe_predictions([None] * 3500, scores[1500:], np.arange(1500.0, 5000.0))
    ]
    assert [(c.index, c.active, c.evidence) for c in changes] == flips and flips
    assert all(c.index % 7 for c in changes)  # an event without a score changes nothing
    assert batch.predictions == one.predictions == sum(1 for i in range(5000) if i % 7)


def test_the_window_is_one_byte_per_prediction_and_the_estimate_is_counted_from_it() -> None:
    cbpe = calibrated(1000, 16)
    rng = np.random.default_rng(1)
    p = rng.random(3000)
    cbpe.observe_scores(p, p >= 0.5, np.arange(3000.0))
    assert cbpe.codes.values.dtype == np.int8 and cbpe.codes.values.nbytes == 1000
    table = np.array(cbpe.calibration)
    bins = np.minimum((p[-1000:] * 20).astype(int), 19)
    right = np.where(p[-1000:] >= 0.5, table[bins], 1.0 - table[bins])
    assert cbpe.estimated_accuracy == pytest.approx(float(np.mean(right)), rel=1e-12)
    assert len(cbpe.bin_n) == 0  # the reference counts are dropped once calibrated


def test_a_codec_round_trip_mid_stream_continues_exactly() -> None:
    rng = random.Random(7)
    cbpe = ConfidenceBasedEstimator()
    flags(cbpe, rng, 3.0, 2500, 0)
    blob = encode(cbpe)
    restored = decode(blob, ConfidenceBasedEstimator)
    assert encode(restored) == blob
    scores = np.array([model(rng, 1.0)[0] for _ in range(2000)])
    ts = np.arange(2500.0, 4500.0)
    assert restored.observe_scores(scores, scores >= 0.5, ts) == cbpe.observe_scores(scores, scores >= 0.5, ts)
    assert cbpe.active and encode(restored) == encode(cbpe)
