"""The command line: commands in-process with Typer's runner, error exits through the real entry point."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from conftest import DATA, pg_base_url
from microfab import __version__
from microfab.cli import app

runner = CliRunner()

DEMO_2H = ["--scenario", "food-line", "--speed", "max", "--duration", "2h", "--seed", "1"]
COMMON = ("id", "ts", "machine", "stream")
STREAM_FIELDS = {
    "state": {"state", "reason"},
    "count": {"good", "scrap", "order", "operation"},
    "energy": {"kwh"},
    "telemetry": {"metrics"},
    "order": {"order", "event", "operation"},
    "material": {"material", "lot", "qty", "unit", "order"},
}


def invoke(*args: str) -> Result:
    """Run a command in-process; it must succeed."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (
        f"microfab {' '.join(args)} exited {result.exit_code}\n"
        f"stdout: {result.stdout}\nstderr: {result.stderr}\nexception: {result.exception!r}"
    )
    return result


def flat(text: str) -> str:
    """Text with runs of white space (including Rich's line wrapping) collapsed to one space."""
    return " ".join(text.split())


def run_microfab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the real entry point (``main()``, which turns microfab errors into exit codes)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MICROFAB_DB", "LINES")}
    env["COLUMNS"] = "80"  # what a terminal-less run (CI, a pipe) gets anyway
    return subprocess.run(
        [sys.executable, "-m", "microfab.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_clean_failure(proc: subprocess.CompletedProcess[str], code: int) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.stderr.strip(), "an error must be explained on stderr"


def sqlite(path: Path) -> str:
    return f"sqlite:///{path}"


def export(db: str) -> str:
    return invoke("events", "export", "--format", "jsonl", "--db", db).stdout


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A SQLite store holding 2 h of the food line (seed 1), and its JSONL export (stored
    directly; test_demo_mqtt.py shows the MQTT path stores the same)."""
    folder = tmp_path_factory.mktemp("demo")
    db = sqlite(folder / "demo.db")
    result = invoke("demo", *DEMO_2H, "--no-web", "--direct", "--db", db)
    assert "finished" in result.stdout
    yield db, export(db)


# ------------------------------------------------------------------------------ general


def test_version() -> None:
    assert __version__ in invoke("version").stdout


def test_help_lists_the_commands() -> None:
    text = invoke("--help").stdout
    for command in ("demo", "sim", "events", "factory", "db", "init", "validate"):
        assert re.search(rf"\b{command}\b", text), f"'{command}' missing from --help"


def test_init_writes_a_valid_factory_file_and_refuses_to_overwrite(tmp_path: Path) -> None:
    folder = tmp_path / "plant"
    invoke("init", str(folder))
    written = folder / "factory.yaml"
    assert written.is_file()
    assert "valid" in invoke("validate", str(written)).stdout
    before = written.read_text(encoding="utf-8")

    again = run_microfab("init", str(folder), cwd=tmp_path)
    assert_clean_failure(again, 2)
    assert "--force" in flat(again.stderr)
    assert written.read_text(encoding="utf-8") == before

    invoke("init", str(folder), "--force")


def test_validate_locates_a_bad_machine_kind(tmp_path: Path) -> None:
    text = (DATA / "factory-small.yaml").read_text(encoding="utf-8")
    old = "{id: cnc-2, kind: cnc,"
    assert text.count(old) == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace(old, "{id: cnc-2, kind: cnc2,"), encoding="utf-8")
    line = next(n for n, t in enumerate(text.splitlines(), start=1) if old in t)

    proc = run_microfab("validate", str(bad), cwd=tmp_path)
    assert_clean_failure(proc, 2)
    expected = (
        f"{bad}:{line} sites[0].areas[0].lines[0].cells[1].machines[0].kind: "
        "'cnc2' is not one of cnc, injection_moulder"
    )
    # One problem, one line: greppable, never wrapped.
    assert any(expected in ln for ln in proc.stderr.splitlines()), proc.stderr


def test_validate_missing_file_exits_2(tmp_path: Path) -> None:
    proc = run_microfab("validate", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert_clean_failure(proc, 2)
    assert "no such file" in flat(proc.stderr)


def test_demo_unknown_scenario_lists_scenarios(tmp_path: Path) -> None:
    proc = run_microfab(
        "demo", "--scenario", "nope", "--no-web", "--db", sqlite(tmp_path / "x.db"), cwd=tmp_path
    )
    assert_clean_failure(proc, 2)
    assert "food-line" in proc.stderr and "moulding-cell" in proc.stderr


def test_unreachable_database_masks_the_password(tmp_path: Path) -> None:
    proc = run_microfab(
        "events", "export", "--db", "postgresql://u:secret@127.0.0.1:1/x", cwd=tmp_path
    )
    assert_clean_failure(proc, 1)
    assert "***" in proc.stderr
    everything = proc.stdout + proc.stderr
    assert "secret" not in everything and "secret" not in everything.replace("\n", "")


# ------------------------------------------------------------------------------ demo and export


def test_demo_export_shape(demo_db: tuple[str, str]) -> None:
    _, text = demo_db
    assert text.endswith("\n")
    rows = [json.loads(line) for line in text.splitlines()]
    assert len(rows) > 1000
    keys = [(r["ts"], r["id"]) for r in rows]
    assert keys == sorted(keys), "export must be ordered by (ts, id)"
    assert len({r["id"] for r in rows}) == len(rows)
    seen = set()
    for r in rows:
        assert tuple(r)[:4] == COMMON, r
        stream = r["stream"]
        seen.add(stream)
        if stream in STREAM_FIELDS:
            assert STREAM_FIELDS[stream] <= set(r), r
    assert set(STREAM_FIELDS) <= seen


def test_same_seed_twice_gives_byte_identical_exports(db_url: str, tmp_path: Path) -> None:
    """Acceptance: one seed, two stores (SQLite, or PostgreSQL vs SQLite), the same bytes.
    Stored directly: test_demo_mqtt.py shows the MQTT path stores the same events."""
    args = ["--scenario", "food-line", "--speed", "max", "--duration", "8h", "--seed", "1"]
    args.append("--direct")
    other = sqlite(tmp_path / "second.db")
    outputs = []
    for i, db in enumerate((db_url, other)):
        assert "finished" in invoke("demo", *args, "--no-web", "--db", db).stdout
        out = tmp_path / f"export-{i}.jsonl"
        invoke("events", "export", "--db", db, "--output", str(out))
        outputs.append(out.read_bytes())
    assert outputs[0].count(b"\n") > 5000
    assert outputs[0] == outputs[1]


@pytest.fixture
def pg_locale_url() -> Iterator[str]:
    """A fresh PostgreSQL database whose default collation is a language one (ICU en-US), as on
    many servers initialised with LANG=en_US.UTF-8."""
    base = make_url(pg_base_url()).set(drivername="postgresql")
    libpq = base.render_as_string(hide_password=False)
    name = f"microfab_test_icu_{uuid.uuid4().hex[:12]}"
    create = sql.SQL(
        "CREATE DATABASE {} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' "
        "LOCALE 'C.UTF-8'"
    ).format(sql.Identifier(name))
    try:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(create)
    except psycopg.Error as exc:
        pytest.skip(f"cannot create an ICU-collated database: {exc}")
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.mark.postgres
def test_export_order_does_not_depend_on_the_server_collation(
    pg_locale_url: str, tmp_path: Path
) -> None:
    """(ts, id) order is code-point order on every back end, so exports stay byte-identical."""
    ids = ["b", "B", "a_3", "a-2", "A0", "a1", "Z9", "z-0"]
    file = tmp_path / "ids.jsonl"
    file.write_text(
        "".join(
            json.dumps(
                {
                    "id": i,
                    "ts": "2026-11-23T00:00:00.000Z",
                    "machine": "tp/kitchen/meal-1/pick/robot-1",
                    "stream": "telemetry",
                    "metrics": {"n": n},
                },
                separators=(",", ":"),
            )
            + "\n"
            for n, i in enumerate(ids)
        ),
        encoding="utf-8",
    )
    exports = []
    for db in (sqlite(tmp_path / "ids.db"), pg_locale_url):
        invoke("events", "import", str(file), "--db", db)
        exports.append(export(db))
    assert [json.loads(line)["id"] for line in exports[0].splitlines()] == sorted(ids)
    assert exports[1] == exports[0]


# ------------------------------------------------------------------------------ import


def test_import_is_idempotent(demo_db: tuple[str, str], tmp_path: Path) -> None:
    _, text = demo_db
    n = text.count("\n")
    file = tmp_path / "events.jsonl"
    file.write_text(text, encoding="utf-8")
    db = sqlite(tmp_path / "fresh.db")

    first = flat(invoke("events", "import", str(file), "--db", db).stdout)
    assert f"stored {n:,} new events" in first
    assert "skipped 0 already stored" in first
    assert export(db) == text

    second = flat(invoke("events", "import", str(file), "--db", db).stdout)
    assert "stored 0 new events" in second
    assert f"skipped {n:,} already stored" in second
    assert "rejected 0 id conflicts" in second
    assert export(db) == text


def test_import_stops_at_a_corrupt_line(demo_db: tuple[str, str], tmp_path: Path) -> None:
    _, text = demo_db
    lines = text.splitlines(keepends=True)
    file = tmp_path / "corrupt.jsonl"
    file.write_text("".join([*lines[:2], "{not json\n", *lines[3:6]]), encoding="utf-8")
    db = sqlite(tmp_path / "partial.db")

    proc = run_microfab("events", "import", str(file), "--db", db, cwd=tmp_path)
    assert_clean_failure(proc, 2)
    assert f"{file}:3:" in proc.stderr, proc.stderr
    assert export(db) == "".join(lines[:2])


def test_import_reports_id_conflicts(demo_db: tuple[str, str], tmp_path: Path) -> None:
    _, text = demo_db
    first = json.loads(text.splitlines()[0])
    db = sqlite(tmp_path / "conflict.db")
    good = tmp_path / "good.jsonl"
    good.write_text(text.splitlines(keepends=True)[0], encoding="utf-8")
    invoke("events", "import", str(good), "--db", db)

    changed = {**first, "machine": "tp/kitchen/meal-1/fill/filler-1"}
    assert changed != first
    clash = tmp_path / "clash.jsonl"
    clash.write_text(json.dumps(changed) + "\n", encoding="utf-8")
    proc = run_microfab("events", "import", str(clash), "--db", db, cwd=tmp_path)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stdout + proc.stderr
    expected = f"{clash}:1: id_conflict: event '{first['id']}' is stored with different content"
    assert any(expected in ln for ln in proc.stderr.splitlines()), proc.stderr
    assert "rejected 1 id conflicts" in flat(proc.stdout)
    assert export(db) == text.splitlines(keepends=True)[0], "the stored event must be unchanged"


def test_import_reports_conflicts_on_ids_that_look_like_markup(tmp_path: Path) -> None:
    """Event ids may hold any printable ASCII, '[/]' included; reporting one must not crash."""
    event = {
        "id": "batch[/]7[bold]",
        "ts": "2026-11-23T00:00:00.000Z",
        "machine": "tp/kitchen/meal-1/pick/robot-1",
        "stream": "state",
        "state": "idle",
        "reason": None,
    }
    db = sqlite(tmp_path / "markup.db")
    stored = tmp_path / "stored.jsonl"
    stored.write_text(json.dumps(event) + "\n", encoding="utf-8")
    invoke("events", "import", str(stored), "--db", db)
    clash = tmp_path / "clash.jsonl"
    clash.write_text(json.dumps({**event, "state": "running"}) + "\n", encoding="utf-8")
    proc = run_microfab("events", "import", str(clash), "--db", db, cwd=tmp_path)
    assert_clean_failure(proc, 1)
    assert f"{clash}:1: id_conflict: event 'batch[/]7[bold]'" in proc.stderr


def test_company_name_is_printed_verbatim(tmp_path: Path) -> None:
    """Text from the user's files is shown as written, never read as Rich markup."""
    text = (DATA / "factory-small.yaml").read_text(encoding="utf-8")
    name = "Kwun Tong [/] Test [bold]Works[/bold] Ltd"
    file = tmp_path / "factory.yaml"
    file.write_text(
        text.replace("name: Kwun Tong Test Works Ltd", f'name: "{name}"'), encoding="utf-8"
    )
    proc = run_microfab("validate", str(file), cwd=tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert name in proc.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["sim", "--duration", "abc", "--jsonl", "out.jsonl"], "--duration"),
        (["sim", "--duration", "10m", "--speed", "0", "--jsonl", "out.jsonl"], "--speed"),
        (["demo", "--no-web", "--start", "2026-11-23T08:00", "--db", "sqlite:///x.db"], "--start"),
        (["events", "export", "--format", "csv", "--db", "sqlite:///x.db"], "--format"),
        (["sim", "--duration", "10m", "--spool", "s.db", "--db", "sqlite:///x.db"], "--spool"),
        (["sim", "--broker", "mqtt://127.0.0.1:1", "--jsonl", "out.jsonl"], "--jsonl"),
        (["sim", "--broker", "mqtt://127.0.0.1:1", "--db", "sqlite:///x.db"], "--db"),
        (["sim", "--broker", "ftp://127.0.0.1", "--spool", "s.db"], "--broker"),
        (["demo", "--no-web", "--direct", "--broker", "mqtt://127.0.0.1:1"], "--broker"),
        (["demo", "--no-web", "--username", "plant", "--db", "sqlite:///x.db"], "--username"),
        (
            ["demo", "--no-web", "--broker", "mqtts://127.0.0.1:1", "--tls-ca", "missing.pem"],
            "--tls-ca",
        ),
    ],
    ids=[
        "duration",
        "speed",
        "naive-start",
        "format",
        "spool-without-broker",
        "broker-and-jsonl",
        "broker-and-db",
        "bad-broker-url",
        "direct-and-broker",
        "username-without-broker",
        "missing-ca",
    ],
)
def test_bad_options_exit_2(args: list[str], needle: str, tmp_path: Path) -> None:
    proc = run_microfab(*args, cwd=tmp_path)
    assert_clean_failure(proc, 2)
    assert needle in proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["events", "export", "--output", "{missing}/out.jsonl"],
        ["sim", "--duration", "10m", "--jsonl", "{missing}/out.jsonl"],
    ],
    ids=["export", "sim"],
)
def test_unwritable_output_fails_cleanly(
    args: list[str], demo_db: tuple[str, str], tmp_path: Path
) -> None:
    db, _ = demo_db
    missing = tmp_path / "no-such-folder"
    argv = [a.replace("{missing}", str(missing)) for a in args]
    if argv[0] == "events":
        argv += ["--db", db]
    proc = run_microfab(*argv, cwd=tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr[-600:]
    assert proc.returncode in (1, 2)
    assert str(missing) in proc.stderr


# ------------------------------------------------------------------------------ sim


def test_sim_jsonl_to_stdout(tmp_path: Path) -> None:
    args = ["--scenario", "food-line", "--duration", "20m", "--seed", "2"]
    out = tmp_path / "sim.jsonl"
    invoke("sim", *args, "--jsonl", str(out))
    text = invoke("sim", *args, "--jsonl", "-").stdout
    assert text == out.read_text(encoding="utf-8")
    assert all(json.loads(line)["id"] for line in text.splitlines())


def test_sim_jsonl_matches_demo_store(tmp_path: Path) -> None:
    args = ["--scenario", "moulding-cell", "--duration", "1h", "--seed", "3"]
    out = tmp_path / "sim.jsonl"
    invoke("sim", *args, "--jsonl", str(out))
    db = sqlite(tmp_path / "demo.db")
    invoke("demo", *args, "--speed", "max", "--no-web", "--db", db)
    written = out.read_text(encoding="utf-8")
    assert written.count("\n") > 100
    assert written.splitlines() == export(db).splitlines()


def test_sim_help_names_the_default_spool() -> None:
    """Rich markup would swallow a bare "[default: …]"; the spool's default must stay visible."""
    text = flat(invoke("sim", "--help").stdout.replace("│", " "))
    assert "[default: microfab-spool.db in the working directory]" in text


def test_sim_into_the_store_matches_jsonl(tmp_path: Path) -> None:
    args = ["--scenario", "food-line", "--duration", "30m", "--seed", "5"]
    out = tmp_path / "sim.jsonl"
    invoke("sim", *args, "--jsonl", str(out))
    db = sqlite(tmp_path / "sim.db")
    invoke("sim", *args, "--db", db)
    assert out.read_text(encoding="utf-8") == export(db)


# ------------------------------------------------------------------------------ factory and db


def test_factory_apply_and_show(tmp_path: Path) -> None:
    db = sqlite(tmp_path / "factory.db")
    file = str(DATA / "factory-small.yaml")
    first = flat(invoke("factory", "apply", file, "--db", db).stdout)
    assert "version 1" in first and "unchanged" not in first
    second = flat(invoke("factory", "apply", file, "--db", db).stdout)
    assert "unchanged" in second and "version 1" in second
    shown = json.loads(invoke("factory", "show", "--db", db).stdout)
    assert shown["version"] == 1
    assert shown["company"]["name"] == "Kwun Tong Test Works Ltd"


def test_factory_show_without_factory_fails_cleanly(tmp_path: Path) -> None:
    proc = run_microfab("factory", "show", "--db", sqlite(tmp_path / "empty.db"), cwd=tmp_path)
    assert_clean_failure(proc, 1)
    assert "factory apply" in flat(proc.stderr)


def test_db_upgrade_creates_then_is_idempotent(tmp_path: Path) -> None:
    db = sqlite(tmp_path / "new.db")
    first = flat(invoke("db", "upgrade", "--db", db).stdout)
    assert "upgraded" in first
    assert (tmp_path / "new.db").is_file()
    second = flat(invoke("db", "upgrade", "--db", db).stdout)
    assert "already" in second and "upgraded" not in second
    assert export(db) == ""


# ------------------------------------------------------------------------------ tail


def test_tail_prints_the_last_events(demo_db: tuple[str, str]) -> None:
    db, text = demo_db
    lines = invoke("events", "tail", "-n", "3", "--db", db).stdout.splitlines()
    assert len(lines) == 3
    assert [json.loads(line) for line in lines] == [
        json.loads(line) for line in text.splitlines()[-3:]
    ]


def test_tail_filters_by_stream(demo_db: tuple[str, str]) -> None:
    db, text = demo_db
    lines = invoke("events", "tail", "-n", "3", "--stream", "count", "--db", db).stdout.splitlines()
    assert len(lines) == 3
    rows = [json.loads(line) for line in lines]
    assert all(r["stream"] == "count" for r in rows)
    counts = [json.loads(line) for line in text.splitlines() if '"stream":"count"' in line]
    assert rows == counts[-3:]


def test_events_import_counts_stores_csv_rows_once(tmp_path: Path) -> None:
    db = sqlite(tmp_path / "counts.db")
    invoke("factory", "apply", str(DATA / "factory-small.yaml"), "--db", db)
    first = flat(invoke("events", "import-counts", str(DATA / "counts.csv"), "--db", db).stdout)
    assert "4 rows from 3 machines; stored 4 new count events, skipped 0" in first
    again = flat(invoke("events", "import-counts", str(DATA / "counts.csv"), "--db", db).stdout)
    assert "stored 0 new count events, skipped 4 already stored" in again
    counts = [json.loads(line) for line in export(db).splitlines()]
    assert (
        sum(event["good"] for event in counts if event["stream"] == "count") == 120 + 115 + 95 + 230
    )

    bad = tmp_path / "bad.csv"
    bad.write_text("ts,machine,good\n2026-11-23T09:00:00+08:00,cnc-1,x\n", encoding="utf-8")
    proc = run_microfab("events", "import-counts", str(bad), "--db", db, cwd=tmp_path)
    assert_clean_failure(proc, 2)
    assert f"{bad}:2: good:" in proc.stderr
