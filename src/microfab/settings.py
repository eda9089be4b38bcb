"""microfab's settings from the environment: every ``MICROFAB_*`` variable, in one model.

:class:`Settings` is the only place that reads the environment; every module that needs a
setting calls :func:`load_settings` (a fresh read each time, so a changed environment counts).
An empty variable counts as unset. Secrets are :class:`~pydantic.SecretStr`: they print as
``**********`` and :func:`shown_settings` (``microfab config show``) masks them, and the password
of a URL, too. The table in ``docs/configuration.md`` is :func:`settings_table`, and a test fails
when the two disagree — a new setting is documented or the suite is red.

A command-line option (``--db``, ``--broker``, ``--password`` …) wins over its variable.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from microfab.errors import InputError

ENV_PREFIX = "MICROFAB_"


class SettingsError(InputError):
    """A ``MICROFAB_*`` variable holds a value of the wrong kind."""

    key = "bad_setting"


class Settings(BaseSettings):
    """The environment microfab reads; each field is the variable ``MICROFAB_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True, extra="ignore"
    )

    db: str | None = Field(
        default=None,
        description="Database URL when --db is not given: sqlite:///FILE.db or "
        "postgresql://USER@HOST:PORT/DB (default sqlite:///microfab.db in the working folder).",
    )
    broker: str | None = Field(
        default=None,
        description="MQTT broker URL when --broker is not given: mqtt://[USER@]HOST:PORT or "
        "mqtts://… (default mqtt://127.0.0.1:1883).",
    )
    mqtt_password: SecretStr | None = Field(
        default=None,
        description="MQTT password when --password is not given (ingest, sim --broker, broker, "
        "connect sparkplug, alert delivery); wins over a password in the broker URL.",
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server for alert e-mails; wins over the rules file."
    )
    smtp_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="SMTP port for alert e-mails; wins over the rules file.",
    )
    smtp_user: str | None = Field(
        default=None, description="SMTP user for alert e-mails; wins over the rules file."
    )
    smtp_password: SecretStr | None = Field(
        default=None,
        description="SMTP password for alert e-mails (only from the environment, never a file).",
    )
    max_query_days: int = Field(
        default=366,
        ge=1,
        le=36600,
        description="The longest time window (days) one API request or page may ask for "
        "(OEE, downtime, plan chart …); longer ones answer 422 naming the limit. The CLI "
        "takes longer ones with --max-days.",
    )
    trusted_proxies: str | None = Field(
        default=None,
        description="Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto headers are "
        "believed: addresses or networks, comma-separated (127.0.0.1,10.0.0.0/8). Default none: "
        "the connecting address is the client, whatever the headers say (login throttling keys "
        "on it).",
    )
    chromium: str | None = Field(
        default=None,
        description="Chromium (or Chrome) program that prints PDF reports (default: chromium, "
        "chromium-browser or google-chrome on the PATH).",
    )
    # plant assistant (assist/, docs/assistant.md)
    assist_llm_url: str | None = Field(
        default=None,
        description="OpenAI-compatible endpoint (a local llama.cpp or Ollama server, e.g. "
        "http://127.0.0.1:11434/v1) the assistant may ask to choose a tool when its rules "
        "decline a question; numbers always come from the tools. Default none: offline rules only.",
    )
    assist_llm_model: str = Field(
        default="local", description="Model name sent to the assistant's LLM endpoint."
    )
    assist_llm_key: SecretStr | None = Field(
        default=None, description="Bearer key for the assistant's LLM endpoint, if it needs one."
    )
    funding_application: str | None = Field(
        default=None,
        description="Funding application file (YAML, docs/funding.md) the assistant assesses "
        "when asked about eligibility; `microfab ask --application` wins over it.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: str | None) -> str | None:
        if value is None:
            return None
        for item in value.split(","):
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"{item.strip()!r} is not an IP address or network; expected e.g. "
                    "127.0.0.1,10.0.0.0/8"
                ) from None
        return value

    def trusted_proxy_list(self) -> list[str]:
        """:attr:`trusted_proxies` as a list (empty: trust no proxy)."""
        if self.trusted_proxies is None:
            return []
        return [item.strip() for item in self.trusted_proxies.split(",") if item.strip()]


def env_name(field: str) -> str:
    """The environment variable of a :class:`Settings` field: ``smtp_port`` → ``MICROFAB_SMTP_PORT``."""
    return ENV_PREFIX + field.upper()


def load_settings() -> Settings:
    """The settings as the environment has them now; SettingsError names a bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            problems.append(f"{env_name(field)}: {error['msg']} (got '{error.get('input')}')")
        raise SettingsError("; ".join(problems)) from None


def secret(value: SecretStr | None) -> str | None:
    """The plain text of a secret setting, or None when unset."""
    return value.get_secret_value() if value is not None else None


def _mask_url_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def shown_settings(settings: Settings) -> list[tuple[str, str]]:
    """Every variable and its value as safe to show: secrets as ``***``, URL passwords masked,
    unset ones as ``(unset)``."""
    rows = []
    for field in Settings.model_fields:
        value = getattr(settings, field)
        if value is None:
            text = "(unset)"
        elif isinstance(value, SecretStr):
            text = "***"
        else:
            text = _mask_url_password(str(value))
        rows.append((env_name(field), text))
    return rows


def _type_name(field: str) -> str:
    annotation = Settings.model_fields[field].annotation
    if annotation == SecretStr | None:
        return "secret"
    if annotation in (int | None, int):
        return "integer"
    return "text"


def settings_table() -> str:
    """The Markdown table of every setting: variable, kind, what it sets (docs/configuration.md)."""
    lines = ["| variable | kind | what it sets |", "|---|---|---|"]
    for field, info in Settings.model_fields.items():
        lines.append(f"| `{env_name(field)}` | {_type_name(field)} | {info.description} |")
    return "\n".join(lines) + "\n"
