"""The reports layer: templates escape what they show, and the one PDF printer's errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from microfab.cli import main
from microfab.errors import PdfPrinterMissing, PdfPrintFailed
from microfab.funding.reports import Bullets, Paragraph, Section, Table, page
from microfab.reports import chromium, print_pdf, render

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def test_a_report_escapes_what_it_shows() -> None:
    html = page(
        "Plan <b>A</b>",
        "Tom & Jerry Ltd",
        [
            Section(
                "<script>alert(1)</script>",
                [
                    Paragraph("x < y"),
                    Table(["a", "b"], [("<i>", None), (1, "2")], numeric=(0,)),
                    Bullets(['"quoted"']),
                    Bullets([]),
                ],
            )
        ],
        "footer",
    )
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<title>Plan &lt;b&gt;A&lt;/b&gt;</title>" in html
    assert "Tom &amp; Jerry Ltd" in html and "<p>x &lt; y</p>" in html
    assert '<td class="num">&lt;i&gt;</td><td></td>' in html  # None is an empty cell
    assert '<th class="num">a</th><th>b</th>' in html
    # a sentence the funding catalogue does not know is marked; one it knows shows its Chinese
    assert '<li><span data-untranslated="report">&#34;quoted&#34;</span></li>' in html
    assert '<p>none<br><span class="zh" lang="zh-Hant-HK">沒有</span></p>' in html


def test_the_shift_template_inlines_its_print_css() -> None:
    source = Path(__file__).resolve().parents[1] / "src" / "microfab" / "reports" / "templates"
    css = (source / "shift.css").read_text(encoding="utf-8")
    assert "@media print" in css
    with pytest.raises(UndefinedError, match="'r' is undefined"):  # strict: a missing value is loud
        render("shift.html")


def test_no_chromium_is_a_microfab_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROFAB_CHROMIUM", str(tmp_path / "no-such-browser"))
    assert chromium() is None
    with pytest.raises(PdfPrinterMissing, match="PDF export needs chromium") as raised:
        print_pdf("<p>hello</p>")
    assert (raised.value.key, raised.value.exit_code) == ("pdf_unavailable", 1)


def test_a_browser_that_prints_nothing_is_a_microfab_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROFAB_CHROMIUM", "/bin/false")
    with pytest.raises(PdfPrintFailed, match=r"chromium did not print the report \(exit 1\)") as e:
        print_pdf("<p>hello</p>")
    assert e.value.key == "pdf_failed"


def test_the_cli_says_what_the_printer_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MICROFAB_CHROMIUM", str(tmp_path / "no-such-browser"))
    html, pdf = tmp_path / "assessment.html", tmp_path / "assessment.pdf"
    application = str(EXAMPLES / "nifs-application.yaml")
    monkeypatch.setattr(
        sys,
        "argv",
        ["microfab", "funding", "assess", application, "--html", str(html), "--pdf", str(pdf)],
    )
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 1
    stderr = capsys.readouterr().err
    assert "error: PDF export needs chromium" in stderr and "Traceback" not in stderr
    assert html.is_file() and not pdf.exists()  # the HTML is written before printing


def test_the_reports_layer_depends_on_nothing_of_microfab_but_its_errors() -> None:
    """Domain services build each report's data and call the layer, never the other way round."""
    import ast

    folder = Path(__file__).resolve().parents[1] / "src" / "microfab" / "reports"
    imported: set[str] = set()
    for module in folder.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    ours = {name for name in imported if name.startswith("microfab")}
    assert ours <= {
        "microfab.errors",
        "microfab.settings",
        "microfab.reports.pdf",
        "microfab.reports.render",
    }, ours
