"""Work orders: requests checked against the factory, order events written idempotently, and
status, progress, WIP, expected completion and lateness read back, from hand-built events with
exact answers and from the simulator, on SQLite and PostgreSQL, through the API and the CLI."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections import defaultdict
from functools import cache
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from conftest import DATA
from microfab import cli
from microfab.commands.orders import orders_app, trace
from microfab.connect.publisher import ListPublisher
from microfab.errors import InputError, NotFoundError, TimeRangeError
from microfab.model.events import EVENT_ADAPTER, Event, OrderEvent, PartCount
from microfab.model.factory import Factory
from microfab.model.factory_file import parse_factory
from microfab.model.orders import (
    StepFacts,
    WorkOrderRequest,
    check_request,
    order_progress,
    parse_due,
    request_from_json,
)
from microfab.sim.engine import FactorySimulation
from microfab.sim.scenario import load_scenario
from microfab.store import EventStore
from microfab.track.orders import (
    cancel_order,
    create_order,
    get_order,
    list_orders,
    order_event_id,
    release_order,
    wip,
)

runner = CliRunner()
HKT = dt.timezone(dt.timedelta(hours=8))
CNC1 = "kt/plant/line1/machining/cnc-1"
CNC2 = "kt/plant/line1/utility/cnc-2"
ROBOT1 = "kt/plant/line1/machining/robot-1"
ROBOT_PICK = "tp/kitchen/meal-1/pick/robot-1"


def at(hhmm: str, day: int = 23) -> dt.datetime:
    hour, minute = hhmm.split(":")
    return dt.datetime(2026, 11, day, int(hour), int(minute), tzinfo=HKT)


def event(stream: str, name: str, ts: dt.datetime, machine: str, **fields: Any) -> Event:
    return EVENT_ADAPTER.validate_python(
        {"id": name, "ts": ts, "machine": machine, "stream": stream, **fields}
    )


@cache
def food_line() -> Factory:
    return load_scenario("food-line").factory


@cache
def simulated(hours: float = 3.0) -> tuple[Event, ...]:
    """Three simulated hours of the food line (seed 1), simulated once per test session."""
    publisher = ListPublisher()
    FactorySimulation(load_scenario("food-line"), publisher, seed=1).run_until(hours * 3600)
    return tuple(publisher.events)


@pytest.fixture
def small(store: EventStore) -> tuple[EventStore, Factory]:
    factory = parse_factory((DATA / "factory-small.yaml").read_text())
    store.apply_factory(factory, "small.yaml")
    return store, factory


@pytest.fixture
def food(store: EventStore) -> tuple[EventStore, Factory]:
    scenario = load_scenario("food-line")
    store.apply_factory(scenario.factory, scenario.factory_source)
    return store, scenario.factory


def local_app() -> typer.Typer:
    """The orders commands and `trace` on an app of their own (cli.py registers them later)."""
    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    app.add_typer(orders_app, name="orders")
    app.command()(trace)
    return app


def invoke(*args: str) -> str:
    result = runner.invoke(local_app(), list(args), env={"COLUMNS": "120"})
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout


def run_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """Run the real entry point (cli.main: microfab errors -> one sentence, exit code)."""
    monkeypatch.setattr(cli, "app", local_app())
    monkeypatch.setattr(sys, "argv", ["microfab", *args])
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    captured = capsys.readouterr()
    code = stopped.value.code
    return (code if isinstance(code, int) else 1), captured.out, captured.err


def flat(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------------------- the request


def request(**fields: Any) -> WorkOrderRequest:
    base: dict[str, Any] = {
        "product": "MEAL-CHK-RICE",
        "options": {"portion": "large", "sauce": "soy"},
        "quantity": 120,
        "due": at("17:00", 25),
    }
    return WorkOrderRequest(**{**base, **fields})


def test_a_valid_request_is_normalised() -> None:
    valid = check_request(
        food_line(), request(options={"sauce": "soy", "portion": "large"}, priority=2)
    )
    assert list(valid.options) == ["portion", "sauce"]  # the product's option order
    assert valid.due == dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
    assert valid.time_factor == pytest.approx(1.15)
    assert (valid.quantity, valid.priority, valid.order) == (120, 2, None)


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"product": "MEAL-XXX"}, NotFoundError, "product: 'MEAL-XXX' is not a product"),
        ({"options": {"portion": "xl", "sauce": "soy"}}, NotFoundError, "options.portion: 'xl'"),
        (
            {"options": {"portion": "large", "sauce": "soy", "colour": "red"}},
            NotFoundError,
            "options: 'colour' is not an option of MEAL-CHK-RICE; its options: portion, sauce",
        ),
        (
            {"options": {"portion": "large"}},
            InputError,
            "options: MEAL-CHK-RICE needs a choice for sauce (soy, ginger-scallion)",
        ),
        ({"quantity": 0}, InputError, "quantity: must be a whole number from 1"),
        ({"quantity": -5}, InputError, "quantity:"),
        ({"quantity": 2**31}, InputError, "quantity:"),
        ({"priority": 0}, InputError, "priority: must be 1 (most urgent) to 9"),
        ({"priority": 10}, InputError, "priority:"),
        ({"due": dt.datetime(2026, 11, 25, 17, 0)}, TimeRangeError, "due: "),
        ({"order": "WO 1"}, InputError, "order: 'WO 1' is not a work-order id"),
        ({"order": "x" * 41}, InputError, "order: "),
    ],
)
def test_bad_requests_name_the_field(
    fields: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as raised:
        check_request(food_line(), request(**fields))
    assert str(raised.value).startswith(message.split(":")[0] + ":")
    assert message in str(raised.value)


def test_a_product_without_options_takes_none() -> None:
    factory = parse_factory((DATA / "factory-small.yaml").read_text())
    valid = check_request(factory, WorkOrderRequest(product="BRKT-1", quantity=5))
    assert valid.options == {}
    with pytest.raises(NotFoundError, match="BRKT-1, which has no options"):
        check_request(
            factory, WorkOrderRequest(product="BRKT-1", quantity=5, options={"size": "m"})
        )


def test_due_times_as_users_write_them() -> None:
    zone = food_line().sites[0].zone
    assert parse_due("2026-11-25T17:00", zone) == dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC)
    assert parse_due("2026-11-25T17:00Z", zone) == dt.datetime(2026, 11, 25, 17, tzinfo=dt.UTC)
    end_of_day = dt.datetime(2026, 11, 25, 15, 59, 59, tzinfo=dt.UTC)  # 23:59:59 HKT
    assert parse_due("2026-11-25", zone) == end_of_day
    with pytest.raises(TimeRangeError, match=r"^due: 'next week' is not a time"):
        parse_due("next week", zone)


def test_a_request_from_a_rest_body() -> None:
    zone = food_line().sites[0].zone
    body = {"product": "MEAL-VEG-NOODLE", "options": {"spice": "hot"}, "quantity": 40}
    parsed = request_from_json({**body, "due": "2026-11-25T17:00", "priority": 3}, zone)
    assert parsed.due == dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC) and parsed.priority == 3
    with pytest.raises(InputError, match=r"^quantity: Input should be a valid integer"):
        request_from_json({**body, "quantity": "many"}, zone)
    with pytest.raises(InputError, match=r"^product: Field required"):
        request_from_json({"quantity": 1}, zone)
    with pytest.raises(TimeRangeError, match=r"^due: "):
        request_from_json({**body, "due": "someday"}, zone)


def test_progress_maths_of_a_three_step_order() -> None:
    steps = [
        StepFacts(10, 10.0, good=8, scrap=2, started=True, completed=True),
        StepFacts(20, 5.0, good=3, scrap=1, started=True, completed=False),
        StepFacts(30, 1.0, good=0, scrap=0, started=False, completed=False),
    ]
    progress = order_progress(10, steps, on_floor=True, finished=False)
    planned = [s.planned for s in progress.steps]
    # step 20 gets step 10's good output once step 10 is complete; step 30 what step 20 can
    # still deliver (its plan less its scrap)
    assert planned == [10, 8, 7]
    assert [s.wip for s in progress.steps] == [0, 4, 3]
    assert [s.status for s in progress.steps] == ["done", "running", "waiting"]
    assert progress.done_s == 10 * 10 + 4 * 5
    assert progress.remaining_s == (10 * 10 + 8 * 5 + 7 * 1) - 120
    assert progress.progress == pytest.approx(120 / 147)
    # work in progress + scrap + finished good = ordered quantity
    assert sum(s.wip for s in progress.steps) + 2 + 1 + 0 == 10


# ---------------------------------------------------------------------------- writing


def test_create_stores_one_event_with_a_derived_id_and_a_retry_stores_nothing(
    food: tuple[EventStore, Factory],
) -> None:
    store, factory = food
    wanted = request(order="WO-A1", priority=2)
    change = create_order(store, factory, wanted, now=at("09:00"))
    assert change.stored == 1
    (stored,) = [s.event for s in store.events(stream="order")]
    assert isinstance(stored, OrderEvent)
    assert stored.id == order_event_id("WO-A1", "created") == "order:WO-A1:created"
    assert stored.machine == ROBOT_PICK  # first eligible machine of the first step
    assert (stored.event.value, stored.product, stored.quantity) == (
        "created",
        "MEAL-CHK-RICE",
        120,
    )
    assert stored.options == {"portion": "large", "sauce": "soy"}
    assert (stored.priority, stored.due) == (2, dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC))
    view = change.view
    assert (view.order, view.status, view.quantity, view.priority) == ("WO-A1", "created", 120, 2)
    assert view.created == at("09:00")

    again = create_order(store, factory, wanted, now=at("09:05"))  # a retried command
    assert again.stored == 0
    assert store.count() == 1
    with pytest.raises(InputError, match=r"^order: 'WO-A1' already exists with other details"):
        create_order(store, factory, request(order="WO-A1", quantity=99), now=at("09:06"))


def test_orders_without_an_id_are_numbered_per_day(food: tuple[EventStore, Factory]) -> None:
    store, factory = food
    first = create_order(store, factory, request(), now=at("09:00"))
    second = create_order(store, factory, request(), now=at("09:01"))
    next_day = create_order(store, factory, request(), now=at("09:00", 24))
    assert [first.view.order, second.view.order, next_day.view.order] == [
        "WO261123-001",
        "WO261123-002",
        "WO261124-001",
    ]


def test_release_repeats_the_details_and_cancel_withdraws(food: tuple[EventStore, Factory]) -> None:
    store, factory = food
    create_order(store, factory, request(order="WO-A1"), now=at("09:00"))
    released = release_order(store, factory, "WO-A1", now=at("09:30"))
    assert released.stored == 1 and released.view.status == "released"
    assert release_order(store, factory, "WO-A1", now=at("09:31")).stored == 0
    (row,) = store.order_status()
    assert (row.status, row.product, row.quantity) == ("released", "MEAL-CHK-RICE", 120)
    assert row.released_ts == at("09:30")
    (ev,) = [s.event for s in store.events(stream="order") if s.event.id.endswith(":released")]
    assert isinstance(ev, OrderEvent)
    assert (ev.machine, ev.options, ev.due) == (
        ROBOT_PICK,
        {"portion": "large", "sauce": "soy"},
        dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC),
    )

    cancelled = cancel_order(store, factory, "WO-A1", now=at("10:00"))
    assert (cancelled.stored, cancelled.view.status) == (1, "cancelled")
    assert cancelled.view.cancelled == at("10:00") and not cancelled.view.late
    assert cancel_order(store, factory, "WO-A1", now=at("10:01")).stored == 0
    with pytest.raises(InputError, match=r"^order: 'WO-A1' was cancelled"):
        release_order(store, factory, "WO-A1")
    with pytest.raises(NotFoundError, match=r"^order: 'WO-9' is not a known work order"):
        release_order(store, factory, "WO-9")
    with pytest.raises(NotFoundError, match=r"^order: 'WO-9'"):
        cancel_order(store, factory, "WO-9")
    with pytest.raises(NotFoundError, match=r"^order: 'WO-9'"):
        get_order(store, factory, "WO-9")


def test_create_and_release_at_once(food: tuple[EventStore, Factory]) -> None:
    store, factory = food
    change = create_order(store, factory, request(order="WO-B"), release=True, now=at("09:00"))
    assert (change.stored, change.view.status) == (2, "released")
    assert create_order(store, factory, request(order="WO-B"), release=True).stored == 0


def test_a_simulated_order_cannot_be_recreated_and_a_completed_one_not_cancelled(
    food: tuple[EventStore, Factory],
) -> None:
    store, factory = food
    store.append(simulated())
    views = {v.order: v for v in list_orders(store, factory)}
    done = next(v for v in views.values() if v.status == "completed")
    with pytest.raises(InputError, match=f"^order: '{done.order}' is completed"):
        cancel_order(store, factory, done.order)
    with pytest.raises(InputError, match=f"^order: '{done.order}' already exists"):
        create_order(store, factory, request(order=done.order))
    assert release_order(store, factory, done.order).stored == 0  # already on the floor


# ---------------------------------------------------------------------------- reading


def small_order(store: EventStore, factory: Factory, due: dt.datetime) -> None:
    create_order(
        store,
        factory,
        WorkOrderRequest(order="WO-S", product="BRKT-1", quantity=10, due=due),
        now=at("08:00"),
    )
    release_order(store, factory, "WO-S", now=at("08:10"))
    store.append(
        [
            event("order", "s1", at("08:20"), CNC1, order="WO-S", event="started", operation=10),
            event("count", "c1", at("08:40"), CNC1, good=3, scrap=1, order="WO-S", operation=10),
            event("count", "c2", at("09:00"), CNC1, good=2, order="WO-S", operation=10),
        ]
    )


def test_progress_wip_expected_completion_and_late_flag(
    small: tuple[EventStore, Factory],
) -> None:
    store, factory = small
    small_order(store, factory, due=at("10:00"))
    view = get_order(store, factory, "WO-S", now=at("09:20"))
    assert (view.status, view.good, view.scrap, view.wip) == ("in_progress", 0, 1, 9)
    step10, step20 = view.operations
    assert (step10.planned, step10.good, step10.scrap, step10.wip) == (10, 5, 1, 4)
    assert (step10.status, step10.wip_machine, step10.started) == ("running", CNC1, at("08:20"))
    assert (step20.planned, step20.wip, step20.status) == (9, 5, "waiting")
    assert step20.wip_machine == ROBOT1  # not started: its only eligible machine
    # standard work: 10 × 32 s + 9 × 5 s = 365 s, of which 6 × 32 s = 192 s done in the hour
    # since the step started; 173 s left at 192 s per hour
    assert view.work_progress == pytest.approx(192 / 365)
    assert view.progress == 0.0  # nothing out of the last operation yet (docs/production.md)
    assert view.expected_basis == "observed"
    assert view.expected_completion == at("09:20") + dt.timedelta(seconds=173 * 3600 / 192)
    assert view.expected_completion == dt.datetime(2026, 11, 23, 2, 14, 3, 750000, tzinfo=dt.UTC)
    assert view.late  # expected 10:14 after due 10:00

    report = wip(store, factory, now=at("09:20"))
    assert report.by_machine() == [(CNC1, 4, 1), (ROBOT1, 5, 1)]
    assert report.by_operation() == [
        ("BRKT-1", 10, "Machine", 4, 1),
        ("BRKT-1", 20, "Unload", 5, 1),
    ]


@pytest.mark.parametrize(
    ("due", "now", "late"),
    [
        (at("11:00"), at("09:20"), False),  # expected 10:14, due 11:00
        (at("09:10"), at("09:20"), True),  # due passed
        (at("10:00"), at("09:20"), True),  # expected after due
    ],
)
def test_late_rule(
    small: tuple[EventStore, Factory], due: dt.datetime, now: dt.datetime, late: bool
) -> None:
    store, factory = small
    small_order(store, factory, due=due)
    assert get_order(store, factory, "WO-S", now=now).late is late
    assert [v.order for v in list_orders(store, factory, now=now, late=True)] == (
        ["WO-S"] if late else []
    )


def test_a_created_order_is_expected_at_routing_times_and_holds_no_wip(
    small: tuple[EventStore, Factory],
) -> None:
    store, factory = small
    create_order(
        store,
        factory,
        WorkOrderRequest(order="WO-C", product="BRKT-1", quantity=10),
        now=at("08:00"),
    )
    view = get_order(store, factory, "WO-C", now=at("08:30"))
    assert (view.status, view.wip, view.work_progress, view.expected_basis) == (
        "created",
        0,
        0.0,
        "standard",
    )
    assert view.expected_completion == at("08:30") + dt.timedelta(seconds=10 * 32 + 10 * 5)
    assert not view.late  # no due time
    assert view.operations[0].wip_machine == CNC1  # the machine it was created on


def test_a_completed_order(small: tuple[EventStore, Factory]) -> None:
    store, factory = small
    small_order(store, factory, due=at("10:00"))
    store.append(
        [
            event("count", "c3", at("09:20"), CNC2, good=4, order="WO-S", operation=10),
            event("order", "k1", at("09:21"), CNC1, order="WO-S", event="completed", operation=10),
            event("count", "c4", at("10:10"), ROBOT1, good=8, scrap=1, order="WO-S", operation=20),
            event("order", "k2", at("10:11"), ROBOT1, order="WO-S", event="completed"),
        ]
    )
    view = get_order(store, factory, "WO-S", now=at("12:00"))
    assert (view.status, view.good, view.scrap, view.wip, view.work_progress) == (
        "completed",
        8,
        2,
        0,
        1.0,
    )
    assert view.progress == 8 / 10  # good out of the last operation / quantity
    assert (view.expected_completion, view.expected_basis) == (at("10:11"), "completed")
    assert not view.late and view.completed_late
    step10 = view.operations[0]
    assert [(m.machine, m.good, m.scrap) for m in step10.machines] == [
        (CNC1, 5, 1),
        (CNC2, 4, 0),
    ]
    assert view.operations[1].planned == 9 and view.operations[1].status == "done"


def test_counts_outside_the_routing_are_shown_apart(small: tuple[EventStore, Factory]) -> None:
    store, factory = small
    small_order(store, factory, due=at("10:00"))
    store.append(
        [
            event("count", "x1", at("09:05"), CNC2, good=1, order="WO-S", operation=99),
            event("count", "x2", at("09:06"), CNC2, good=1, order="WO-S"),
        ]
    )
    view = get_order(store, factory, "WO-S", now=at("09:20"))
    extra = [(op.seq, op.name, op.status, op.good) for op in view.operations[2:]]
    assert extra == [
        (99, "(not in the routing)", "unplanned", 1),
        (None, "(no step named)", "unplanned", 1),
    ]


def test_simulated_orders_agree_with_the_read_model_and_the_events(
    food: tuple[EventStore, Factory],
) -> None:
    store, factory = food
    events = simulated()
    store.append(events)
    now = max(e.ts for e in events)
    views = list_orders(store, factory)
    rows = {r.order: r for r in store.order_status()}
    assert [v.order for v in views] == sorted(rows)
    per_step: dict[tuple[str, int | None], list[int]] = defaultdict(lambda: [0, 0])
    for e in events:
        if isinstance(e, PartCount) and e.order is not None:
            per_step[(e.order, e.operation)][0] += e.good
            per_step[(e.order, e.operation)][1] += e.scrap
    assert any(v.status == "in_progress" for v in views)
    for v in views:
        row = rows[v.order]
        assert v.as_of == now  # the plant clock: the newest stored event
        assert (v.status, v.product, v.quantity) == (row.status, row.product, row.quantity)
        assert sum(op.good for op in v.operations) == row.good
        assert sum(op.scrap for op in v.operations) == v.scrap == row.scrap
        for op in v.operations:
            assert [op.good, op.scrap] == per_step.get((v.order, op.seq), [0, 0])
        assert v.quantity is not None
        if v.status in ("released", "in_progress"):
            # every ordered unit is in progress, scrapped or finished
            assert v.wip + v.scrap + v.good == v.quantity
            assert v.expected_completion is not None and v.expected_completion >= now
            assert v.due is not None
            assert v.late is (now > v.due or v.expected_completion > v.due)
            assert 0 <= (v.progress or 0) < 1
        else:
            assert v.wip == 0
    report = wip(store, factory)
    assert sum(units for _, units, _ in report.by_machine()) == sum(v.wip for v in views)
    assert sum(r[3] for r in report.by_operation()) == sum(v.wip for v in views)


# ---------------------------------------------------------------------------- the CLI


def test_cli_create_release_cancel_list_show(food: tuple[EventStore, Factory]) -> None:
    store, _ = food
    db = ["--db", store.url]
    text = invoke(
        "orders", "create", "MEAL-CHK-RICE", "-q", "120", "-o", "portion=large,sauce=soy",
        "--due", "2026-11-25T17:00", "-p", "2", "--id", "WO-A1", *db,
    )  # fmt: skip
    assert flat(text) == (
        "created WO-A1: 120 × MEAL-CHK-RICE (portion=large, sauce=soy), due 2026-11-25 17:00, "
        "priority 2"
    )
    again = invoke(
        "orders", "create", "MEAL-CHK-RICE", "-q", "120", "-o", "portion=large",
        "-o", "sauce=soy", "--due", "2026-11-25T09:00Z", "-p", "2", "--id", "WO-A1", *db,
    )  # fmt: skip
    assert "already exists with these details" in again and "nothing stored" in again
    assert flat(invoke("orders", "release", "WO-A1", *db)) == "released WO-A1 (status released)"
    assert "already released; nothing stored" in invoke("orders", "release", "WO-A1", *db)
    listed = json.loads(invoke("orders", "list", "--json", *db))
    assert [(o["order"], o["status"], o["quantity"]) for o in listed] == [
        ("WO-A1", "released", 120)
    ]
    shown = json.loads(invoke("orders", "show", "WO-A1", "--json", *db))
    assert shown["options"] == {"portion": "large", "sauce": "soy"}
    assert shown["due"] == "2026-11-25T09:00:00.000Z"
    assert [op["operation"] for op in shown["operations"]] == [10, 20, 30, 40, 50, 60, 70]
    assert shown["operations"][0]["wip"] == 120
    table = flat(invoke("orders", "show", "WO-A1", *db))
    assert "Work order 工單 WO-A1: Soy chicken rice box (MEAL-CHK-RICE), portion=large" in table
    assert "Pick ingredients" in table
    assert "WO-A1" in flat(invoke("orders", "list", *db))
    wip_json = json.loads(invoke("orders", "wip", "--json", *db))
    assert wip_json["by_machine"] == [{"machine": ROBOT_PICK, "units": 120, "orders": 1}]
    assert "robot-1" in invoke("orders", "wip", *db)
    cancelled = json.loads(invoke("orders", "cancel", "WO-A1", "--json", *db))
    assert cancelled["stored"] == 1 and cancelled["order"]["status"] == "cancelled"
    assert invoke("orders", "list", "--status", "released", "--json", *db).strip() == "[]"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["MEAL-XXX", "-q", "5"], "error: product: 'MEAL-XXX' is not a product of this factory"),
        (["MEAL-CHK-RICE", "-q", "0", "-o", "portion=large,sauce=soy"], "error: quantity:"),
        (["MEAL-CHK-RICE", "-q", "5", "-o", "portion=xl,sauce=soy"], "error: options.portion:"),
        (["MEAL-CHK-RICE", "-q", "5", "-o", "portion"], "error: options: 'portion' is not NAME"),
        (["MEAL-CHK-RICE", "-q", "5", "-o", "portion=large"], "error: options: MEAL-CHK-RICE"),
        (
            ["MEAL-CHK-RICE", "-q", "5", "-o", "portion=large,sauce=soy", "--due", "soon"],
            "error: due: 'soon' is not a time",
        ),
        (
            ["MEAL-CHK-RICE", "-q", "5", "-o", "portion=large,sauce=soy", "-p", "12"],
            "error: priority:",
        ),
        (["MEAL-CHK-RICE", "-q", "five"], "'--quantity'"),
    ],
)
def test_cli_bad_input_exits_2_with_one_sentence(
    food: tuple[EventStore, Factory],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    store, _ = food
    code, _, err = run_main(monkeypatch, capsys, "orders", "create", *args, "--db", store.url)
    assert code == 2, err
    assert message in flat(err)
    assert "Traceback" not in err
    assert store.count() == 0


def test_cli_unknown_orders_and_refused_changes_exit_2(
    food: tuple[EventStore, Factory],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, factory = food
    create_order(store, factory, request(order="WO-A1"), now=at("09:00"))
    cancel_order(store, factory, "WO-A1", now=at("09:10"))
    for args, message in [
        (["orders", "show", "WO-9"], "error: order: 'WO-9' is not a known work order"),
        (["orders", "release", "WO-9"], "error: order: 'WO-9' is not a known work order"),
        (["orders", "cancel", "WO-9"], "error: order: 'WO-9' is not a known work order"),
        (["trace", "WO-9"], "error: order: 'WO-9' is not a known work order"),
        (["orders", "release", "WO-A1"], "error: order: 'WO-A1' was cancelled"),
        (["orders", "list", "--status", "done"], "error: status: 'done' is not one of"),
    ]:
        code, _, err = run_main(monkeypatch, capsys, *args, "--db", store.url)
        assert (code, flat(err).startswith(message)) == (2, True), (args, err)


def test_every_orders_command_is_shown_in_the_docs() -> None:
    from test_docs import _commands, _docs_text

    text = _docs_text()
    missing = [name for name in _commands(local_app()) if f"microfab {name}" not in text]
    assert not missing, f"commands with no example in README.md or docs/: {missing}"
