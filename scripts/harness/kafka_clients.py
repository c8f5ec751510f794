"""Kafka clients for scripts and tests: producers of kafka-python, confluent-kafka and aiokafka, and reading a topic.

:func:`kafka_producer` gives a kafka-python or a confluent-kafka producer behind
one interface (:class:`Producer`) that counts what was sent, delivered and
failed. :func:`produce` sends a bulk through aiokafka and returns once every
message is acknowledged. :func:`read_topic` reads a topic from its beginning
without a consumer group (so no group join to wait for).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, Literal, Self

Client = Literal["kafka-python", "confluent"]
ErrorCallback = Callable[[BaseException], None]


class Producer:
    """A Kafka producer of one client behind one interface; counts what was sent, delivered and failed.

    Delivery reports arrive on the client's own thread, so the counts are kept under a lock.
    """

    client: Client

    def __init__(self) -> None:
        self.sent = 0
        self.delivered = 0
        self.failed = 0
        self.first_error = ""
        self._lock = threading.Lock()

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        partition: int | None = None,
        on_error: ErrorCallback | None = None,
    ) -> None:
        """Queue one message; if it is refused or not delivered, it counts in ``failed`` and ``on_error`` is called."""
        raise NotImplementedError

    def flush(self, timeout_s: float = 60.0) -> int:
        """Wait until every queued message is delivered or failed; return how many are still pending."""
        raise NotImplementedError

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush what is queued for up to ``timeout_s``, drop the rest, and release the client."""
        raise NotImplementedError

    @property
    def pending(self) -> int:
        """Messages sent and not yet delivered nor failed."""
        with self._lock:
            return self.sent - self.delivered - self.failed

    def _delivered(self) -> None:
        with self._lock:
            self.delivered += 1

    def _failed(self, error: BaseException, on_error: ErrorCallback | None) -> None:
        with self._lock:
            self.failed += 1
            self.first_error = self.first_error or f"{type(error).__name__}: {error}"
        if on_error is not None:
            on_error(error)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _KafkaPythonProducer(Producer):
    client: Client = "kafka-python"

    def __init__(self, bootstrap: str, config: dict[str, Any]) -> None:
        from kafka import KafkaProducer

        super().__init__()
        self._producer = KafkaProducer(bootstrap_servers=bootstrap, **config)

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        partition: int | None = None,
        on_error: ErrorCallback | None = None,
    ) -> None:
        from kafka.errors import KafkaError

        with self._lock:
            self.sent += 1
        try:
            future = self._producer.send(topic, value=value, key=key, partition=partition)
        except KafkaError as error:  # refused before it was queued (too large, no metadata in time)
            self._failed(error, on_error)
            return
        future.add_callback(lambda _: self._delivered())
        future.add_errback(lambda error: self._failed(error, on_error))

    def flush(self, timeout_s: float = 60.0) -> int:
        from kafka.errors import KafkaTimeoutError

        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaTimeoutError:
            pass  # what is left is pending
        return self.pending

    def close(self, timeout_s: float = 10.0) -> None:
        from kafka.errors import KafkaTimeoutError

        try:
            self._producer.close(timeout=timeout_s)
        except KafkaTimeoutError:
            # kafka-python raises from close() when its flush times out and leaves the producer open,
            # so its __del__ would raise again at exit: drop the undelivered messages.
            self._producer._sender.force_close()  # noqa: SLF001 - no public way to drop them
            self._producer._closed = True  # noqa: SLF001


class _ConfluentProducer(Producer):
    client: Client = "confluent"

    def __init__(self, bootstrap: str, config: dict[str, Any]) -> None:
        from confluent_kafka import Producer as Confluent

        super().__init__()
        self._producer = Confluent({"bootstrap.servers": bootstrap, **config})

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        partition: int | None = None,
        on_error: ErrorCallback | None = None,
    ) -> None:
        from confluent_kafka import KafkaException

        def report(error: Any, _message: Any) -> None:
            if error is None:
                self._delivered()
            else:
                self._failed(KafkaException(error), on_error)

        options: dict[str, Any] = {"value": value, "key": key, "on_delivery": report}
        if partition is not None:
            options["partition"] = partition
        with self._lock:
            self.sent += 1
        while True:
            try:
                self._producer.produce(topic, **options)
                break
            except BufferError:  # its queue is full: let it deliver some
                self._producer.poll(0.1)
            except KafkaException as error:  # refused before it was queued (an unknown partition, too large)
                self._failed(error, on_error)
                return
        self._producer.poll(0)

    def flush(self, timeout_s: float = 60.0) -> int:
        self._producer.flush(timeout_s)
        return self.pending

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.flush(timeout_s)
        del self._producer  # librdkafka closes its connections when the client is freed


def kafka_producer(bootstrap: str, client: Client = "kafka-python", *, linger_ms: int = 5, **config: Any) -> Producer:
    """A producer of ``client`` for many small messages; ``config`` goes to the client as it names its options.

    kafka-python options are keywords (``max_request_size=2**21``); confluent-kafka's have
    dots (``**{"queue.buffering.max.messages": 10**6}``).
    """
    if client == "confluent":
        return _ConfluentProducer(bootstrap, {"linger.ms": linger_ms, "message.max.bytes": 8 << 20, **config})
    options = {"linger_ms": linger_ms, "acks": 1, "batch_size": 256 << 10, "max_request_size": 8 << 20, **config}
    return _KafkaPythonProducer(bootstrap, options)


@asynccontextmanager
async def aio_producer(bootstrap: str, **config: Any) -> AsyncIterator[Any]:
    """A started aiokafka producer (``config`` in aiokafka's names), stopped on the way out."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **config)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def produce(bootstrap: str, messages: Iterable[tuple[str, bytes | None, bytes]], linger_ms: int = 20) -> int:
    """Send (topic, key, value) messages with large batches; return once every one is acknowledged.

    Tansu's end offsets can lag while batches are open, so the acknowledgements, not end offsets, say it is all there.
    """
    async with aio_producer(
        bootstrap, linger_ms=linger_ms, max_batch_size=1 << 20, max_request_size=16 << 20, acks=1
    ) as producer:
        futures = [await producer.send(topic, value, key=key) for topic, key, value in messages]
        await producer.flush()
        await asyncio.gather(*futures)
        return len(futures)


def read_topic(
    bootstrap: str,
    topic: str,
    *,
    timeout_s: float,
    count: int | None = None,
    idle_s: float | None = None,
    **config: Any,
) -> list[Any]:
    """Records of ``topic`` from its beginning (kafka-python ``ConsumerRecord``s), in no consumer group.

    Reads until ``count`` records are in, or no record came for ``idle_s``, or
    ``timeout_s`` passed: whichever comes first. The caller judges what it got.
    """
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **config,
    )
    found: list[Any] = []
    started = last = time.monotonic()
    try:
        while (now := time.monotonic()) - started < timeout_s and (count is None or len(found) < count):
            if idle_s is not None and now - last > idle_s:
                break
            for records in consumer.poll(timeout_ms=200).values():
                found += records
                last = time.monotonic()
    finally:
        consumer.close()
    return found
