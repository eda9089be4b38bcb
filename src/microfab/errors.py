"""The one exception tree of microfab; library errors are translated to it where they enter.

::

    MicrofabError                  exit 1 unless stated
    ├── InputError                 exit 2: something the user gave us is wrong
    │   ├── LocatedFileError       a file does not validate: one ``file:line field: message``
    │   │   ├── FactoryFileError       … per fault of a factory file
    │   │   ├── FundingFileError       … of a funding application, company profile or ledger
    │   │   └── VisionCardError        … of a vision model card
    │   ├── EventValidationError   an event does not match the event schema
    │   ├── ImportFileError        a line of an events import file is corrupt (file:line: message)
    │   ├── UnknownScenarioError   no simulator scenario of that name
    │   ├── NotFoundError          no machine, line, order … with that id
    │   ├── TimeRangeError         a time or time range that is malformed or inverted
    │   ├── LimitError             a window or a plan larger than allowed (the API answers 422)
    │   └── VisionModelError       an inspection model is not ONNX or does not match its card
    ├── StoreError                 the event store cannot do what was asked
    │   ├── StoreUnavailableError  the database cannot be reached (URL shown with password masked)
    │   ├── StoreSchemaError       the database schema is not the one this version expects
    │   └── NoFactoryError         no factory model has been applied to this store yet
    ├── PdfError                   a printable report could not be printed to PDF
    │   ├── PdfPrinterMissing      no chromium to print with (the API answers 501)
    │   └── PdfPrintFailed         chromium ran but printed no PDF
    └── BusyError                  the same work is already running; try again when it ends
        └── ReplanRunningError     a re-plan is already running

Each error has a stable ``key`` for scripts and a message that says what to do. The CLI prints the
message and exits with ``exit_code``; it never shows a traceback for these.
"""

from __future__ import annotations


class MicrofabError(Exception):
    """Base of every error microfab raises on purpose."""

    key = "microfab_error"
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(MicrofabError):
    """Something the user supplied (a file, a flag, a message) is not valid."""

    key = "invalid_input"
    exit_code = 2


class LocatedFileError(InputError):
    """A file failed validation; ``problems`` holds one located line per fault."""

    key = "invalid_file"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class FactoryFileError(LocatedFileError):
    """A factory file failed validation."""

    key = "invalid_factory"


class FundingFileError(LocatedFileError):
    """A funding file (application, company profile, ledger) is not valid."""

    key = "invalid_funding_file"


class EventValidationError(InputError):
    """An event does not match the microfab event schema."""

    key = "invalid_event"


class ImportFileError(InputError):
    """A line of an events import file could not be read."""

    key = "invalid_import_line"


class UnknownScenarioError(InputError):
    """The simulator has no scenario of the requested name."""

    key = "unknown_scenario"


class NotFoundError(InputError):
    """An id (machine, line, order, product …) that the factory or the store does not know."""

    key = "not_found"


class TimeRangeError(InputError):
    """A time that does not parse, or a range whose end is not after its start."""

    key = "invalid_time_range"


class LimitError(InputError):
    """A request for more work than microfab's limits allow (docs/security.md, *Limits*): a query
    window longer than ``MICROFAB_MAX_QUERY_DAYS``, a plan horizon or model too large."""

    key = "over_limit"


class StoreError(MicrofabError):
    """The event store failed."""

    key = "store_error"


class StoreUnavailableError(StoreError):
    """The database named by a URL cannot be reached."""

    key = "store_unavailable"


class StoreSchemaError(StoreError):
    """The database schema does not match this version of microfab."""

    key = "store_schema"


class NoFactoryError(StoreError):
    """A command needs the factory model, but none has been applied to the store."""

    key = "no_factory"


class PdfError(MicrofabError):
    """A printable report could not be printed to PDF."""

    key = "pdf_error"


class PdfPrinterMissing(PdfError):
    """No chromium to print PDFs with (neither ``MICROFAB_CHROMIUM`` nor one on the PATH)."""

    key = "pdf_unavailable"


class PdfPrintFailed(PdfError):
    """Chromium was started but did not print the page."""

    key = "pdf_failed"


class BusyError(MicrofabError):
    """The same work is already running; asking again after it has ended will do."""

    key = "busy"


class ReplanRunningError(BusyError):
    """A re-plan of the open orders is already running."""

    key = "replan_running"


class VisionModelError(InputError):
    """An inspection model cannot be used: the file is not ONNX, or its inputs and outputs do not
    match its model card (one sentence naming what the card expects and what the model has)."""

    key = "vision_model"


class VisionCardError(LocatedFileError):
    """A vision model card (YAML) does not validate."""

    key = "invalid_model_card"
