"""The simulation options shared by ``demo`` and ``sim``: scenario, seed, start, duration, speed."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from microfab.errors import InputError
from microfab.model.events import parse_ts

ScenarioOption = Annotated[
    str,
    typer.Option(
        "--scenario",
        help="Scenario name (food-line, food-line-stock, moulding-cell, moulding-cell-wear) or folder",
    ),
]
SeedOption = Annotated[int, typer.Option("--seed", help="Random seed; same seed, same events")]
StartOption = Annotated[
    str | None,
    typer.Option(
        "--start",
        help="Simulated start time, ISO-8601 with offset \\[default: 2026-11-23T08:00:00+08:00]",
        show_default=False,
    ),
]


def parse_start(value: str | None) -> dt.datetime:
    """``--start``: ISO-8601 with an offset; None is the simulator's default start."""
    from microfab.sim.engine import DEFAULT_START

    if value is None:
        return DEFAULT_START
    try:
        return parse_ts(value)
    except ValueError as exc:
        raise InputError(f"--start: {exc}") from None


def parse_duration(value: str | None) -> float | None:
    """``--duration`` (``8h``, ``90m``, …) in seconds; None stays None (run until stopped)."""
    from microfab.sim.engine import parse_duration as seconds_of

    if value is None:
        return None
    try:
        return seconds_of(value)
    except ValueError as exc:
        raise InputError(f"--duration: {exc}") from None


def parse_speed(value: str) -> float | None:
    """``max`` -> None (as fast as possible), else a positive factor."""
    if value.lower() == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        raise InputError(f"--speed: '{value}' is not a number or 'max'") from None
    if speed <= 0:
        raise InputError("--speed must be positive (600 = ten simulated minutes per second)")
    return speed
