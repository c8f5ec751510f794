"""``driftline reference set``: a model's training sample, profiled once and stored in Redis.

Workers read the profiles with the model configurations and test every window
of live values against them, instead of against the model's first events.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from detectors.reference import Profile, build_profile, profile_from_dict
from streams.errors import ConfigurationError
from streams.keys import RedisKeys
from streams.redis_client import SyncClient


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Feature rows from a CSV file (a header of feature names) or JSON lines.

    A JSON line is either an object of features or a whole prediction event,
    whose ``features`` are used. In CSV, an empty cell is missing and a cell
    that reads as a number is a number.
    """
    try:
        with path.open(newline="") as handle:
            if path.suffix == ".csv":
                for row in csv.DictReader(handle):
                    yield {name: _cell(value) for name, value in row.items() if name}
            else:
                for line in handle:
                    if line.strip():
                        doc = json.loads(line)
                        yield doc["features"] if isinstance(doc.get("features"), dict) else doc
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from None


def _cell(value: str | None) -> Any:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        return value


def build_reference(rows: Iterator[dict[str, Any]]) -> dict[str, Profile]:
    """One bounded profile per feature, whatever the sample's size."""
    columns: dict[str, list[Any]] = {}
    count = 0
    for row in rows:
        for name in columns.keys() - row.keys():
            columns[name].append(None)
        for name, value in row.items():
            columns.setdefault(name, [None] * count).append(value)
        count += 1
    if not count:
        raise ConfigurationError("the reference sample is empty")
    return {name: build_profile(values) for name, values in columns.items() if any(v is not None for v in values)}


class ReferenceStore:
    """Reference profiles of every model in one Redis hash: model id → JSON of feature profiles."""

    def __init__(self, keys: RedisKeys) -> None:
        self.hash = f"{keys.prefix}references"

    def set(self, client: SyncClient, model_id: str, profiles: dict[str, Profile]) -> None:
        client.hset(
            self.hash,
            model_id,
            orjson.dumps({name: p.to_dict() for name, p in profiles.items()}, option=orjson.OPT_SERIALIZE_NUMPY),
        )

    @staticmethod
    def decode(raw: bytes) -> dict[str, Profile]:
        return {name: profile_from_dict(doc) for name, doc in orjson.loads(raw).items()}
