"""A safe, fast codec for checkpoints: typed MessagePack (msgspec). It never unpickles.

State classes are dataclasses with concrete annotations. Decoding rebuilds
exactly the declared types, field by field, then runs each dataclass's
``__post_init__`` (which rebuilds derived caches, never state). Two
extensions cover what MessagePack lacks:

- numpy arrays (1-D, of an allowed dtype) as their raw bytes;
- river's drift detectors and running statistics, on an allowlist, as their
  attributes (river keeps their state in plain attributes).

Nothing from Redis can name another class or run code.

>>> import numpy as np
>>> from detectors.base import RingSum
>>> ring = RingSum(3)
>>> _ = ring.push_many(np.array([1.0, 2.0]))
>>> back = decode(encode(ring), RingSum)
>>> back.total, back.values.tolist(), encode(back) == encode(ring)
(3.0, [1.0, 2.0, 0.0], True)
"""

from __future__ import annotations

import functools
from collections.abc import Hashable
from typing import Any, TypeVar, cast

import msgspec
import numpy as np
from river import stats
from river.drift.binary import DDM, EDDM, HDDMA

from streams.errors import CheckpointError

__all__ = ["decode", "encode"]

T = TypeVar("T")
_ARRAY, _RIVER = 1, 2
_DTYPES = {"<f8": np.float64, "<f4": np.float32, "<i8": np.int64, "<i4": np.int32, "|i1": np.int8, "|b1": np.bool_}
_RIVER_CLASSES: dict[str, type[object]] = {cls.__qualname__: cls for cls in (DDM, EDDM, HDDMA, stats.Mean, stats.Var)}


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        code = obj.dtype.str
        if code not in _DTYPES or obj.ndim != 1:
            raise CheckpointError(f"cannot checkpoint a {obj.ndim}-d array of {obj.dtype}")
        return msgspec.msgpack.Ext(_ARRAY, code.encode() + np.ascontiguousarray(obj).tobytes())
    if type(obj).__qualname__ in _RIVER_CLASSES and type(obj) is _RIVER_CLASSES[type(obj).__qualname__]:
        return msgspec.msgpack.Ext(_RIVER, _ENCODER.encode([type(obj).__qualname__, vars(obj)]))
    if isinstance(obj, np.generic):
        return obj.item()
    raise CheckpointError(f"cannot checkpoint a {type(obj).__qualname__}")


def _ext_hook(code: int, data: memoryview) -> Any:
    if code == _ARRAY:
        dtype = _DTYPES.get(bytes(data[:3]).decode("ascii", "replace"))
        if dtype is None:
            raise CheckpointError("checkpoint holds an array of a dtype not allowed")
        return np.frombuffer(data[3:], dtype=dtype).copy()
    if code == _RIVER:
        name, attributes = msgspec.msgpack.decode(data, ext_hook=_ext_hook)
        cls = _RIVER_CLASSES.get(name)
        if cls is None or not isinstance(attributes, dict):
            raise CheckpointError(f"class {name!r} is not allowed in a checkpoint")
        obj = cls.__new__(cls)
        obj.__dict__.update(attributes)
        return obj
    raise CheckpointError(f"unknown extension {code} in a checkpoint")


def _dec_hook(tp: type, obj: Any) -> Any:
    if isinstance(tp, type) and isinstance(obj, tp):
        return obj
    raise CheckpointError(f"checkpoint holds a {type(obj).__qualname__} where a {getattr(tp, '__name__', tp)} belongs")


_ENCODER = msgspec.msgpack.Encoder(enc_hook=_enc_hook)


@functools.lru_cache(maxsize=64)
def _decoder(tp: Any) -> msgspec.msgpack.Decoder[Any]:
    return msgspec.msgpack.Decoder(tp, ext_hook=_ext_hook, dec_hook=_dec_hook)


def encode(obj: Any) -> bytes:
    """Encode a state object (dataclasses, numbers, strings, containers, arrays, river objects)."""
    try:
        return _ENCODER.encode(obj)
    except (TypeError, ValueError, OverflowError) as exc:
        raise CheckpointError(f"cannot checkpoint: {exc}") from None


def decode(blob: bytes, tp: type[T]) -> T:
    """Decode bytes made by :func:`encode` into ``tp``; :class:`CheckpointError` if they do not fit it."""
    try:
        decoder: msgspec.msgpack.Decoder[T] = _decoder(cast(Hashable, tp))  # (mypy: type[T] is not Hashable)
        return decoder.decode(blob)
    except (msgspec.DecodeError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint does not decode as {getattr(tp, '__name__', tp)}: {exc}") from None
