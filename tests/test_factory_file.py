"""Factory files: parsing, located error messages, and working windows of a calendar."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from microfab.errors import FactoryFileError, InputError
from microfab.model.calendar import is_working, working_windows
from microfab.model.factory import Factory, MachineKind, ReasonCategory
from microfab.model.factory_file import format_loc, parse_factory

HKT = zoneinfo.ZoneInfo("Asia/Hong_Kong")
UTC = dt.UTC


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line number of the ``nth`` line of ``text`` containing ``needle``."""
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) >= nth, f"{needle!r} is not in the text {nth} time(s)"
    return hits[nth - 1]


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} must occur exactly once in the factory file"
    return text.replace(old, new)


def problems_of(text: str, filename: str = "factory.yaml") -> list[str]:
    with pytest.raises(FactoryFileError) as caught:
        parse_factory(text, filename)
    problems = caught.value.problems
    assert problems, "a FactoryFileError must carry at least one problem"
    assert str(caught.value) == "\n".join(problems)
    return problems


# ------------------------------------------------------------------------------ the small factory


def test_small_factory_parses(small_factory_text: str) -> None:
    factory = parse_factory(small_factory_text)
    assert isinstance(factory, Factory)
    assert [ref.path for ref in factory.machines()] == [
        "kt/plant/line1/machining/cnc-1",
        "kt/plant/line1/machining/robot-1",
        "kt/plant/line1/utility/cnc-2",
        "kt/plant/line1/utility/meter-1",
    ]
    kinds = {ref.machine.kind for ref in factory.machines()}
    assert {MachineKind.CNC, MachineKind.ROBOT_ARM, MachineKind.ENERGY_METER} <= kinds
    site = factory.sites[0]
    assert (site.id, site.areas[0].id, site.areas[0].lines[0].id) == ("kt", "plant", "line1")
    assert len(site.areas[0].lines[0].cells) == 2
    assert factory.machine("kt/plant/line1/utility/meter-1").machine.has_meter
    assert not factory.machine("kt/plant/line1/utility/meter-1").machine.produces
    assert factory.downtime_reasons.category_of("PB") is ReasonCategory.PLANNED
    assert factory.downtime_reasons.category_of("UB-MECH") is ReasonCategory.UNPLANNED
    assert factory.downtime_reasons.category_of("NOPE") is None
    product = factory.products[0]
    machine_ids = {ref.machine.id for ref in factory.machines()}
    assert all(set(op.machines) <= machine_ids for op in product.routing)
    calendar = factory.calendar(site.areas[0].lines[0].calendar)
    assert calendar.shifts[0].start == "08:00" and calendar.shifts[0].end == "16:00"


def test_factory_error_is_an_input_error() -> None:
    assert issubclass(FactoryFileError, InputError)
    assert FactoryFileError.exit_code == 2


# ------------------------------------------------------------------------------ located problems


def test_invalid_machine_kind(small_factory_text: str) -> None:
    text = replace_once(
        small_factory_text, "{id: robot-1, kind: robot_arm,", "{id: robot-1, kind: cnc2,"
    )
    line = line_of(text, "kind: cnc2")
    problems = problems_of(text)
    assert len(problems) == 1
    expected = (
        f"factory.yaml:{line} sites[0].areas[0].lines[0].cells[0].machines[1].kind: "
        "'cnc2' is not one of cnc, injection_moulder"
    )
    assert problems[0].startswith(expected), problems


def test_invalid_machine_kind_in_block_style(small_factory_text: str) -> None:
    text = replace_once(
        small_factory_text,
        "                  - {id: cnc-2, kind: cnc, ideal_cycle_s: 40.0}\n",
        "                  - id: cnc-2\n"
        "                    ideal_cycle_s: 40.0\n"
        "                    kind: cnc2\n",
    )
    line = line_of(text, "kind: cnc2")
    assert line != line_of(text, "id: cnc-2")
    (problem,) = problems_of(text, "plant.yaml")
    assert problem.startswith(
        f"plant.yaml:{line} sites[0].areas[0].lines[0].cells[1].machines[0].kind: "
        "'cnc2' is not one of cnc, injection_moulder"
    ), problem


def test_routing_names_unknown_machine(small_factory_text: str) -> None:
    text = replace_once(
        small_factory_text,
        "      - {seq: 20, name: Unload, machines: {robot-1: 5.0}}\n",
        "      - seq: 20\n        name: Unload\n        machines:\n          robot-9: 5.0\n",
    )
    line = line_of(text, "robot-9: 5.0")
    (problem,) = problems_of(text)
    assert problem == (
        f"factory.yaml:{line} products[0].routing[1].machines.robot-9: "
        "'robot-9' is not a machine id of this factory"
    )


def test_routing_names_machine_without_cycle_time(small_factory_text: str) -> None:
    text = replace_once(small_factory_text, "machines: {robot-1: 5.0}", "machines: {meter-1: 5.0}")
    (problem,) = problems_of(text)
    assert problem.startswith(
        f"factory.yaml:{line_of(text, 'meter-1: 5.0')} products[0].routing[1].machines.meter-1: "
    )
    assert "ideal_cycle_s" in problem


def test_unknown_field(small_factory_text: str) -> None:
    text = replace_once(
        small_factory_text,
        "            calendar: day-shift\n",
        "            calendar: day-shift\n            colour: red\n",
    )
    (problem,) = problems_of(text)
    assert problem.startswith(
        f"factory.yaml:{line_of(text, 'colour: red')} sites[0].areas[0].lines[0].colour: "
        "unknown field"
    ), problem


def test_missing_field_is_reported_at_its_parent(small_factory_text: str) -> None:
    text = replace_once(small_factory_text, "    unit_mass_kg: 0.2\n", "")
    (problem,) = problems_of(text)
    assert (
        problem
        == f"factory.yaml:{line_of(text, '- sku: BRKT-1')} products[0].unit_mass_kg: field required"
    )


def test_yaml_syntax_error(small_factory_text: str) -> None:
    text = replace_once(small_factory_text, "    routing:\n", "    routing: [\n")
    (problem,) = problems_of(text, "broken.yaml")
    prefix, _, message = problem.partition(" (yaml): ")
    assert message, problem
    filename, _, line = prefix.partition(":")
    assert filename == "broken.yaml"
    assert line.isdigit()
    assert line_of(text, "routing: [") <= int(line) <= len(text.splitlines()) + 1


def test_yaml_syntax_error_line_is_exact() -> None:
    text = "schema_version: 1\ncompany:\n  name: x\n  name: [unclosed\nsites: []\n"
    (problem,) = problems_of(text)
    assert problem.startswith("factory.yaml:5 (yaml): "), problem


def test_not_a_mapping() -> None:
    (problem,) = problems_of("- just\n- a list\n")
    assert problem.startswith("factory.yaml:1 (file): ")


def test_duplicate_machine_id(small_factory_text: str) -> None:
    text = replace_once(small_factory_text, "{id: cnc-2, kind: cnc,", "{id: cnc-1, kind: cnc,")
    line = line_of(text, "id: cnc-1", nth=2)
    (problem,) = problems_of(text)
    assert problem.startswith(
        f"factory.yaml:{line} sites[0].areas[0].lines[0].cells[1].machines[0].id: "
        "machine id 'cnc-1' is used twice"
    ), problem


def test_duplicate_machine_id_in_one_cell(small_factory_text: str) -> None:
    text = replace_once(
        small_factory_text, "{id: robot-1, kind: robot_arm,", "{id: cnc-1, kind: robot_arm,"
    )
    (problem,) = problems_of(text)
    assert "sites[0].areas[0].lines[0].cells[0]" in problem
    assert "'cnc-1' appears more than once" in problem


def test_unknown_calendar_on_line(small_factory_text: str) -> None:
    text = replace_once(small_factory_text, "calendar: day-shift", "calendar: night-shift")
    (problem,) = problems_of(text)
    assert problem == (
        f"factory.yaml:{line_of(text, 'calendar: night-shift')} "
        "sites[0].areas[0].lines[0].calendar: 'night-shift' is not a calendar id; known: day-shift"
    )


def test_several_problems_are_all_reported(small_factory_text: str) -> None:
    text = replace_once(small_factory_text, "kind: robot_arm", "kind: cnc2")
    text = replace_once(text, "unit_price_hkd: 12.5", "unit_price_hkd: -1")
    problems = problems_of(text)
    assert len(problems) == 2
    assert any(".kind: 'cnc2'" in p for p in problems)
    assert any(
        p.startswith(f"factory.yaml:{line_of(text, 'unit_price_hkd')} products[0].unit_price_hkd:")
        for p in problems
    )


def test_format_loc() -> None:
    assert format_loc(()) == "(file)"
    assert format_loc(("sites", 0, "areas")) == "sites[0].areas"
    assert format_loc(("products", 1, "routing", 0, "machines", "cnc-1")) == (
        "products[1].routing[0].machines.cnc-1"
    )


# ------------------------------------------------------------------------------ calendar


def small_calendar(text: str):  # type: ignore[no-untyped-def]
    return parse_factory(text).calendar("day-shift")


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def day_span(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(0, 0), HKT)
    return start, start + dt.timedelta(days=1)


def test_working_windows_on_a_monday(small_factory_text: str) -> None:
    calendar = small_calendar(small_factory_text)
    monday = dt.date(2026, 11, 23)
    assert monday.isoweekday() == 1
    windows = working_windows(calendar, *day_span(monday), HKT)
    assert [(w.start, w.end) for w in windows] == [
        (utc(2026, 11, 23, 0, 0), utc(2026, 11, 23, 4, 0)),
        (utc(2026, 11, 23, 4, 30), utc(2026, 11, 23, 8, 0)),
    ]
    assert all(w.shift == "day" and w.day == monday for w in windows)
    assert all(w.start.utcoffset() == dt.timedelta(0) for w in windows)
    assert [w.start.astimezone(HKT).strftime("%H:%M") for w in windows] == ["08:00", "12:30"]
    assert [w.end.astimezone(HKT).strftime("%H:%M") for w in windows] == ["12:00", "16:00"]
    assert sum(w.seconds for w in windows) == 7.5 * 3600
    assert is_working(windows, utc(2026, 11, 23, 3, 59))
    assert not is_working(windows, utc(2026, 11, 23, 4, 0))
    assert not is_working(windows, utc(2026, 11, 23, 4, 15))
    assert is_working(windows, utc(2026, 11, 23, 4, 30))
    assert not is_working(windows, utc(2026, 11, 23, 8, 0))


def test_working_windows_are_clipped(small_factory_text: str) -> None:
    calendar = small_calendar(small_factory_text)
    windows = working_windows(calendar, utc(2026, 11, 23, 2, 0), utc(2026, 11, 23, 5, 0), HKT)
    assert [(w.start, w.end) for w in windows] == [
        (utc(2026, 11, 23, 2, 0), utc(2026, 11, 23, 4, 0)),
        (utc(2026, 11, 23, 4, 30), utc(2026, 11, 23, 5, 0)),
    ]


def test_no_windows_on_christmas(small_factory_text: str) -> None:
    calendar = small_calendar(small_factory_text)
    christmas = dt.date(2026, 12, 25)
    assert christmas.isoweekday() == 5  # a Friday: only the holiday keeps the line off
    assert working_windows(calendar, *day_span(christmas), HKT) == []
    # The same weekday a week earlier works as usual.
    assert len(working_windows(calendar, *day_span(dt.date(2026, 12, 18)), HKT)) == 2
    # Without the HK holiday calendar the line would work on Christmas.
    assert len(working_windows(calendar, *day_span(christmas), HKT, holiday_calendar=None)) == 2


def test_no_windows_on_saturday(small_factory_text: str) -> None:
    calendar = small_calendar(small_factory_text)
    saturday = dt.date(2026, 11, 28)
    assert saturday.isoweekday() == 6
    assert working_windows(calendar, *day_span(saturday), HKT) == []


def test_working_week(small_factory_text: str) -> None:
    calendar = small_calendar(small_factory_text)
    start = dt.datetime(2026, 11, 23, tzinfo=HKT)
    windows = working_windows(calendar, start, start + dt.timedelta(days=7), HKT)
    assert len(windows) == 10
    assert sorted({w.day.isoweekday() for w in windows}) == [1, 2, 3, 4, 5]
    assert windows == sorted(windows, key=lambda w: w.start)


def test_working_windows_need_aware_times(small_factory_text: str) -> None:
    calendar = small_calendar(small_factory_text)
    with pytest.raises(ValueError, match="aware"):
        working_windows(calendar, dt.datetime(2026, 11, 23), dt.datetime(2026, 11, 24), HKT)


def test_point_states_accept_yaml_int_and_bool_keys() -> None:
    from microfab.model.factory import PointMap

    numeric = PointMap.model_validate(
        {"point": "ns=2;s=State", "stream": "state", "states": {1: "running", 2.0: "idle"}}
    )
    assert numeric.states == {"1": "running", "2": "idle"}
    flag = PointMap.model_validate(
        {"point": "Run", "stream": "state", "states": {True: "running", False: "idle"}}
    )
    assert flag.states == {"true": "running", "false": "idle"}


# ------------------------------------------------------------------------------ connect blocks


def _with_connect(text: str, connect: str) -> str:
    """``text`` with cnc-1 given the connect block ``connect`` (YAML flow style, one line)."""
    return replace_once(text, "- {id: cnc-1,", f"- {{connect: {connect}, id: cnc-1,")


def test_a_pattern_mismatch_says_what_the_field_expects(small_factory_text: str) -> None:
    text = _with_connect(
        small_factory_text,
        '{opcua: {endpoint: "10.0.0.5:4840", points: [{point: "ns=2;s=A", stream: telemetry}]}}',
    )
    text = replace_once(text, 'start: "08:00"', 'start: "8am"')
    text = replace_once(text, "{code: PB,", "{code: pb,")
    text = replace_once(text, "id: cnc-2", "id: CNC-2")
    problems = problems_of(text)
    messages = [p.split(": ", 1)[1] for p in problems]
    assert (
        "sites[0].areas[0].lines[0].cells[0].machines[0].connect.opcua.endpoint: '10.0.0.5:4840' "
        "is not an OPC UA endpoint: it must start with opc.tcp:// (e.g. opc.tcp://10.0.0.5:4840)"
    ) in [p.split(" ", 1)[1] for p in problems]
    assert "'8am' is not a time of day: write HH:MM, 00:00 to 24:00" in messages
    assert (
        "'pb' is not a reason code: use upper-case letters, digits, '_', '.' or '-' (at most 32)"
    ) in messages
    assert "'CNC-2' is not a valid id: use lower-case letters, digits, '-' or '_'" in messages
    assert sum("valid id" in m for m in messages) == 1  # only the id field gets the id message


def test_modbus_pulse_counts_and_4xxxx_addresses_are_refused(small_factory_text: str) -> None:
    points = (
        '[{point: "2", stream: count, field: good, cumulative: false},'
        ' {point: "40007", stream: telemetry},'
        ' {point: "400010", stream: energy},'
        ' {point: "0x9c47", stream: telemetry},'
        ' {point: "40007", table: coil, stream: telemetry},'
        ' {point: "4", stream: energy, deadband: 1}]'
    )
    text = _with_connect(small_factory_text, f"{{modbus: {{host: plc, points: {points}}}}}")
    problems = problems_of(text)
    line = line_of(text, "id: cnc-1")
    where = f"factory.yaml:{line} sites[0].areas[0].lines[0].cells[0].machines[0].connect.modbus"
    assert problems == [
        f"{where}.points[0]: cumulative: false cannot be used with Modbus: a register is read "
        "again at every poll, so the same parts would be counted again; map the PLC's running "
        "total (cumulative: true, the default)",
        f"{where}.points[1]: point '40007' looks like a 4xxxx reference; write the 0-based address "
        "6 (if the device really uses address 40007, write it in hex: '0x9c47')",
        f"{where}.points[2]: point '400010' looks like a 4xxxx reference; write the 0-based "
        "address 9",
        f"{where}.points[5]: deadband is for telemetry points only",
    ]


def test_modbus_heartbeat_and_deadband_defaults(small_factory_text: str) -> None:
    text = _with_connect(
        small_factory_text,
        '{modbus: {host: plc, points: [{point: "6", stream: telemetry, deadband: 0.2}]}}',
    )
    factory = parse_factory(text)
    connect = factory.machine("kt/plant/line1/machining/cnc-1").machine.connect
    assert connect is not None and connect.modbus is not None
    assert connect.modbus.heartbeat_s == 60.0
    assert connect.modbus.points[0].deadband == 0.2
