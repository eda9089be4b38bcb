"""Run one plan in a worker process that a wall clock and a memory limit can stop.

The solver runs in C++ threads that Python cannot interrupt, and a model can outgrow the memory
of the machine serving the dashboard. :func:`plan_in_worker` runs
:func:`microfab.plan.live.plan_open_orders` in a child process (``forkserver``: a clean process,
never a fork of a server's threads) whose address space is capped with ``RLIMIT_AS``
(:data:`~microfab.plan.limits.MEMORY_LIMIT_MB`); when it has not answered by the wall clock
(:func:`~microfab.plan.limits.wall_clock_s`) it is killed. Either way the caller gets a
:class:`~microfab.errors.LimitError` saying what was stopped, and nothing of the plan remains.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import resource
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from microfab.errors import LimitError, MicrofabError
from microfab.plan.limits import MEMORY_LIMIT_MB, wall_clock_s
from microfab.plan.live import LivePlan, plan_open_orders

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["microfab.plan.live", "microfab.plan.solvers.cpsat"])


def start_plan_server() -> None:
    """Start the fork server of the plan workers now, ignoring SIGINT (call it from the main
    thread of a long-running process: the demo, the server). A terminal's Ctrl-C goes to the
    whole process group, and a fork server still importing its preloads would die of it, every
    later plan failing; an ignored signal stays ignored in the processes it starts, so the plan
    workers leave Ctrl-C to the process that asked for the plan (it stops or kills them). From
    another thread the server starts as multiprocessing starts it."""
    if threading.current_thread() is not threading.main_thread():
        multiprocessing.forkserver.ensure_running()
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, previous)


def plan_in_worker(
    *,
    wall_s: float | None = None,
    memory_mb: int = MEMORY_LIMIT_MB,
    **options: Any,
) -> LivePlan:
    """:func:`plan_open_orders` (``options`` are its arguments) in a worker process, stopped
    after ``wall_s`` seconds (default: from the time limit) or ``memory_mb`` MB of memory."""
    limit = wall_s if wall_s is not None else wall_clock_s(float(options.get("time_limit", 10.0)))
    receiving, sending = _CONTEXT.Pipe(duplex=False)
    child = _CONTEXT.Process(
        target=_run, args=(sending, memory_mb, options), name="microfab-plan", daemon=True
    )
    began = time.monotonic()
    try:
        start_plan_server()
        child.start()
    except (OSError, EOFError) as exc:  # the fork server is gone (killed, out of processes)
        receiving.close()
        sending.close()
        raise LimitError(f"the plan worker could not be started ({exc}); try again") from None
    sending.close()
    try:
        if not receiving.poll(limit):
            raise LimitError(
                f"the plan did not finish within {limit:.0f} s and was stopped; plan fewer "
                "orders, a shorter horizon or a shorter time_limit"
            )
        try:
            kind, value = receiving.recv()
        except EOFError:  # the worker died without answering
            child.join(5)
            raise LimitError(
                f"the plan ran out of memory ({memory_mb} MB) or was stopped "
                f"(worker exit code {child.exitcode}) after {time.monotonic() - began:.0f} s; "
                "plan fewer orders or a shorter horizon"
            ) from None
    finally:
        receiving.close()
        if child.is_alive():
            child.kill()
        child.join(5)
    if kind == "plan":
        assert isinstance(value, LivePlan)
        return value
    if kind == "memory":
        raise LimitError(
            f"the plan needed more than {memory_mb} MB of memory and was stopped; plan fewer "
            "orders or a shorter horizon"
        )
    assert isinstance(value, BaseException)
    raise value


def _run(sending: Connection, memory_mb: int, options: dict[str, Any]) -> None:
    """The worker: cap the address space, plan, send back the plan or the error."""
    limit = memory_mb * 1024 * 1024
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        answer: tuple[str, Any] = ("plan", plan_open_orders(**options))
    except MemoryError:
        answer = ("memory", None)
    except MicrofabError as exc:
        answer = ("error", exc)
    except Exception as exc:  # a fault, not the user's input: re-raised in the caller as is
        if _near_cap(limit):  # a C extension's refused allocation (SystemError, RuntimeError…)
            answer = ("memory", None)
        else:
            answer = (
                "error",
                RuntimeError(f"the plan worker failed: {type(exc).__name__}: {exc}"),
            )
    try:
        sending.send(answer)
    except MemoryError:
        sending.send(("memory", None))
    finally:
        sending.close()


def _near_cap(limit: int) -> bool:
    """Whether this process's address space came within 10 % of ``limit`` (bytes): then an
    error from a library is the cap refusing memory, whatever exception the library raised."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmPeak:"):
                    return int(line.split()[1]) * 1024 >= 0.9 * limit
    except (OSError, ValueError):
        pass
    return False
