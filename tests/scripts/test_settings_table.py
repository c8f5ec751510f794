"""The README's settings table is the settings' own: every setting, its default and its description."""

from __future__ import annotations

from scripts.settings_table import README, current, section
from streams.settings import Settings


def test_the_readme_table_is_generated_from_the_settings() -> None:
    assert current(README.read_text()) == section(), "run: .venv/bin/python -m scripts.settings_table --write"


def test_every_setting_describes_itself() -> None:
    assert [name for name, field in Settings.model_fields.items() if not field.description] == []
