"""A simulated MELSEC PLC answering MC protocol 3E binary batch reads, for tests, demos and docs.

No independent MC protocol server exists for Python that we could test against, so this one is
built from the published frame format (:mod:`microfab.connect.mc_frame`, after Mitsubishi's
"MELSEC Communication Protocol Reference Manual"): it answers command 0401 (batch read) in word
and bit units for the devices D, W, R (words, 0-1023) and M, X, Y, B (bits, 0-1023), and refuses
anything else with the end codes a CPU uses (0xC059 for another command, 0xC056 for a device out
of range). One machine, as the factory file example maps it::

    D100     state: 1 running, 2 idle, 3 unplanned stop
    D200:2   running total of good parts   (D200 low word, D201 high word)
    D202:2   running total of scrap parts
    D220:2   temperature, °C, a 32-bit float
    M10      door open
    X0       cycle start input

The server can be stopped (its connections are closed, as when a PLC is switched off) and
started again on the same port; the device memory survives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from types import TracebackType
from typing import Any

from microfab.connect import mc_frame
from microfab.model.plc_address import MC_BIT_DEVICES, MC_WORD_DEVICES

SIZE = 1024
WORD_DEVICES = ("D", "W", "R")
BIT_DEVICES = ("M", "X", "Y", "B")


def mc_machine_points() -> list[dict[str, Any]]:
    """``connect.mc.points`` for the simulated machine."""
    return [
        {"point": "D100", "stream": "state",
         "states": {"1": "running", "2": "idle", "3": "unplanned_stop"}},
        {"point": "D200:2", "stream": "count", "field": "good", "data_type": "uint32"},
        {"point": "D202:2", "stream": "count", "field": "scrap", "data_type": "uint32"},
        {"point": "D220:2", "stream": "telemetry", "metric": "temperature_c", "data_type": "real"},
        {"point": "M10", "stream": "telemetry", "metric": "door_open"},
    ]  # fmt: skip


class SimulatedMcPlc:
    """One machine in the D and M devices of a 3E binary MC server; see the module docstring."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.port = port
        self.host = host
        self.words = {name: [0] * SIZE for name in WORD_DEVICES}
        self.bits = {name: [0] * SIZE for name in BIT_DEVICES}
        self._codes = {MC_WORD_DEVICES[n]: (n, False) for n in WORD_DEVICES} | {
            MC_BIT_DEVICES[n]: (n, True) for n in BIT_DEVICES
        }
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.requests = 0
        self.set_state(2)
        self.set_temperature(21.0)

    # ------------------------------------------------------------------ the machine

    def set_state(self, code: int) -> None:
        self.words["D"][100] = code

    def set_pair(self, number: int, value: int) -> None:
        self.words["D"][number] = value & 0xFFFF
        self.words["D"][number + 1] = value >> 16 & 0xFFFF

    def set_counts(self, good: int, scrap: int) -> None:
        self.set_pair(200, good)
        self.set_pair(202, scrap)

    def add_parts(self, good: int, scrap: int = 0) -> None:
        d = self.words["D"]
        self.set_counts((d[200] | d[201] << 16) + good, (d[202] | d[203] << 16) + scrap)

    def set_temperature(self, celsius: float) -> None:
        raw = int.from_bytes(struct.pack("<f", celsius), "little")
        self.set_pair(220, raw)

    def set_door(self, open_: bool) -> None:
        self.bits["M"][10] = int(open_)

    # ------------------------------------------------------------------ the protocol

    def answer(self, data: bytes) -> bytes:
        """The response frame to a request's data (after its 9-byte header)."""
        self.requests += 1
        try:
            command, sub, head, code, points = mc_frame.parse_request(data)
        except ValueError:
            return mc_frame.response(0xC061)
        if command != mc_frame.BATCH_READ or sub not in (mc_frame.WORD_UNITS, mc_frame.BIT_UNITS):
            return mc_frame.response(0xC059)
        found = self._codes.get(code)
        if found is None:
            return mc_frame.response(0xC056)
        name, is_bit = found
        if points < 1 or head + points > SIZE:
            return mc_frame.response(0xC056)
        if sub == mc_frame.BIT_UNITS:
            if not is_bit:
                return mc_frame.response(0xC05B)
            return mc_frame.response(0, mc_frame.pack_bits(self.bits[name][head : head + points]))
        if is_bit:  # a bit device in word units: 16 bits per word
            if head % 16 or head + points * 16 > SIZE:
                return mc_frame.response(0xC056)
            bits = self.bits[name]
            words = [sum(bits[head + w * 16 + b] << b for b in range(16)) for w in range(points)]
        else:
            words = self.words[name][head : head + points]
        return mc_frame.response(0, struct.pack(f"<{points}H", *words))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                header = await reader.readexactly(mc_frame.HEADER_SIZE)
                data = await reader.readexactly(mc_frame.data_length(header))
                writer.write(self.answer(data))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()

    # ------------------------------------------------------------------ the server

    async def start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, self.host, self.port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.close()
        await server.wait_closed()

    async def __aenter__(self) -> SimulatedMcPlc:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
