"""The checkpoint codec: typed MessagePack that rebuilds only declared types, and exact round trips."""

from __future__ import annotations

import dataclasses
import random

import msgspec
import numpy as np
import pytest

from streams import codec
from streams.errors import CheckpointError
from streams.settings import Settings
from streams.state import ModelState
from tests.streams.feeding import feed, outcome, prediction


@dataclasses.dataclass
class Holder:
    values: np.ndarray
    label: str = ""
    numbers: list[float] = dataclasses.field(default_factory=list)


def _events(seed: int, n: int, start: int = 0) -> list:
    rng = random.Random(seed)
    out: list = []
    for i in range(start, start + n):
        x = rng.gauss(0 if i < 1500 else 1.5, 1)
        late = {"coupon": rng.choice("xy")} if i >= 900 else {}  # a new feature
        out.append(
            prediction(
                f"p{i}",
                1000.0 + i,
                value=int(x > 0),
                model_id="m",
                version="v1",
                score=rng.random(),
                features={"x": x, "c": rng.choice("ab"), "gap": None if rng.random() < 0.1 else 1.0, **late},
            )
        )
        if i >= 3:
            out.append(outcome(f"p{i - 3}", 1000.0 + i, label=int(rng.random() < 0.8), model_id="m"))
    return out


def test_a_restored_model_continues_like_an_uninterrupted_run() -> None:
    settings = Settings(model_probation_events=1, max_disorder_s=5.0)
    first, second = _events(1, 1600), _events(2, 1200, start=1600)
    straight = ModelState.create("m", settings)
    expected = [(a.alert_id, a.status) for a in feed(straight, first + second, settings, every=50)]

    interrupted = ModelState.create("m", settings)
    fired = [(a.alert_id, a.status) for a in feed(interrupted, first, settings, every=50)]
    monitor = interrupted.monitor  # every kind of detector is in the checkpoint
    assert monitor is not None and monitor.features["x"].out_of_range is not None
    assert monitor.features["coupon"].new is not None and monitor.classes is not None and monitor.score is not None
    restored = codec.decode(codec.encode(interrupted), ModelState)
    assert codec.encode(restored) == codec.encode(interrupted)
    fired += [(a.alert_id, a.status) for a in feed(restored, second, settings, every=50)]

    assert fired == expected and any(status == "firing" for _, status in fired)
    assert restored.summary(now=0.0) == straight.summary(now=0.0)
    restored.buffer.compact()  # as a checkpoint does: released events are not state
    straight.buffer.compact()
    assert codec.encode(restored) == codec.encode(straight)


def test_arrays_and_awkward_floats_round_trip_exactly() -> None:
    value = Holder(np.array([1.5, np.inf, -0.0, np.nan]), "x", [float("inf"), -0.0, 1e308, 5e-324])
    back = codec.decode(codec.encode(value), Holder)
    assert back.values.tobytes() == value.values.tobytes() and back.numbers == value.numbers


@pytest.mark.parametrize(
    "blob",
    [
        b"\x80\x04pickle?",
        b"",
        msgspec.msgpack.encode({"values": "not an array"}),
        msgspec.msgpack.encode({"values": msgspec.msgpack.Ext(1, b"|O8" + b"\x00" * 8)}),  # an object array
        msgspec.msgpack.encode({"values": msgspec.msgpack.Ext(2, msgspec.msgpack.encode(["os.system", {}]))}),
        msgspec.msgpack.encode({"values": msgspec.msgpack.Ext(9, b"")}),
    ],
)
def test_anything_but_the_declared_types_is_refused(blob: bytes) -> None:
    with pytest.raises(CheckpointError):
        codec.decode(blob, Holder)


def test_a_type_without_a_codec_is_refused_when_saved() -> None:
    with pytest.raises(CheckpointError):
        codec.encode(Holder(np.zeros((2, 2))))  # a 2-d array
    with pytest.raises(CheckpointError):
        codec.encode({"x": object()})
