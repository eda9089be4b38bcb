"""A simulated machine served by python-snap7's S7 server, for connector tests, demos and docs.

:class:`SimulatedS7Plc` runs snap7's (pure Python) S7 server on ``127.0.0.1:PORT`` with one
data block, DB1 (64 bytes), holding one machine as the factory file example maps it::

    DB1.DBW0    INT    state: 1 running, 2 idle, 3 unplanned stop
    DB1.DBD2    UDINT  running total of good parts
    DB1.DBD6    UDINT  running total of scrap parts
    DB1.DBD10   REAL   temperature, °C
    DB1.DBX14.0 BOOL   door open

and 32 bytes each of the M, I and Q areas. The server can be stopped and started again on the
same port (a PLC restart); the memory survives it. :func:`s7_machine_points` returns the matching
``connect.s7.points``.
"""

from __future__ import annotations

import logging
import struct
from types import TracebackType
from typing import Any

from snap7.server import Server
from snap7.type import SrvArea

DB_SIZE = 64
AREA_SIZE = 32
STATE_CODES: dict[int, str] = {1: "running", 2: "idle", 3: "unplanned_stop"}


def s7_machine_points() -> list[dict[str, Any]]:
    """``connect.s7.points`` for the simulated machine."""
    return [
        {"point": "DB1.DBW0", "stream": "state", "data_type": "int16",
         "states": {str(k): v for k, v in STATE_CODES.items()}},
        {"point": "DB1.DBD2", "stream": "count", "field": "good", "data_type": "uint32"},
        {"point": "DB1.DBD6", "stream": "count", "field": "scrap", "data_type": "uint32"},
        {"point": "DB1.DBD10", "stream": "telemetry", "metric": "temperature_c",
         "data_type": "real"},
        {"point": "DB1.DBX14.0", "stream": "telemetry", "metric": "door_open", "data_type": "bool"},
    ]  # fmt: skip


class SimulatedS7Plc:
    """One machine in DB1 of a snap7 S7 server; see the module docstring."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.port = port
        self.host = host
        self.db1 = bytearray(DB_SIZE)
        self.m = bytearray(AREA_SIZE)
        self.i = bytearray(AREA_SIZE)
        self.q = bytearray(AREA_SIZE)
        self._server: Server | None = None
        self.set_state(2)
        self.set_temperature(21.0)
        _quiet_snap7()

    # ------------------------------------------------------------------ the machine

    def set_state(self, code: int) -> None:
        self.db1[0:2] = struct.pack(">h", code)

    def set_counts(self, good: int, scrap: int) -> None:
        """Set the running totals (a counter reset: set them lower)."""
        self.db1[2:6] = struct.pack(">I", good)
        self.db1[6:10] = struct.pack(">I", scrap)

    def add_parts(self, good: int, scrap: int = 0) -> None:
        now_good, now_scrap = struct.unpack(">II", bytes(self.db1[2:10]))
        self.set_counts(now_good + good, now_scrap + scrap)

    def set_temperature(self, celsius: float) -> None:
        self.db1[10:14] = struct.pack(">f", celsius)

    def set_door(self, open_: bool) -> None:
        self.db1[14] = (self.db1[14] & 0xFE) | int(open_)

    # ------------------------------------------------------------------ the server

    async def start(self) -> None:
        self.start_sync()

    async def stop(self) -> None:
        self.stop_sync()

    def start_sync(self) -> None:
        if self._server is not None:
            return
        server = Server(log=False)
        server.register_area(SrvArea.DB, 1, self.db1)
        server.register_area(SrvArea.MK, 0, self.m)
        server.register_area(SrvArea.PE, 0, self.i)
        server.register_area(SrvArea.PA, 0, self.q)
        server.start_to(self.host, self.port)
        self._server = server

    def stop_sync(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()
            server.destroy()

    async def __aenter__(self) -> SimulatedS7Plc:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def _quiet_snap7() -> None:
    """snap7's server logs every client and refused read; only its errors are let through."""
    library = logging.getLogger("snap7")
    if library.level == logging.NOTSET:
        library.setLevel(logging.ERROR)
