"""The dashboard's energy and carbon panel (and its JSON route), and the funding pages: the
project's budget vs spend, claims and deadlines; smart-line evidence; the scheme matcher.

The carbon numbers are checked against ``microfab carbon footprint`` and ``energy_intensity``
for the same window on the simulated food line (the issue's "done when")."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from microfab.app import create_app
from microfab.cli import app as cli
from microfab.errors import InputError
from microfab.green.carbon_panel import CarbonPanel
from microfab.green.intensity import energy_intensity
from microfab.green.settings import load_settings
from microfab.model.events import format_ts, parse_ts
from microfab.sim.engine import FactorySimulation
from microfab.sim.scenario import load_scenario
from microfab.store import EventStore, open_store
from microfab.store.sink import StoreSink
from microfab.track.plant import Plant
from webapp import CNC1, ROBOT1, event, fill, read_update, serving, shown_after, utc

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
CARBON_SETTINGS = EXAMPLES / "carbon-food-line.yaml"
LEDGER = EXAMPLES / "nifs-ledger.yaml"
COMPANY = EXAMPLES / "company.yaml"
HTML = {"accept": "text/html"}


@pytest.fixture(scope="module")
def food_line(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo's food line, eight simulated hours (as ``microfab demo --scenario food-line
    --duration 8h --seed 1``), in a SQLite file: its URL."""
    url = f"sqlite:///{tmp_path_factory.mktemp('food')}/fl.db"
    scenario = load_scenario("food-line")
    with open_store(url) as store:
        store.apply_factory(scenario.factory, "food-line")
        sink = StoreSink(store, batch_size=5000)
        FactorySimulation(scenario, sink, seed=1).run_until(8 * 3600)  # from 08:00 HKT
        sink.flush()
    yield url


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[EventStore]:
    with open_store(f"sqlite:///{tmp_path}/plant.db") as opened:
        yield fill(opened)


def section(page: str, id_: str) -> str:
    found = re.search(rf'<section id="{id_}".*?</section>', page, re.S)
    assert found, f"no section {id_}"
    return found.group(0)


def carbon_row(panel: str, product: str) -> dict[str, str]:
    """The cells of one row of the carbon panel, as text (the English labels)."""
    found = re.search(rf'<tr data-line="[^"]*" data-product="{product}">(.*?)</tr>', panel, re.S)
    assert found, f"no carbon row for {product}"
    cells = re.findall(r'<td data-field="(\w+)">(.*?)</td>', found.group(1))
    return {
        name: re.sub(r"<[^>]+>", "", re.sub(r'<span class="zh".*?</span>', "", html))
        for name, html in cells
    }


def microfab(*args: str) -> subprocess.CompletedProcess[str]:
    """``microfab ARGS`` as a user runs it (errors become a message and an exit code)."""
    code = "import sys; from microfab.cli import main; sys.argv[0] = 'microfab'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )


def window(panel: str) -> tuple[dt.datetime, dt.datetime]:
    found = re.search(r'data-from="([^"]+)" data-to="([^"]+)"', panel)
    assert found, "the panel does not say its window"
    return parse_ts(found.group(1)), parse_ts(found.group(2))


# ---------------------------------------------------------------------------- carbon panel


def test_food_line_dashboard_shows_kgco2e_per_unit_as_computed_by_the_library(
    food_line: str,
) -> None:
    with (
        open_store(food_line) as store,
        serving(store, carbon_settings=CARBON_SETTINGS) as (_, client),
    ):
        page = client.get("/", headers=HTML).text
        panel = section(page, "carbon")
        start, end = window(panel)
        factory = Plant(store).factory()
        expected = energy_intensity(
            store, factory, start=start, end=end, settings=load_settings(CARBON_SETTINGS)
        ).to_json()
        as_json = client.get("/api/v1/carbon/intensity").json()
    # the window is the dashboard's: site midnight to the plant clock
    assert start == dt.datetime(2026, 11, 22, 16, tzinfo=dt.UTC)
    assert as_json["from"] == format_ts(start) and as_json["to"] == format_ts(end)
    assert [r["product"] for r in expected["rows"]] == ["MEAL-CHK-RICE", "MEAL-VEG-NOODLE"]
    for row in expected["rows"]:
        shown = carbon_row(panel, row["product"])
        assert float(shown["kgco2e_per_unit"]) == row["kgco2e_per_unit"] > 0
        assert float(shown["kwh_per_unit"]) == row["kwh_per_unit"] > 0
        assert int(shown["units"]) == row["units"]
        assert "Scope 1 + 2 + upstream" in shown["scope"]
    assert [r["kgco2e_per_unit"] for r in as_json["rows"]] == [
        r["kgco2e_per_unit"] for r in expected["rows"]
    ]
    assert as_json["idle"] == expected["idle"] and len(expected["idle"]) == 5
    for waste in expected["idle"]:
        assert f'data-machine="{waste["machine"]}"' in panel
    assert "carbon-food-line.yaml" in panel
    # the same number as `microfab carbon footprint` prints for that window
    result = CliRunner().invoke(
        cli,
        [
            "carbon",
            "footprint",
            "--product",
            "MEAL-CHK-RICE",
            "--from",
            format_ts(start),
            "--to",
            format_ts(end),
            "--settings",
            str(CARBON_SETTINGS),
            "--db",
            food_line,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    footprint = json.loads(result.stdout)
    shown = carbon_row(panel, "MEAL-CHK-RICE")
    assert float(shown["kgco2e_per_unit"]) == round(footprint["kgco2e_per_unit"], 4)
    assert int(shown["units"]) == footprint["units"]


def test_without_settings_the_panel_shows_energy_and_scope_2_and_says_what_is_missing(
    food_line: str,
) -> None:
    with open_store(food_line) as store, serving(store) as (_, client):
        panel = section(client.get("/", headers=HTML).text, "carbon")
        start, end = window(panel)
        expected = energy_intensity(store, Plant(store).factory(), start=start, end=end)
        as_json = client.get("/api/v1/carbon/intensity").json()
    row = carbon_row(panel, "MEAL-CHK-RICE")
    figures = expected.to_json()["rows"][0]
    assert float(row["kgco2e_per_unit"]) == figures["kgco2e_per_unit"]
    assert float(row["kwh_per_unit"]) == figures["kwh_per_unit"]
    assert "Scope 1 + 2 only" in row["scope"]
    assert "upstream materials not included" in panel
    assert "materials without an emission factor" in panel  # the footprint's own flag
    assert as_json["settings_file"] is None
    assert as_json["rows"][0]["upstream_included"] is False
    assert as_json["notes"][0].startswith("No carbon settings file")


def test_carbon_panel_on_the_small_plant_page(sqlite_store: EventStore) -> None:
    with serving(sqlite_store) as (_, client):
        page = client.get("/", headers=HTML).text
    panel = section(page, "carbon")
    assert '<span class="en">Energy and carbon</span>' in panel
    assert '<span class="zh" lang="zh-Hant-HK">能源及碳排放</span>' in panel
    assert 'id="panel-carbon"' in panel
    assert 'href="/#carbon"' in page and 'href="/funding"' in page  # the top bar


@pytest.mark.parametrize("period", ["today", "explicit"])
def test_carbon_intensity_route(store: EventStore, period: str) -> None:
    """The JSON route on both back ends: the dashboard's window, or one given."""
    fill(store)
    with serving(store) as (_, client):
        if period == "today":
            doc = client.get("/api/v1/carbon/intensity").json()
            start, end = parse_ts(doc["from"]), parse_ts(doc["to"])
            assert start == utc("00:00") and end == utc("15:59") + dt.timedelta(milliseconds=1)
        else:
            doc = client.get(
                "/api/v1/carbon/intensity",
                params={"from": "2026-11-23T08:00", "to": "2026-11-23T15:00"},
            ).json()
            start, end = utc("08:00"), utc("15:00")
            assert (parse_ts(doc["from"]), parse_ts(doc["to"])) == (start, end)
        expected = energy_intensity(store, Plant(store).factory(), start=start, end=end).to_json()
        schema = client.get("/openapi.json").json()
        inverted = client.get(
            "/api/v1/carbon/intensity",
            params={"from": "2026-11-23T10:00", "to": "2026-11-23T09:00"},
        )
    assert [{k: v for k, v in r.items() if k != "upstream_included"} for r in doc["rows"]] == (
        expected["rows"]
    )
    assert doc["idle"] == expected["idle"]
    assert doc["message"] == expected["message"]
    assert "/api/v1/carbon/intensity" in schema["paths"]
    assert schema["paths"]["/api/v1/carbon/intensity"]["get"]["tags"] == ["carbon"]
    assert inverted.status_code == 400
    assert inverted.json()["error"]["key"] == "invalid_time_range"


def test_carbon_figures_are_cached_and_recomputed_in_the_background(
    sqlite_store: EventStore,
) -> None:
    plant = Plant(sqlite_store)
    seq = sqlite_store.last_seq()
    start, end = utc("00:00"), utc("15:59")
    slow = CarbonPanel(plant, refresh_s=3600)
    first = slow.view(seq, start, end)
    assert slow.view(seq + 1, start, end) is first  # not due: the kept figures
    slow.wait()
    assert slow.version == 1
    eager = CarbonPanel(plant, refresh_s=0)
    kept = eager.view(seq, start, end)
    sqlite_store.append([event("c-90", "2026-11-23T15:59:30+08:00", ROBOT1, "count", good=3)])
    assert eager.view(seq + 1, start, end) is kept  # the caller never waits
    eager.wait()
    assert eager.version == 2
    assert eager.view(seq + 1, start, end).seq == seq + 1
    # a new day is computed while the caller waits
    tomorrow = eager.view(seq + 1, utc("00:00", "2026-11-24"), utc("01:00", "2026-11-24"))
    assert tomorrow.start == utc("00:00", "2026-11-24")
    eager.close()


def test_live_updates_carry_the_carbon_panel(sqlite_store: EventStore) -> None:
    with (
        serving(sqlite_store, carbon_refresh_s=0) as (_, client),
        client.stream("GET", "/live") as response,
    ):
        lines = response.iter_lines()
        first = read_update(lines)
        shown = first["panels"]
        assert 'data-from="2026-11-22T16:00:00.000Z"' in shown["carbon"]
        sqlite_store.append(
            [event("s-60", "2026-11-23T16:05:00+08:00", CNC1, "state", state="idle")]
        )
        # the store's update, then the carbon figures recomputed for it
        while True:
            update = read_update(lines)
            shown = shown_after(shown, update)  # as the page applies it (full or line edits)
            if "2026-11-23T08:05:00.001Z" in shown["carbon"]:
                break
    assert update["seq"] == first["seq"] + 1


def test_a_bad_carbon_settings_file_is_refused_at_start(tmp_path: Path) -> None:
    bad = tmp_path / "carbon.yaml"
    bad.write_text("allocation: by_magic\n")
    with pytest.raises(InputError, match=r"carbon\.yaml"):
        create_app(f"sqlite:///{tmp_path}/x.db", carbon_settings=bad)
    result = microfab(
        "serve", "--port", "0", "--carbon-settings", str(bad), "--db", f"sqlite:///{tmp_path}/x.db"
    )
    assert result.returncode == 2
    assert "allocation" in result.stderr and "Traceback" not in result.stderr


# ---------------------------------------------------------------------------- funding


def test_funding_project_page_from_the_ledger(sqlite_store: EventStore) -> None:
    with serving(sqlite_store, funding_ledger=LEDGER) as (_, client):
        page = client.get("/funding", params={"as_of": "2026-11-23"}, headers=HTML)
        reports = {
            kind: client.get(f"/funding/report/{kind}", params={"as_of": "2026-11-23"})
            for kind in ("progress", "final", "benefit", "evidence")
        }
        unknown = client.get("/funding/report/annual", headers=HTML)
    assert page.status_code == 200
    text = page.text
    assert "Meal line 1: robotic cook-chill line" in text and "NIFS-EXAMPLE-001" in text
    assert '<span class="zh" lang="zh-Hant-HK">預算與支出</span>' in text
    # budget vs spend: B3 overspent by HK$50,000, warned
    b3 = re.search(r'<tr data-item="B3" class="overspent">(.*?)</tr>', text, re.S)
    assert b3 and 'data-field="spent">2,450,000' in b3.group(1)
    assert 'data-field="remaining">-50,000' in b3.group(1)
    assert "overspent by HK$50,000" in text
    assert 'data-item="B7"' in text and "90,000.50" in text
    # payments: interim at most 50% of the grant, final the rest
    interim = re.search(r'<tr data-claim="interim">(.*?)</tr>', text, re.S)
    assert interim and 'data-field="max">1,333,333' in interim.group(1)
    assert '<tr data-claim="final">' in text
    # deadlines, with their sources
    assert "Operators trained" in text and 'data-status="due_soon"' in text
    assert "S03 (confirmed_official)" in text
    for kind, response in reports.items():
        assert response.status_code == 200, kind
        assert f'href="/funding/report/{kind}' in text
        assert "<!doctype html>" in response.text.lower()
    assert unknown.status_code == 404


def test_funding_project_page_without_or_with_a_bad_ledger(
    sqlite_store: EventStore, tmp_path: Path
) -> None:
    with serving(sqlite_store) as (_, client):
        none = client.get("/funding", headers=HTML)
        progress = client.get("/funding/report/progress", headers=HTML)
    assert none.status_code == 200 and "--funding-ledger" in none.text
    assert progress.status_code == 400 and "--funding-ledger" in progress.text
    bad = tmp_path / "ledger.yaml"
    bad.write_text(LEDGER.read_text().replace("category: training", "category: parties"))
    with serving(sqlite_store, funding_ledger=bad) as (_, client):
        page = client.get("/funding", headers=HTML)
    assert page.status_code == 200
    problems = re.findall(r"<li><code>(.*?)</code></li>", page.text)
    assert problems and problems[0].startswith(f"{bad}:")
    assert "category" in problems[0]
    result = microfab(
        "serve", "--port", "0", "--funding-ledger", str(bad), "--db", f"sqlite:///{tmp_path}/y.db"
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"{bad}:20 budget[6].category")


def test_funding_evidence_page(sqlite_store: EventStore) -> None:
    with serving(sqlite_store) as (_, client):
        page = client.get("/funding/evidence", headers=HTML)
        one = client.get("/funding/evidence", params={"line": "line1"}, headers=HTML)
        unknown = client.get("/funding/evidence", params={"line": "nope"}, headers=HTML)
    assert page.status_code == 200 and one.status_code == 200
    text = page.text
    assert 'data-line="kt/plant/line1"' in text
    for criterion in ("iot", "real_time_data", "data_analytics", "advanced_hmi", "ai_ml"):
        assert f'data-criterion="{criterion}"' in text
    # a criterion without evidence says so; every document cites its source
    assert re.search(
        r'data-status="no_evidence"[^>]*>\s*<th><span class="en">AI/ML</span><span class="zh" '
        r'lang="zh-Hant-HK">人工智能／機器學習</span></th>\s*<td><span class="en">no evidence yet',
        text,
    )
    source = re.search(r'data-field="source">([^<]+)<', text)
    assert source and source.group(1).startswith("store sqlite:///")
    assert 'href="/funding/report/evidence"' in text
    assert unknown.status_code == 404


def test_funding_evidence_on_the_food_line_follows_the_ledger(food_line: str) -> None:
    with open_store(food_line) as store, serving(store, funding_ledger=LEDGER) as (_, client):
        page = client.get("/funding/evidence", headers=HTML).text
    assert 'data-line="tp/kitchen/meal-1"' in page
    assert re.search(r'data-criterion="robotics" data-status="evidenced"', page)
    assert "robot-1, agv-1" in page


def test_scheme_matcher(sqlite_store: EventStore) -> None:
    profile = COMPANY.read_text()
    with serving(sqlite_store) as (_, client):
        form = client.get("/funding/match", headers=HTML)
        pasted = client.post("/funding/match", data={"profile": profile}, headers=HTML)
        uploaded = client.post(
            "/funding/match",
            files={"upload": ("company.yaml", profile.encode(), "application/yaml")},
            headers=HTML,
        )
        invalid = client.post(
            "/funding/match",
            files={"upload": ("mine.yaml", b"as_of: soon\ncompany: {name: X}\n", "text/yaml")},
            headers=HTML,
        )
        empty = client.post("/funding/match", data={"profile": " "}, headers=HTML)
    assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text
    for response in (pasted, uploaded):
        assert response.status_code == 200
        ranked = re.findall(r'data-scheme="(\w+)" data-fits="(\w+)"', response.text)
        assert ranked[0] == ("nifs", "true")
        assert any(fits == "false" for _, fits in ranked)  # the ones that do not fit, too
        assert "HK$2,860,000" in response.text  # NIFS estimate for the HK$8.58M project
        assert "(S01, S07 (confirmed_official))" in response.text  # every reason's source
    assert invalid.status_code == 400
    problems = re.findall(r"<li><code>(.*?)</code></li>", invalid.text)
    assert any(p.startswith("mine.yaml:1 as_of") for p in problems)
    assert any("need" in p for p in problems)
    assert empty.status_code == 400 and "paste a company profile" in empty.text


def test_funding_evidence_pdf(sqlite_store: EventStore) -> None:
    with serving(sqlite_store) as (_, client):
        response = client.get("/funding/report/evidence.pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
