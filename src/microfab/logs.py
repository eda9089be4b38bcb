"""Logging set-up of the command line: the one module that attaches handlers and sets levels.

:func:`configure_logging` runs once, from :func:`microfab.cli.main`. Library modules only take
their own logger (``logging.getLogger(__name__)``) and never set a level or a handler; what a
command shows of the log is decided here:

- :func:`configure_connector_logging` — ``microfab connect …``: the connectors' warnings (and
  with ``--verbose`` their link changes and the protocol libraries' warnings) on stderr, each
  after the local time;
- :func:`mqtt_warnings` — ``microfab demo``/``sim --broker``: the MQTT adapters' warnings on
  stderr through the command's console, each only once in a row;
- :func:`quiet_embedded_broker` — while the demo runs its own broker, amqtt's errors only.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from typing import TextIO

_HANDLER_NAME = "microfab-connectors"
_LIBRARY_LOGGERS = ("asyncua", "pymodbus")
"""Libraries whose own reports of a failed or lost connection repeat what the status line says."""


def configure_logging() -> None:
    """The command line's defaults, set once before any command runs: microfab's loggers keep
    Python's default (WARNING and above on stderr until a command attaches its own handler), and
    pymodbus — which logs every failed connect attempt — shows only its critical messages unless
    a level was set for it already."""
    library = logging.getLogger("pymodbus")
    if library.level == logging.NOTSET:
        library.setLevel(logging.CRITICAL)


def configure_connector_logging(verbose: bool = False, stream: TextIO | None = None) -> None:
    """Show the connectors' log lines on ``stream`` (default stderr), each after the local time.

    Not verbose: WARNING and above of ``microfab.connect`` (values skipped, malformed payloads,
    a failing store), and nothing from the protocol libraries below ERROR (pymodbus's
    ``Failed to connect … Repeating....`` and asyncua's connection warnings say again what the
    status line says). Verbose: INFO of ``microfab.connect`` too (every link change, birth,
    rebirth request) and the libraries' warnings, named. Calling it again replaces the setup.
    """
    out = stream or sys.stderr
    own = logging.getLogger("microfab.connect")
    _replace_handler(own, out, "%(asctime)s %(message)s")
    own.setLevel(logging.INFO if verbose else logging.WARNING)
    own.propagate = False
    for name in _LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        _replace_handler(library, out, "%(asctime)s %(name)s: %(message)s")
        library.setLevel(logging.WARNING if verbose else logging.ERROR)
        library.propagate = False
    # pymodbus logs "Failed to connect" at WARNING but timeouts of a lost link at ERROR
    logging.getLogger("pymodbus").setLevel(logging.WARNING if verbose else logging.CRITICAL)


def _replace_handler(logger: logging.Logger, stream: TextIO, fmt: str) -> None:
    for handler in list(logger.handlers):
        if handler.get_name() == _HANDLER_NAME:
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter(fmt, datefmt="%H:%M:%S"))
    logger.addHandler(handler)


class MqttWarnings(logging.Handler):
    """Shows the MQTT adapters' warnings through ``show`` while a command runs, each only once in
    a row: a broker that refuses the login is tried again every few seconds, and one line says
    so. ``muted`` silences it for a while (a refused first connection is raised as one error)."""

    def __init__(self, show: Callable[[str], None]) -> None:
        super().__init__(logging.WARNING)
        self.show = show
        self.muted = False
        self._last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if self.muted or text == self._last:
            return
        self._last = text
        self.show(f"warning: {text}")


@contextlib.contextmanager
def mqtt_warnings(show: Callable[[str], None]) -> Iterator[MqttWarnings]:
    """Attach a :class:`MqttWarnings` to ``microfab.connect`` for the ``with`` block."""
    handler = MqttWarnings(show)
    logger = logging.getLogger("microfab.connect")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@contextlib.contextmanager
def quiet_embedded_broker() -> Iterator[None]:
    """amqtt's errors only, for the ``with`` block: it warns about acknowledgements that cross a
    worker's DISCONNECT at the end of a run, harmless in the demo and not for its live view."""
    amqtt_log = logging.getLogger("amqtt")
    level = amqtt_log.level
    amqtt_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        amqtt_log.setLevel(level)
