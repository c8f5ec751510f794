"""A model's join stores in its checkpoint: a hash of their own, written as they change.

The predictions waiting for labels (hours of them when labels come late), the
outcomes waiting for predictions and the ids recently joined are most of a
model's state, and most of it does not change between two saves. So they are
saved apart from the model's blob, in a hash per model:

- a save writes each entry added since the last save (with its order number)
  and marks each entry that went (an empty value);
- once the entries written one by one would outnumber the entries the stores
  hold (or a save changes more than they hold, a busy model), the save writes
  the stores whole instead: the hash is cleared, and one field ``*`` holds
  every entry, in order.

So a save costs what changed, and the hash holds at most about twice the
stores. Entries are only ever added at the end of a store, so those added since
the last save are its newest: :func:`restore` puts every store back in order.

>>> from streams.events import PredictionEvent
>>> join = LabelJoin()
>>> _ = join.add_prediction(PredictionEvent("m", "p1", {}, 1, 0.9, "", 9.0, None))
>>> changes = store_changes(join)
>>> changes.full, [f.decode() for f in changes.fields[::2]]
(True, ['*'])
>>> saved(join, changes)
>>> _ = join.add_prediction(PredictionEvent("m", "p2", {}, 0, 0.2, "", 10.0, None))
>>> store_changes(join).full, [f.decode() for f in store_changes(join).fields[::2]]
(False, ['pp2'])
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from streams import codec
from streams.join import Early, LabelJoin, Pending

__all__ = ["StoreChanges", "restore", "saved", "store_changes", "without_stores"]

WHOLE = b"*"  # the field of the stores saved whole
_TAGS = (b"p", b"e", b"r")  # an entry's field: its store's tag (pending, early, recently joined), then its id
_ENTRY: tuple[Any, ...] = (tuple[int, Pending], tuple[int, Early], tuple[int, None])
_WHOLE: Any = tuple[int, list[str], list[Pending], list[str], list[Early], list[str]]


@dataclass(frozen=True, slots=True)
class StoreChanges:
    """One save of a model's join stores: fields and values, alternating (an empty value: the entry went)."""

    full: bool  # the hash is cleared first: the stores saved whole
    fields: list[bytes]
    orders: int  # order numbers the entries took


def store_changes(join: LabelJoin) -> StoreChanges | None:
    """What a save writes of the join's stores (None: nothing changed). Nothing changes until :func:`saved`."""
    changes = sum(map(len, join.touched))
    if not changes:
        return None
    stores: tuple[dict[str, Any], ...] = join.stores()
    if join.fields_written + changes >= sum(map(len, stores)):
        return _whole(join, stores)
    fields: list[bytes] = []
    order = join.saved_order
    for which, tag in enumerate(_TAGS):
        store, touched = stores[which], join.touched[which]
        if not touched:
            continue
        present = sum(key in store for key in touched)
        for key in touched:
            if key not in store:
                fields += [tag + key.encode(), b""]
        for key in list(itertools.islice(reversed(store), present))[::-1]:
            fields += [tag + key.encode(), codec.encode((order, store[key]))]
            order += 1
    return StoreChanges(False, fields, order - join.saved_order)


def _whole(join: LabelJoin, stores: tuple[dict[str, Any], ...]) -> StoreChanges:
    pending, early, recent = stores
    body = (join.saved_order, list(pending), list(pending.values()), list(early), list(early.values()), list(recent))
    return StoreChanges(True, [WHOLE, codec.encode(body)], max(map(len, stores)))


@contextmanager
def without_stores(join: LabelJoin, changes: StoreChanges | None) -> Iterator[None]:
    """The join as the model's blob holds it: its stores empty (they are saved apart), its next order number
    as of this save once it lands. Everything is back as it was on leaving."""
    stores, orders = join.stores(), 0 if changes is None else changes.orders
    join.pending, join.early, join.recently_joined = {}, {}, {}
    join.saved_order += orders
    try:
        yield
    finally:
        join.pending, join.early, join.recently_joined = stores
        join.saved_order -= orders


def saved(join: LabelJoin, changes: StoreChanges) -> None:
    """The changes :func:`store_changes` gave are saved."""
    join.saved_order += changes.orders
    join.fields_written = 0 if changes.full else join.fields_written + len(changes.fields) // 2
    for touched in join.touched:
        touched.clear()


def restore(join: LabelJoin, fields: dict[bytes, bytes]) -> None:
    """Put back the stores a checkpoint's hash holds, each in its order."""
    found: tuple[dict[str, tuple[int, Any]], ...] = ({}, {}, {})
    whole = fields.get(WHOLE)
    if whole is not None:
        start, pending_ids, pending, early_ids, early, recent = codec.decode(whole, _WHOLE)
        columns = ((pending_ids, pending), (early_ids, early), (recent, [None] * len(recent)))
        for which, (keys, values) in enumerate(columns):
            found[which].update(
                (key, (start + i, value)) for i, (key, value) in enumerate(zip(keys, values, strict=True))
            )
    for name, blob in fields.items():
        if name == WHOLE:
            continue
        which, key = _TAGS.index(name[:1]), name[1:].decode()
        if blob:
            found[which][key] = codec.decode(blob, _ENTRY[which])
        else:
            found[which].pop(key, None)
    ordered = [sorted(entries.items(), key=lambda e: e[1][0]) for entries in found]
    join.pending = {key: value for key, (_, value) in ordered[0]}
    join.early = {key: value for key, (_, value) in ordered[1]}
    join.recently_joined = dict.fromkeys(key for key, _ in ordered[2])
    join.fields_written = len(fields) - (whole is not None)
    for touched in join.touched:
        touched.clear()
