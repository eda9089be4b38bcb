"""Printable reports: Jinja templates rendered by one environment, printed to PDF by one printer.

Every printable page (the shift report, the HACCP batch record, the carbon report and the
funding drafts) is data built by its domain service plus a template in ``templates/``:

- :func:`microfab.reports.render.render` renders a template with autoescaping on, so no report
  escapes by hand;
- :func:`microfab.reports.pdf.print_pdf` prints a page to A4 PDF with headless chromium and raises
  :class:`~microfab.errors.PdfPrinterMissing` or :class:`~microfab.errors.PdfPrintFailed`.
"""

from __future__ import annotations

from microfab.reports.pdf import chromium, print_pdf
from microfab.reports.render import render

__all__ = ["chromium", "print_pdf", "render"]
