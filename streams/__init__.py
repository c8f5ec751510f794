"""driftline's stream side: the contract, the worker and its state in Redis.

The public surface is small; everything else is an implementation detail.
"""

from streams.errors import CheckpointError, ConfigurationError, DriftlineError, EmbeddedServerError, InvalidEvent
from streams.events import OutcomeEvent, PredictionEvent, decode_message
from streams.keys import RedisKeys
from streams.routing import partition_for
from streams.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigurationError",
    "DriftlineError",
    "EmbeddedServerError",
    "InvalidEvent",
    "OutcomeEvent",
    "PredictionEvent",
    "RedisKeys",
    "Settings",
    "__version__",
    "decode_message",
    "partition_for",
]
