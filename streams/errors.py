"""Every exception driftline raises, in one place.

DriftlineError
├── InvalidEvent        an input event breaks contract v1 (goes to the dead-letter topic)
├── ConfigurationError  settings or environment cannot work
│   └── EmbeddedServerError  an embedded broker or Redis is missing or did not start
└── CheckpointError     a checkpoint cannot be written or read back (corrupt, another format, a type not allowed)
"""

from __future__ import annotations


class DriftlineError(Exception):
    """Base of all driftline errors."""


class InvalidEvent(DriftlineError, ValueError):
    """An input event breaks contract v1. ``str(exc)`` is one line naming the field.

    ``model_id`` is set when the event's model is known, so the rejection can
    be counted in that model's ``invalid`` count.
    """

    def __init__(self, reason: str, model_id: str | None = None) -> None:
        super().__init__(reason)
        self.model_id = model_id


class ConfigurationError(DriftlineError):
    """The settings or the environment cannot work (a missing binary, a bad URL)."""


class CheckpointError(DriftlineError, ValueError):
    """A checkpoint cannot be encoded, or bytes from Redis do not decode as one.

    The owner then starts the partition empty and says so in its log.
    """


class EmbeddedServerError(ConfigurationError, RuntimeError):
    """An embedded server (Tansu, redis-server) or a worker is missing, or did not start."""
