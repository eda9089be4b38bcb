"""The one PDF printer: a self-contained HTML page printed to A4 PDF by headless chromium.

The chromium used is ``$MICROFAB_CHROMIUM`` when set, else the first of chromium,
chromium-browser or google-chrome on the PATH (:func:`chromium`). Without one,
:class:`~microfab.errors.PdfPrinterMissing` (the API answers 501 ``pdf_unavailable``); when
chromium runs but prints nothing, :class:`~microfab.errors.PdfPrintFailed` (500 ``pdf_failed``).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from microfab.errors import PdfPrinterMissing, PdfPrintFailed
from microfab.settings import load_settings

CJK_FONT = (
    Path(__file__).resolve().parents[1] / "web" / "static" / "fonts" / "NotoSansTC-subset.woff2"
)
"""The Chinese font the reports name (``fonts/…`` beside the printed page), for a machine with none."""


def configured_chromium() -> str | None:
    """The chromium named by the configuration (``MICROFAB_CHROMIUM``), if any."""
    return load_settings().chromium or None


def chromium() -> str | None:
    """The chromium to print PDFs with: the configured one, else one on the PATH."""
    configured = configured_chromium()
    if configured:
        return configured if Path(configured).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(html: str, *, timeout_s: float = 60.0) -> bytes:
    """``html`` (self-contained) printed to A4 PDF by headless chromium."""
    browser = chromium()
    if browser is None:
        raise PdfPrinterMissing(
            "PDF export needs chromium (apt-get install chromium, or set MICROFAB_CHROMIUM); "
            "print the HTML report from a browser instead"
        )
    with tempfile.TemporaryDirectory(prefix="microfab-pdf-") as tmp:
        page = Path(tmp) / "report.html"
        out = Path(tmp) / "report.pdf"
        page.write_text(html, encoding="utf-8")
        (Path(tmp) / "fonts").mkdir()
        shutil.copyfile(CJK_FONT, Path(tmp) / "fonts" / CJK_FONT.name)
        command = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-pdf-header-footer",
            "--allow-file-access-from-files",  # the font beside the page
            f"--user-data-dir={Path(tmp) / 'profile'}",
            f"--print-to-pdf={out}",
            page.as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, timeout=timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PdfPrintFailed(f"chromium could not print the report: {exc}") from None
        if not out.is_file() or out.stat().st_size == 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise PdfPrintFailed(
                f"chromium did not print the report (exit {done.returncode}): {tail[0]}"
            )
        return out.read_bytes()
