"""Work orders: a request checked against the factory, and the progress maths of an order.

Pure (no store, no clock): :mod:`microfab.track.orders` reads the events and calls these.

**Request.** A work order names a product of the factory, one choice for every variant option of
that product (a custom order: ``{"portion": "large", "sauce": "soy"}``), a quantity ≥ 1, an
optional due time (aware: with a UTC offset) and a priority from 1 (most urgent) to 9 (5 when not
given). :func:`check_request` raises the most specific :class:`~microfab.errors.InputError`, its
message starting with the field at fault (``quantity: …``, ``options.portion: …``).

**Progress.** Every routing step has a *planned* quantity: the units expected to reach it. The
first step plans the ordered quantity; a later step plans the good output of the step before it
once that step is complete, and until then what is still expected of it (its plan less its
scrap). A step's *processed* units are its good plus scrap. The *standard work* of a step is its
planned units × the routing's seconds per unit on the fastest eligible machine × the order's
option time factors; an order's progress is the standard work processed over the standard work
planned, so a slow step weighs more than a quick one. A completed order is 100 %.

**Work in progress.** Units that have reached a step and not come out of it: the ordered
quantity for the first step once the order is released, the previous step's good output for a
later step, less the step's processed units. Only open (released, in progress) orders hold WIP.

**Expected completion.** With work done, at the *observed rate*: standard work processed per
second since the order started (its first step start, else its release) → now + remaining
standard work ÷ that rate. Before any work is counted there is no rate: now + the remaining
standard work (the steps one after another at routing speed, no queues, no stops), an optimistic
figure, so an order late even by it is certainly late.

**One expected completion.** :func:`order_completion` is the one place the figure every page,
the API and the CLI show is chosen: a completed order's completion time; for an open order the
plan's planned end once a plan holds the order and that end is still ahead of the plant clock
(basis ``plan``); otherwise (no plan, the order not in it, or the plan overtaken by the clock)
the estimate above.

**Late.** An order is late when it is not done (not completed or cancelled), has a due time, and
either the due time has passed or its expected completion is after it.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from microfab.errors import InputError, NotFoundError, TimeRangeError
from microfab.model.events import MAX_INT
from microfab.model.factory import Factory, Operation, Product
from microfab.model.timerange import parse_time

DEFAULT_PRIORITY = 5
"""Priority of an order that gives none (1 is the most urgent, 9 the least)."""

ORDER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
"""Ids of orders created by microfab: 1-40 letters, digits, '.', '_' or '-'."""

_MAX_AHEAD = dt.timedelta(days=3650)
"""Expected completions further out than this are shown as this far out (a stalled order)."""

StepStatus = Literal["waiting", "running", "done", "skipped"]


class WorkOrderRequest(BaseModel):
    """A work order as a planner asks for it (CLI options, REST body), before it is checked."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    order: str | None = Field(
        default=None, description="Order id; none = the next WOyymmdd-nnn of the day"
    )
    product: str = Field(description="Product SKU, as in the factory file")
    options: dict[str, str] = Field(
        default_factory=dict, description="Variant option name -> choice code, one per option"
    )
    quantity: int = Field(description="Units to make, at least 1")
    due: dt.datetime | None = Field(default=None, description="Due time, with a UTC offset")
    priority: int = Field(default=DEFAULT_PRIORITY, description="1 (most urgent) to 9")


def request_from_json(data: Mapping[str, Any], zone: zoneinfo.ZoneInfo) -> WorkOrderRequest:
    """A request from a JSON object (a REST body): ``due`` as text in the forms of
    :func:`parse_due` (site time ``zone`` when it has no offset); a missing field or a wrong type
    is an InputError naming the field. The values are checked by :func:`check_request`."""
    fields = dict(data)
    if isinstance(fields.get("due"), str):
        fields["due"] = parse_due(fields["due"], zone)
    try:
        return WorkOrderRequest.model_validate(fields)
    except ValidationError as exc:
        faults = []
        for err in exc.errors(include_url=False):
            where = ".".join(str(part) for part in err["loc"]) or "(order)"
            faults.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
        raise InputError("; ".join(faults)) from None


@dataclass(frozen=True, slots=True)
class ValidOrder:
    """A request that :func:`check_request` accepted."""

    order: str | None
    product: Product
    options: dict[str, str]
    """Option name -> choice code, in the product's option order."""
    quantity: int
    due: dt.datetime | None
    """UTC, cut to milliseconds (as events carry it)."""
    priority: int

    @property
    def time_factor(self) -> float:
        return time_factor(self.product, self.options)


def check_request(factory: Factory, request: WorkOrderRequest) -> ValidOrder:
    """Check a request against the factory; raise an InputError naming the first field at fault.

    Fields are checked in the order order, product, options, quantity, priority, due."""
    if request.order is not None:
        check_order_id(request.order)
    product = find_product(factory, request.product)
    options = check_options(product, request.options)
    if not 1 <= request.quantity <= MAX_INT:
        raise InputError(
            f"quantity: must be a whole number from 1 to {MAX_INT:,}, got {request.quantity}"
        )
    if not 1 <= request.priority <= 9:
        raise InputError(f"priority: must be 1 (most urgent) to 9 (least), got {request.priority}")
    due = None if request.due is None else check_due(request.due)
    return ValidOrder(request.order, product, options, request.quantity, due, request.priority)


def check_order_id(order: str) -> str:
    if not ORDER_ID.match(order):
        raise InputError(
            f"order: '{order}' is not a work-order id; use 1 to 40 letters, digits, '.', '_' or "
            "'-', starting with a letter or digit (e.g. WO261123-001)"
        )
    return order


def find_product(factory: Factory, sku: str) -> Product:
    """The product with this SKU; NotFoundError (field ``product``) listing the known ones."""
    try:
        return factory.product(sku)
    except KeyError:
        pass
    if not factory.products:
        raise NotFoundError(
            f"product: '{sku}' is not a product of this factory, which has none yet; add "
            "products to the factory file and apply it"
        )
    known = ", ".join(p.sku for p in factory.products)
    raise NotFoundError(f"product: '{sku}' is not a product of this factory; known: {known}")


def check_options(product: Product, chosen: dict[str, str]) -> dict[str, str]:
    """Every option of the product chosen once, every choice one of the option's; returns the
    choices in the product's option order."""
    names = [o.name for o in product.options]
    for name, code in chosen.items():
        option = next((o for o in product.options if o.name == name), None)
        if option is None:
            if not names:
                raise NotFoundError(
                    f"options: '{name}' is not an option of {product.sku}, which has no options"
                )
            raise NotFoundError(
                f"options: '{name}' is not an option of {product.sku}; its options: "
                + ", ".join(names)
            )
        codes = [c.code for c in option.choices]
        if code not in codes:
            raise NotFoundError(
                f"options.{name}: '{code}' is not a choice of {product.sku}; choose one of "
                + ", ".join(codes)
            )
    missing = [o for o in product.options if o.name not in chosen]
    if missing:
        wanted = " and ".join(f"{o.name} ({', '.join(c.code for c in o.choices)})" for o in missing)
        raise InputError(f"options: {product.sku} needs a choice for {wanted}")
    return {name: chosen[name] for name in names}


def check_due(due: dt.datetime) -> dt.datetime:
    if due.tzinfo is None or due.utcoffset() is None:
        raise TimeRangeError(
            f"due: {due.isoformat()} has no UTC offset; write it with 'Z' or '+08:00' (or give "
            "site time as text)"
        )
    due = due.astimezone(dt.UTC)
    return due.replace(microsecond=due.microsecond // 1000 * 1000)


def parse_due(text: str, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """A due time as users write it: ISO-8601 with an offset as written, without one in site time
    (``zone``); a date alone means the end of that day (23:59:59 site time)."""
    stripped = text.strip()
    value = parse_time(stripped, zone, field="due")
    if len(stripped) == 10:  # a date: parse_time gave its midnight
        end = dt.datetime.combine(dt.date.fromisoformat(stripped), dt.time(23, 59, 59))
        value = end.replace(tzinfo=zone).astimezone(dt.UTC)
    return value


def time_factor(product: Product, options: dict[str, str]) -> float:
    """Product of the chosen choices' time factors (unknown options or choices count as 1)."""
    factor = 1.0
    for option in product.options:
        for choice in option.choices:
            if options.get(option.name) == choice.code:
                factor *= choice.time_factor
    return factor


def standard_seconds(operation: Operation, factor: float = 1.0) -> float:
    """Seconds per unit of a step at routing speed on its fastest eligible machine."""
    return min(operation.machines.values()) * factor


# --------------------------------------------------------------------------- progress


@dataclass(frozen=True, slots=True)
class StepFacts:
    """What the events say about one routing step of one order."""

    seq: int
    standard_s: float
    """Standard seconds per unit (see :func:`standard_seconds`)."""
    good: int
    scrap: int
    started: bool
    completed: bool
    """A completed event for the step, after its last start."""


@dataclass(frozen=True, slots=True)
class StepProgress:
    seq: int
    status: StepStatus
    planned: int
    processed: int
    wip: int
    progress: float


@dataclass(frozen=True, slots=True)
class OrderProgress:
    steps: tuple[StepProgress, ...]
    progress: float
    """Share of the planned standard work processed, 0..1."""
    done_s: float
    """Standard work processed, seconds."""
    remaining_s: float
    """Standard work still to do, seconds."""


def order_progress(
    quantity: int, steps: Sequence[StepFacts], *, on_floor: bool, finished: bool
) -> OrderProgress:
    """Planned units, WIP and progress of every step and of the order (module docstring).

    ``on_floor``: released and not yet completed or cancelled (only then are there units in
    progress); ``finished``: the whole order was completed."""
    out: list[StepProgress] = []
    planned_before = quantity
    done_s = total_s = 0.0
    previous: StepFacts | None = None
    for facts in steps:
        good, scrap = max(facts.good, 0), max(facts.scrap, 0)
        processed = good + scrap
        if previous is None:
            planned, arrived = quantity, quantity if on_floor else 0
        else:
            prev_good, prev_scrap = max(previous.good, 0), max(previous.scrap, 0)
            if previous.completed or finished:
                planned = prev_good
            else:
                planned = max(prev_good, planned_before - prev_scrap)
            arrived = prev_good if on_floor else 0
        wip = max(arrived - processed, 0)
        progress = 1.0 if planned <= 0 else min(processed / planned, 1.0)
        status: StepStatus
        if facts.completed or (planned > 0 and processed >= planned):
            status = "done"
        elif finished or planned <= 0:
            status = "done" if processed > 0 else "skipped"
        elif facts.started or processed > 0:
            status = "running"
        else:
            status = "waiting"
        total_s += planned * facts.standard_s
        done_s += min(processed, planned) * facts.standard_s
        out.append(StepProgress(facts.seq, status, planned, processed, wip, progress))
        previous, planned_before = facts, planned
    if finished:
        share = 1.0
    elif total_s > 0:
        share = done_s / total_s
    else:
        share = 0.0
    remaining = 0.0 if finished else max(total_s - done_s, 0.0)
    return OrderProgress(tuple(out), share, done_s, remaining)


def expected_completion(
    progress: OrderProgress, *, began: dt.datetime | None, now: dt.datetime
) -> tuple[dt.datetime, Literal["observed", "standard"]]:
    """When an open order should be done, and on what basis (module docstring)."""
    elapsed = (now - began).total_seconds() if began is not None else 0.0
    if progress.done_s > 0 and elapsed > 0:
        seconds = progress.remaining_s * elapsed / progress.done_s
        return _ahead(now, seconds), "observed"
    return _ahead(now, progress.remaining_s), "standard"


def order_completion(
    *,
    status: str,
    completed: dt.datetime | None,
    progress: OrderProgress | None,
    began: dt.datetime | None,
    now: dt.datetime,
    planned_end: dt.datetime | None = None,
) -> tuple[dt.datetime | None, str | None]:
    """The one expected completion of an order and its basis: ``completed``, ``plan``,
    ``observed`` or ``standard`` (module docstring); (None, None) for an order with no figure."""
    if status == "completed":
        return completed, "completed"
    if status not in ("created", "released", "in_progress"):
        return None, None
    if planned_end is not None and planned_end >= now:
        return planned_end, "plan"
    if progress is None:
        return None, None
    return expected_completion(progress, began=began, now=now)


def _ahead(now: dt.datetime, seconds: float) -> dt.datetime:
    if not math.isfinite(seconds) or seconds > _MAX_AHEAD.total_seconds():
        return now + _MAX_AHEAD
    value = now + dt.timedelta(seconds=seconds)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def is_late(
    *, open_: bool, due: dt.datetime | None, expected: dt.datetime | None, now: dt.datetime
) -> bool:
    """Not done, and the due time has passed or the expected completion is after it."""
    if not open_ or due is None:
        return False
    return now > due or (expected is not None and expected > due)
