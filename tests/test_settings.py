"""One settings model for every MICROFAB_* variable: read from the environment, secrets masked,
and documented — the table in docs/configuration.md is the model's, and a variable that the
source names but the model lacks fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from microfab.cli import app
from microfab.connect.mqtt_client import parse_broker_url
from microfab.settings import (
    Settings,
    SettingsError,
    env_name,
    load_settings,
    settings_table,
    shown_settings,
)
from microfab.store.url import DEFAULT_DB_URL, resolve_url

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "configuration.md"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for field in Settings.model_fields:
        monkeypatch.delenv(env_name(field), raising=False)


def test_the_docs_table_is_the_model() -> None:
    text = DOC.read_text(encoding="utf-8")
    found = re.search(
        r"<!-- settings table:[^>]*-->\n(.*?)<!-- end of settings table -->", text, re.S
    )
    assert found, "docs/configuration.md has lost its settings table markers"
    assert found.group(1) == settings_table(), (
        "docs/configuration.md differs from microfab.settings: paste settings_table() between "
        "the markers"
    )


def test_every_variable_the_source_names_is_a_documented_setting() -> None:
    named: set[str] = set()
    for path in (ROOT / "src" / "microfab").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        named |= set(re.findall(r"MICROFAB_[A-Z][A-Z_]*(?![A-Z_*])", text))  # not MICROFAB_SMTP_*
    fields = {env_name(field) for field in Settings.model_fields}
    assert named - fields == set(), "variables read outside the settings model"
    for field, info in Settings.model_fields.items():
        assert info.description, f"{env_name(field)} has no description"


def test_the_environment_is_read_each_time_and_empty_counts_as_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert resolve_url(None) == DEFAULT_DB_URL
    monkeypatch.setenv("MICROFAB_DB", "sqlite:///elsewhere.db")
    assert resolve_url(None) == "sqlite:///elsewhere.db"
    assert resolve_url("sqlite:///given.db") == "sqlite:///given.db"  # the option wins
    monkeypatch.setenv("MICROFAB_DB", "")
    assert resolve_url(None) == DEFAULT_DB_URL
    monkeypatch.setenv("MICROFAB_BROKER", "mqtt://plant@10.0.0.5:1884")
    monkeypatch.setenv("MICROFAB_MQTT_PASSWORD", "from-the-env")
    broker = parse_broker_url(None)
    assert (broker.host, broker.port, broker.username) == ("10.0.0.5", 1884, "plant")
    assert broker.password == "from-the-env"
    assert parse_broker_url(None, password="given").password == "given"


def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROFAB_SMTP_PORT", "twenty-five")
    with pytest.raises(SettingsError, match=r"^MICROFAB_SMTP_PORT: .*'twenty-five'"):
        load_settings()
    monkeypatch.setenv("MICROFAB_SMTP_PORT", "70000")
    with pytest.raises(SettingsError, match=r"^MICROFAB_SMTP_PORT: .*65535"):
        load_settings()
    monkeypatch.setenv("MICROFAB_SMTP_PORT", "2525")
    assert load_settings().smtp_port == 2525


def test_secrets_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROFAB_DB", "postgresql://plant:db-secret@127.0.0.1:5432/microfab")
    monkeypatch.setenv("MICROFAB_MQTT_PASSWORD", "mqtt-secret")
    monkeypatch.setenv("MICROFAB_SMTP_PASSWORD", "smtp-secret")
    monkeypatch.setenv("MICROFAB_SMTP_HOST", "mail.example.hk")
    settings = load_settings()
    assert "mqtt-secret" not in repr(settings) and "smtp-secret" not in str(settings)
    shown = dict(shown_settings(settings))
    assert shown["MICROFAB_DB"] == "postgresql://plant:***@127.0.0.1:5432/microfab"
    assert shown["MICROFAB_MQTT_PASSWORD"] == shown["MICROFAB_SMTP_PASSWORD"] == "***"
    assert shown["MICROFAB_SMTP_HOST"] == "mail.example.hk"
    assert shown["MICROFAB_CHROMIUM"] == "(unset)"

    result = CliRunner().invoke(app, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == shown
    table = CliRunner().invoke(app, ["config", "show"], env={"COLUMNS": "120"})
    assert table.exit_code == 0
    assert "secret" not in table.stdout
    assert "MICROFAB_SMTP_HOST" in table.stdout and "mail.example.hk" in table.stdout
