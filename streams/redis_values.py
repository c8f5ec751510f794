"""Values read back from Redis, decoded the same way by the API, the report and the history reader.

>>> as_text(b"churn"), typed_hash({b"predictions": b"12", b"status": b"ok"})
('churn', {'predictions': 12, 'status': 'ok'})
>>> json_values({b"x": b'{"score": 0.5}'}), alert_of({b"alert": b'{"alert_id": "a1"}'})
({'x': {'score': 0.5}}, {'alert_id': 'a1'})
"""

from __future__ import annotations

from typing import Any

import orjson

from streams.status import typed

__all__ = ["alert_of", "as_text", "json_values", "typed_hash"]


def as_text(value: bytes | str) -> str:
    """A Redis reply as text (clients answer bytes, or str when they decode)."""
    return value.decode() if isinstance(value, bytes) else value


def typed_hash(raw: dict[Any, Any]) -> dict[str, Any]:
    """A hash of counts and words, numbers as numbers."""
    return {as_text(k): typed(as_text(v)) for k, v in raw.items()}


def alert_of(fields: dict[Any, Any]) -> dict[str, Any]:
    """The alert of an alerts-stream entry (its one field, ``alert``)."""
    raw: bytes | str = fields.get(b"alert") or fields["alert"]
    found: dict[str, Any] = orjson.loads(raw)
    return found


def json_values(raw: dict[Any, Any]) -> dict[str, Any]:
    """A hash whose values are JSON documents, decoded."""
    return {as_text(k): orjson.loads(v) for k, v in raw.items()}
