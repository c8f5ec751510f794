"""Reference profiles: bounded numeric sketches, top-K category mixes, JSON round trips, online building."""

from __future__ import annotations

import json
import math
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.profile_builder import ProfileBuilder, _draw, _draws
from detectors.reference import (
    CategoricalProfile,
    NumericProfile,
    as_label,
    as_number,
    as_numbers,
    build_profile,
    profile_from_dict,
)
from streams.codec import decode, encode
from tests.detectors.batching import assert_split_invariant, cuts


def test_numeric_profile_memory_is_bounded_whatever_the_sample_size() -> None:
    x = np.random.default_rng(0).normal(40, 6, 1_000_000)
    p = build_profile(x)
    assert isinstance(p, NumericProfile)
    assert (p.n, p.sample_size, p.missing_rate) == (1_000_000, 1_000_000, 0.0)
    assert len(p.quantiles) == len(p.cdf_below) == len(p.cdf_at_most) == 201
    assert len(p.psi_edges) == 9 and len(p.psi_fractions) == 10
    assert p.mean == pytest.approx(x.mean()) and p.std == pytest.approx(x.std(ddof=1))
    assert (p.min, p.max) == (x.min(), x.max()) == (p.quantiles[0], p.quantiles[-1])
    assert p.quantiles[100] == pytest.approx(np.median(x))
    assert np.allclose(p.psi_fractions, 0.1, atol=1e-5)
    assert len(json.dumps(p.to_dict())) < 20_000


def test_missing_values_are_none_nan_and_infinities() -> None:
    p = build_profile([1.0, None, float("nan"), float("inf"), 2, 3.0])
    assert isinstance(p, NumericProfile)
    assert p.n == 3 and p.missing_rate == pytest.approx(0.5)
    assert (p.min, p.max, p.mean) == (1.0, 3.0, 2.0)
    assert build_profile(np.array([1.0, np.nan, 3.0, -np.inf])).missing_rate == 0.5


def test_integer_values_are_atoms_with_exact_shares() -> None:
    x = np.random.default_rng(1).poisson(3, 20_000)
    p = build_profile(x)
    q, below, at_most = (np.asarray(a) for a in (p.quantiles, p.cdf_below, p.cdf_at_most))
    k = int(np.argmax(q == 3))
    assert below[k] == pytest.approx(np.mean(x < 3)) and at_most[k] == pytest.approx(np.mean(x <= 3))
    assert np.all(below <= at_most) and np.all(np.diff(q) >= 0)
    assert len(set(p.psi_edges)) == len(p.psi_edges) < 9  # tied deciles merge into fewer bins
    assert math.fsum(p.psi_fractions) == pytest.approx(1.0)
    edges = np.asarray(p.psi_edges)
    assert p.psi_fractions[0] == pytest.approx(np.mean(x <= edges[0]))


def test_inverse_cdf_sampling_reproduces_the_reference() -> None:
    rng = np.random.default_rng(2)
    for x in (rng.lognormal(0, 1, 20_000), rng.poisson(2, 20_000).astype(float)):
        p = build_profile(x)
        y = p.sample(rng, 200_000)
        assert np.quantile(y, [0.1, 0.5, 0.9]) == pytest.approx(np.quantile(x, [0.1, 0.5, 0.9]), rel=0.03, abs=0.02)
        assert y.min() >= p.min and y.max() <= p.max
    assert np.mean(y == 2.0) == pytest.approx(np.mean(x == 2.0), abs=0.005)  # atoms keep their mass


def test_categorical_profile_keeps_the_top_k_and_pools_the_rest() -> None:
    rng = np.random.default_rng(3)
    weights = 1.0 / np.arange(1, 101)
    x = rng.choice([f"c{i}" for i in range(100)], 50_000, p=weights / weights.sum()).tolist() + [None] * 500
    p = build_profile(x)
    assert isinstance(p, CategoricalProfile)
    assert len(p.categories) == 50 and p.categories[:2] == ("c0", "c1")
    assert list(p.frequencies) == sorted(p.frequencies, reverse=True)
    assert math.fsum(p.frequencies) + p.other == pytest.approx(1.0)
    assert 0.05 < p.other < 0.3
    assert p.n == 50_000 and p.missing_rate == pytest.approx(500 / 50_500)
    assert build_profile(["b", "a", "b", "a", "c"], top_k=2).categories == ("a", "b")  # ties broken by name


@pytest.mark.parametrize(
    "values,kind",
    [
        ([1, 2, 3], "numeric"),
        ([1.5, None, 2], "numeric"),
        (["a", "b"], "categorical"),
        ([True, False], "categorical"),
        ([1, "a"], "categorical"),
        (np.arange(5), "numeric"),
    ],
)
def test_kind_is_numeric_when_every_present_value_is_a_number(values: list, kind: str) -> None:
    expected = NumericProfile if kind == "numeric" else CategoricalProfile
    assert isinstance(build_profile(values), expected)


def test_kind_can_be_forced() -> None:
    p = build_profile([1, 2, 2, 3], kind="categorical")
    assert isinstance(p, CategoricalProfile) and p.categories == ("2", "1", "3")
    p = build_profile(np.array([1, 2, 2, 3]), kind="categorical")
    assert isinstance(p, CategoricalProfile) and p.categories == ("2", "1", "3")
    q = build_profile([1, "x", 3], kind="numeric")
    assert isinstance(q, NumericProfile) and q.n == 2 and q.missing_rate == pytest.approx(1 / 3)


def test_a_sample_without_values_cannot_be_profiled() -> None:
    for values in ([], [None, float("nan")], np.array([np.nan])):
        with pytest.raises(ValueError):
            build_profile(values)
    with pytest.raises(ValueError):
        ProfileBuilder().profile()


def test_value_coercion() -> None:
    assert [as_number(v) for v in (1, 2.5, np.float32(1.5), True, "3", None, float("nan"), 10**400)] == [
        1.0,
        2.5,
        1.5,
        None,
        None,
        None,
        None,
        None,
    ]
    assert [as_label(v) for v in ("a", 1, True, None, float("nan"))] == ["a", "1", "True", None, None]


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(4).normal(0, 1, 5000),
        ["x", "y", "y", None, "z"] * 100,
    ],
)
def test_profiles_round_trip_through_json(values: object) -> None:
    p = build_profile(values)
    doc = json.loads(json.dumps(p.to_dict()))
    assert profile_from_dict(doc) == p
    assert type(p).from_dict(doc) == p


def test_builder_equals_build_profile_below_capacity() -> None:
    x = np.random.default_rng(5).normal(3, 2, 5000)
    builder = ProfileBuilder(size=3000)
    for v in x:
        builder.update(float(v))
    assert builder.done and builder.seen == 3000
    built, direct = builder.profile(), build_profile(x[:3000])
    assert built == direct  # every value is kept: the same sketch, mean and std, to the bit

    labels = ["a", "b", None, "a", 3] * 100
    builder = ProfileBuilder(size=200, kind="categorical")
    for v in labels:
        builder.update(v)
    assert builder.profile() == build_profile(labels[:250], kind="categorical")


def test_builder_reservoir_is_bounded_seeded_and_unbiased() -> None:
    x = np.random.default_rng(6).uniform(0, 1, 40_000)
    x[:20_000] *= 0.5  # first half differs: a reservoir that kept only the start would be biased

    def build(seed: int) -> NumericProfile:
        builder = ProfileBuilder(size=40_000, capacity=2000, seed=seed)
        for v in x:
            builder.update(float(v))
        profile = builder.profile()
        assert isinstance(profile, NumericProfile)
        return profile

    a, b, c = build(1), build(1), build(2)
    assert a == b and not np.array_equal(a.quantiles, c.quantiles)
    assert (a.n, a.sample_size, a.min, a.max) == (40_000, 2000, x.min(), x.max())
    assert a.mean == pytest.approx(x.mean()) and a.std == pytest.approx(x.std(ddof=1))
    assert np.quantile(x, [0.25, 0.5, 0.75]) == pytest.approx(np.asarray(a.quantiles)[[50, 100, 150]], abs=0.03)


def test_builder_decides_the_kind_from_the_first_present_value() -> None:
    builder = ProfileBuilder(size=3)
    for v in (None, float("nan"), "red", 1, "blue", "red"):
        builder.update(v)
    p = builder.profile()
    assert isinstance(p, CategoricalProfile)
    assert p.categories == ("1", "blue", "red") and p.missing_rate == pytest.approx(
        2 / 5
    )  # the last "red" came too late
    numeric = ProfileBuilder(size=10)
    for v in (float("inf"), 2, "oops", 4.0, None):
        numeric.update(v)
    assert numeric.kind == "numeric" and numeric.seen == 2 and numeric.missing == 3 and not numeric.done


def test_builder_survives_a_checkpoint() -> None:
    x = np.random.default_rng(7).normal(0, 1, 6000)
    whole, part = ProfileBuilder(size=5000, capacity=1000), ProfileBuilder(size=5000, capacity=1000)
    for v in x[:2500]:
        whole.update(float(v))
        part.update(float(v))
    part = decode(encode(part), type(part))
    for v in x[2500:]:
        whole.update(float(v))
        part.update(float(v))
    assert part.profile() == whole.profile()
    assert decode(encode(whole.profile()), type(whole.profile())) == whole.profile()


finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(finite, st.integers(-(10**6), 10**6), st.none()), min_size=1, max_size=300).filter(
        lambda v: any(x is not None for x in v)
    )
)
def test_numeric_profile_invariants(values: list) -> None:
    p = build_profile(values)
    assert isinstance(p, NumericProfile)
    q, below, at_most = (np.asarray(a) for a in (p.quantiles, p.cdf_below, p.cdf_at_most))
    assert np.all(np.isfinite(q)) and np.all(np.diff(q) >= 0)
    assert np.all((0 <= below) & (below <= at_most) & (at_most <= 1)) and at_most[-1] == 1 and below[0] == 0
    assert math.fsum(p.psi_fractions) == pytest.approx(1.0)
    slack = 1e-9 * max(abs(p.min), abs(p.max))
    assert math.isfinite(p.mean) and p.min - slack <= p.mean <= p.max + slack
    assert math.isfinite(p.std) and p.std >= 0
    assert profile_from_dict(json.loads(json.dumps(p.to_dict()))) == p


# --- compact, checkpointable state ----------------------------------------------------------------------


def test_a_numeric_profile_keeps_its_sketch_in_read_only_float64_arrays() -> None:
    p = build_profile(np.random.default_rng(8).normal(0, 1, 10_000))
    assert isinstance(p, NumericProfile)
    for name in ("quantiles", "cdf_below", "cdf_at_most", "psi_edges", "psi_fractions"):
        array = getattr(p, name)
        assert isinstance(array, np.ndarray) and array.dtype == np.float64 and not array.flags.writeable
    q = np.arange(201.0)
    built = NumericProfile(1, 0.0, 0.0, 1.0, 0.0, 200.0, q, q / 200, q / 200, q[20:200:20], np.full(10, 0.1), 1)
    q[0] = -1.0  # the caller's array is copied, not frozen under it
    assert built.quantiles[0] == 0.0 and q.flags.writeable


def test_a_profile_costs_a_few_kilobytes() -> None:
    rng = np.random.default_rng(9)
    samples = [rng.normal(0, 1, 5000) for _ in range(50)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    profiles = [build_profile(x) for x in samples]
    size = (tracemalloc.get_traced_memory()[0] - before) / len(profiles)
    tracemalloc.stop()
    assert size < 8_000, size  # a tuple of 201 Python floats alone took 6.4 KB; three of them, 20 KB


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(10).poisson(3, 4000).astype(float),
        ["x", "y", "y", None, "z"] * 100,
    ],
)
def test_profiles_round_trip_through_the_checkpoint_codec(values: object) -> None:
    p = build_profile(values)
    back = decode(encode(p), type(p))
    assert back == p and encode(back) == encode(p)
    if isinstance(back, NumericProfile):
        assert not back.quantiles.flags.writeable


@pytest.mark.parametrize(
    "kind, size, capacity",
    [
        ("numeric", 5000, 10_000),
        ("numeric", 5000, 1000),
        ("categorical", 500, 10_000),
        ("categorical", 500, 100),
    ],
)
def test_a_builder_mid_reference_round_trips_through_the_checkpoint_codec(kind: str, size: int, capacity: int) -> None:
    rng = np.random.default_rng(11)
    values = rng.normal(0, 1, 3000) if kind == "numeric" else rng.choice(list("abc"), 300).tolist()
    whole, part = ProfileBuilder(size=size, capacity=capacity), ProfileBuilder(size=size, capacity=capacity)
    half = len(values) // 2
    whole.update_many(values[:half])
    part.update_many(values[:half])
    part = decode(encode(part), ProfileBuilder)
    assert whole.update_many(values[half:]) == part.update_many(values[half:])
    assert encode(part) == encode(whole) and part.profile() == whole.profile()


def test_a_builder_grows_with_the_values_it_has_seen() -> None:
    builder = ProfileBuilder(size=5000)
    builder.update_many(np.random.default_rng(12).normal(0, 1, 100))
    assert 100 <= len(builder.numbers) < 200  # not 5,000 slots for 100 values
    builder.update_many(np.random.default_rng(13).normal(0, 1, 9000))
    assert builder.done and len(builder.numbers) == 5000
    labels = ProfileBuilder(size=5000, kind="categorical")
    labels.update_many(["a", "b"] * 2000)
    assert labels.counts == {"a": 2000, "b": 2000} and labels.labels == []  # counted, not kept one by one


def test_update_many_says_how_many_values_it_took() -> None:
    builder = ProfileBuilder(size=3)
    assert builder.update_many([None, float("nan"), 1.0, "x", 2.0, 3.0, 4.0, 5.0]) == 6  # up to the third number
    assert builder.done and (builder.seen, builder.missing) == (3, 3)
    assert builder.update_many([6.0]) == 0


@settings(max_examples=100, deadline=None)
@given(st.integers(-(2**63), 2**63 - 1), st.lists(st.integers(0, 2**40), min_size=1, max_size=20))
def test_the_vectorised_reservoir_hash_is_the_scalar_one(seed: int, indices: list[int]) -> None:
    assert _draws(seed, np.array(indices)).tolist() == [_draw(seed, i) for i in indices]


present = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=32), st.integers(-5, 5))
mixed = st.one_of(present, st.none(), st.just(float("nan")), st.just(float("inf")), st.sampled_from(["a", "b"]))


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    values=st.lists(mixed, min_size=1, max_size=300),
    size=st.integers(1, 120),
    capacity=st.sampled_from([7, 50, 10_000]),
    kind=st.sampled_from([None, "numeric", "categorical"]),
)
def test_any_split_builds_the_same_profile_state(
    data: st.DataObject,
    values: list,
    size: int,
    capacity: int,
    kind: str | None,
) -> None:
    def make() -> ProfileBuilder:
        return ProfileBuilder(size=size, kind=kind, capacity=capacity, seed=3)

    taken: dict[int, int] = {}

    def feed(builder: ProfileBuilder, part: slice) -> list:
        taken[id(builder)] = taken.get(id(builder), 0) + builder.update_many(values[part])
        return []

    assert_split_invariant(make, feed, len(values), data.draw(cuts(len(values))))
    one = make()  # the single-value path is the same state as update_many
    for v in values:
        one.update(v)
    whole = make()
    used = whole.update_many(values)
    assert encode(one) == encode(whole)
    assert used == len(values) or (whole.done and as_label(values[used - 1]) is not None)


def _assert_builds_as_one_at_a_time(
    data: st.DataObject, values: list[Any], batch: Any, make: Callable[[], ProfileBuilder]
) -> None:
    """Any split of ``batch`` (``values`` as a float column, or as they are) into batches, and the whole of it
    in one, leave the state and the profile of offering ``values`` one at a time."""

    def feed(builder: ProfileBuilder, part: slice) -> list:
        builder.update_many(batch[part])
        return []

    assert_split_invariant(make, feed, len(values), data.draw(cuts(len(values))))
    one = make()
    for v in values:
        one.update(v)
    whole = make()
    whole.update_many(batch)
    assert encode(one) == encode(whole) and one.profile() == whole.profile()


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    values=st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=400),
    capacity=st.sampled_from([5, 64, 10_000]),
)
def test_a_float_column_builds_as_values_one_at_a_time_do(data: st.DataObject, values: list, capacity: int) -> None:
    column = np.array(values)
    _assert_builds_as_one_at_a_time(
        data, values, column, lambda: ProfileBuilder(len(values), capacity=capacity, seed=1)
    )


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    values=st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=2, max_size=300),
    size=st.integers(1, 400),
    capacity=st.sampled_from([7, 10_000]),
)
def test_plain_labels_build_as_values_one_at_a_time_do(
    data: st.DataObject, values: list, size: int, capacity: int
) -> None:
    _assert_builds_as_one_at_a_time(data, values, values, lambda: ProfileBuilder(size=size, capacity=capacity, seed=1))


def test_a_numeric_column_is_a_float64_column_with_nan_for_what_is_not_a_number() -> None:
    assert as_numbers(np.array([1, 2])).tolist() == [1.0, 2.0]
    assert np.isnan(as_numbers(np.array([True, False]))).all()
    assert as_numbers(np.array([1.0, np.inf]))[1] != as_numbers(np.array([1.0, np.inf]))[1]
