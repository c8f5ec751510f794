"""Kafka security settings become the right client configuration."""

from __future__ import annotations

import faust
import pytest

from streams.errors import ConfigurationError
from streams.security import faust_credentials, kafka_python_config
from streams.settings import Settings


def test_plaintext_is_the_default() -> None:
    settings = Settings()
    assert faust_credentials(settings) is None
    assert kafka_python_config(settings) == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}


def test_sasl_scram_over_plaintext() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="monitor",
        kafka_sasl_password="s3cret",
    )
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.username == "monitor" and credentials.password == "s3cret"
    assert str(credentials.mechanism.value) == "SCRAM-SHA-512"
    config = kafka_python_config(settings)
    assert config["sasl_mechanism"] == "SCRAM-SHA-512" and config["sasl_plain_password"] == "s3cret"
    assert "s3cret" not in repr(settings)  # the password never shows in logs


def test_tls_builds_a_verifying_context() -> None:
    settings = Settings(kafka_security_protocol="SSL")
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials.context.check_hostname
    assert kafka_python_config(settings)["security_protocol"] == "SSL"


def test_sasl_without_a_password_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="DRIFTLINE_KAFKA_SASL_PASSWORD"):
        faust_credentials(Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="monitor"))


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLINE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("DRIFTLINE_KAFKA_SASL_PASSWORD", "from-env")
    monkeypatch.setenv("DRIFTLINE_TASK_OVERRIDES", '{"m1": "regression"}')
    settings = Settings()
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_password is not None and settings.kafka_sasl_password.get_secret_value() == "from-env"
    assert settings.task_overrides == {"m1": "regression"}
