"""A simulated Logix PLC on EtherNet/IP: cpppo's ``enip`` server behind a switchable TCP link.

For connector tests, benchmarks and docs. :class:`SimulatedEnipPlc` runs cpppo's EtherNet/IP
simulator (``python -m cpppo.server.enip``, an independent implementation of CIP; a development
dependency) as a child process with these controller tags::

    State      INT      1 running, 2 idle, 3 unplanned stop
    Counts     DINT[4]  Counts[2] running total of good parts, Counts[3] of scrap
    Temp       REAL     temperature, °C
    Door       BOOL     door open

Values are written to the simulator with pycomm3 over a connection of their own. Clients reach
the PLC through a small TCP relay on ``PORT``: :meth:`stop` closes the relay and every
connection through it (the cable is pulled; the PLC keeps running and keeps its values),
:meth:`start` opens it again. :meth:`close` ends the simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from types import TracebackType
from typing import Any

from pycomm3 import LogixDriver
from pycomm3.cip.data_types import BOOL, DINT, INT, REAL
from pycomm3.packets.logix import WriteTagRequestPacket

TAGS = ("State=INT", "Counts=DINT[4]", "Temp=REAL", "Door=BOOL")
_TYPES: dict[str, Any] = {"INT": INT, "DINT": DINT, "REAL": REAL, "BOOL": BOOL}
STATE_CODES: dict[int, str] = {1: "running", 2: "idle", 3: "unplanned_stop"}


def enip_machine_points() -> list[dict[str, Any]]:
    """``connect.enip.points`` for the simulated PLC."""
    return [
        {"point": "State", "stream": "state",
         "states": {str(k): v for k, v in STATE_CODES.items()}},
        {"point": "Counts[2]", "stream": "count", "field": "good"},
        {"point": "Counts[3]", "stream": "count", "field": "scrap"},
        {"point": "Temp", "stream": "telemetry", "metric": "temperature_c"},
        {"point": "Door", "stream": "telemetry", "metric": "door_open"},
    ]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SimulatedEnipPlc:
    """cpppo's EtherNet/IP simulator behind a relay on ``port``; see the module docstring."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.port = port
        self.host = host
        self.plc_port = _free_port()
        self._values: dict[str, tuple[str, Any]] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._writer: LogixDriver | None = None
        self._relay: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self.set_state(2)
        self.set_counts(0, 0)
        self.set_temperature(21.0)
        self.set_door(False)

    # ------------------------------------------------------------------ the machine

    def write(self, tag: str, kind: str, value: Any) -> None:
        self._values[tag] = (kind, value)
        if self._writer is not None:
            self._write(tag, kind, value)

    def _write(self, tag: str, kind: str, value: Any) -> None:
        assert self._writer is not None
        request = WriteTagRequestPacket(
            self._writer._sequence,
            tag,
            1,
            {"data_type_name": kind, "tag_type": "atomic"},
            0,
            False,
            value=_TYPES[kind].encode(value),
        )
        reply = self._writer.send(request)
        if not reply.is_valid():
            raise RuntimeError(f"writing {tag} to the simulator failed: {reply.error}")

    def set_state(self, code: int) -> None:
        self.write("State", "INT", code)

    def set_counts(self, good: int, scrap: int) -> None:
        self.write("Counts[2]", "DINT", good)
        self.write("Counts[3]", "DINT", scrap)

    def set_temperature(self, celsius: float) -> None:
        self.write("Temp", "REAL", celsius)

    def set_door(self, open_: bool) -> None:
        self.write("Door", "BOOL", open_)

    # ------------------------------------------------------------------ the simulator

    def _launch(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "cpppo.server.enip", "--address",
             f"127.0.0.1:{self.plc_port}", *TAGS],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.plc_port), timeout=0.2):
                    break
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError("cpppo's EtherNet/IP simulator did not start") from None
                time.sleep(0.05)
        writer = LogixDriver(f"127.0.0.1:{self.plc_port}", init_tags=False, init_program_tags=False)
        writer.open()
        self._writer = writer
        for tag, (kind, value) in self._values.items():
            self._write(tag, kind, value)

    def close(self) -> None:
        """End the simulator (the relay must be stopped first)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    # ------------------------------------------------------------------ the relay

    async def _relay_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._links.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.plc_port)
        except OSError:
            self._links.discard(writer)
            writer.close()
            return
        self._links.add(up_writer)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._links.discard(w)
                w.close()
                with contextlib.suppress(OSError, ConnectionError):
                    await w.wait_closed()

    async def start(self) -> None:
        if self._process is None:
            await asyncio.to_thread(self._launch)
        if self._relay is None:
            try:
                self._relay = await asyncio.start_server(self._relay_one, self.host, self.port)
            except OSError:
                self.close()  # do not leave the simulator running without its relay
                raise

    async def stop(self) -> None:
        relay, self._relay = self._relay, None
        if relay is None:
            return
        relay.close()
        for writer in list(self._links):
            writer.close()
        await relay.wait_closed()

    async def __aenter__(self) -> SimulatedEnipPlc:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
        self.close()
