"""A simulated machine served over Modbus TCP, for connector tests, demos and docs.

:class:`SimulatedModbusMachine` runs a real pymodbus TCP server on ``127.0.0.1:PORT`` that answers
every unit id. Its holding registers (0-based addresses) hold one machine::

    0   uint16   state: 1 running, 2 idle, 3 unplanned stop
    2   uint32   running total of good parts      (registers 2-3, big-endian words)
    4   uint32   running total of scrap parts     (registers 4-5)
    6   float32  temperature, °C                  (registers 6-7)
    8   float32  cumulative energy, kWh           (registers 8-9)

Any other register of the four tables (holding, input, coil, discrete; addresses 0-63) can be set
with :meth:`SimulatedModbusMachine.set_register`. The tables are read-only to clients. The server
can be stopped and started again on the same port (a "device restart"); the values survive it.
:func:`modbus_machine_points` returns the matching ``connect.modbus.points`` of a factory file.
"""

from __future__ import annotations

import logging
import math
import struct
from types import TracebackType
from typing import Any, Literal

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

logger = logging.getLogger(__name__)

Table = Literal["holding", "input", "coil", "discrete"]
DataTypeName = Literal["uint16", "int16", "uint32", "int32", "float32", "bool"]
WordOrder = Literal["big", "little"]

SIZE = 64
"""Addresses 0 .. SIZE-1 exist in each of the four tables."""

STATE_CODES: dict[int, str] = {1: "running", 2: "idle", 3: "unplanned_stop"}
"""Raw values of the state register (address 0) and the microfab state each one means."""

STATE_ADDRESS = 0
GOOD_ADDRESS = 2
SCRAP_ADDRESS = 4
TEMPERATURE_ADDRESS = 6
ENERGY_ADDRESS = 8

_STRUCT: dict[str, str] = {
    "uint16": "H",
    "int16": "h",
    "uint32": "I",
    "int32": "i",
    "float32": "f",
}
_READ_CODES: dict[int, Table] = {1: "coil", 2: "discrete", 3: "holding", 4: "input"}


def encode_registers(
    value: float | bool, data_type: DataTypeName, word_order: WordOrder = "big"
) -> list[int]:
    """The 16-bit registers that hold ``value`` as ``data_type`` (bytes big-endian in a word)."""
    if data_type == "bool":
        return [1 if value else 0]
    code = _STRUCT[data_type]
    number: float | int = float(value) if code == "f" else int(value)
    try:
        raw = struct.pack(f">{code}", number)
    except struct.error:
        raise ValueError(f"{value!r} does not fit in a {data_type}") from None
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return list(reversed(words)) if word_order == "little" else words


def modbus_machine_points() -> list[dict[str, Any]]:
    """``connect.modbus.points`` entries (plain dicts, as in a factory file) for this server."""
    return [
        {
            "point": str(STATE_ADDRESS),
            "stream": "state",
            "table": "holding",
            "data_type": "uint16",
            "states": {str(code): state for code, state in STATE_CODES.items()},
        },
        {
            "point": str(GOOD_ADDRESS),
            "stream": "count",
            "field": "good",
            "table": "holding",
            "data_type": "uint32",
        },
        {
            "point": str(SCRAP_ADDRESS),
            "stream": "count",
            "field": "scrap",
            "table": "holding",
            "data_type": "uint32",
        },
        {
            "point": str(TEMPERATURE_ADDRESS),
            "stream": "telemetry",
            "metric": "temperature_c",
            "table": "holding",
            "data_type": "float32",
        },
        {
            "point": str(ENERGY_ADDRESS),
            "stream": "energy",
            "table": "holding",
            "data_type": "float32",
        },
    ]


class SimulatedModbusMachine:
    """One machine as a Modbus TCP server; use ``async with`` or :meth:`start` / :meth:`stop`."""

    def __init__(self, port: int, *, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._registers: dict[Table, list[int]] = {"holding": [0] * SIZE, "input": [0] * SIZE}
        self._bits: dict[Table, list[bool]] = {"coil": [False] * SIZE, "discrete": [False] * SIZE}
        self._server: ModbusTcpServer | None = None
        self.set_register(STATE_ADDRESS, 2, "uint16")
        self.set_register(TEMPERATURE_ADDRESS, 21.0, "float32")

    @property
    def running(self) -> bool:
        return self._server is not None

    async def __aenter__(self) -> SimulatedModbusMachine:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen on ``host:port`` with the current values; a no-op when already serving."""
        if self._server is not None:
            return
        server = ModbusTcpServer(self._device(), address=(self.host, self.port))
        try:
            await server.serve_forever(background=True)
        except BaseException:
            await _shutdown(server)
            raise
        self._server = server
        logger.info("simulated Modbus machine serving on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and drop every client connection; the values are kept for a restart."""
        server, self._server = self._server, None
        if server is not None:
            await _shutdown(server)
            logger.info("simulated Modbus machine on %s:%s stopped", self.host, self.port)

    # ------------------------------------------------------------------ values

    def set_register(
        self,
        address: int,
        value: float | bool,
        data_type: DataTypeName = "uint16",
        *,
        table: Table = "holding",
        word_order: WordOrder = "big",
    ) -> None:
        """Set the register(s) at ``address`` of ``table`` to ``value`` encoded as ``data_type``.

        Coils and discrete inputs hold one bit each (any ``data_type``; the value's truth counts).
        Works whether or not the server is running.
        """
        if table in self._bits:
            _check_range(address, 1)
            self._bits[table][address] = bool(value)
            return
        if table not in self._registers:
            raise ValueError(f"table must be holding, input, coil or discrete, not {table!r}")
        if isinstance(value, float) and not math.isfinite(value) and data_type != "float32":
            raise ValueError(f"{value} does not fit in a {data_type}")
        words = encode_registers(value, data_type, word_order)
        _check_range(address, len(words))
        self._registers[table][address : address + len(words)] = words

    def registers(self, address: int, count: int = 1, *, table: Table = "holding") -> list[int]:
        """The raw 16-bit registers (or 0/1 bits) at ``address`` of ``table``."""
        _check_range(address, count)
        if table in self._bits:
            return [int(bit) for bit in self._bits[table][address : address + count]]
        return list(self._registers[table][address : address + count])

    def set_state(self, code: int) -> None:
        """Set the state register (see :data:`STATE_CODES`)."""
        self.set_register(STATE_ADDRESS, code, "uint16")

    def add_parts(self, good: int, scrap: int = 0) -> None:
        """Advance the running totals of good and scrap parts (they wrap at 2**32)."""
        if good < 0 or scrap < 0:
            raise ValueError("part counts only go up")
        for address, added in ((GOOD_ADDRESS, good), (SCRAP_ADDRESS, scrap)):
            high, low = self._registers["holding"][address : address + 2]
            total = ((high << 16) + low + added) % 2**32
            self.set_register(address, total, "uint32")

    def set_temperature(self, celsius: float) -> None:
        self.set_register(TEMPERATURE_ADDRESS, float(celsius), "float32")

    def set_energy(self, kwh: float) -> None:
        """Set the cumulative meter reading (float32, kWh)."""
        self.set_register(ENERGY_ADDRESS, float(kwh), "float32")

    # ------------------------------------------------------------------ pymodbus data model

    def _device(self) -> SimDevice:
        """A device with four separate tables; every read is served from this object's values."""

        def bits() -> list[SimData]:
            return [SimData(0, count=SIZE, values=False, datatype=DataType.BITS, readonly=True)]

        def words() -> list[SimData]:
            return [SimData(0, count=SIZE, values=0, datatype=DataType.REGISTERS, readonly=True)]

        return SimDevice(
            id=0,  # answers every unit id
            simdata=(bits(), bits(), words(), words()),  # coils, discrete, holding, input
            action=self._serve,
        )

    async def _serve(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """Called by pymodbus before each request: copy the current values into its block."""
        table = _READ_CODES.get(function_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION  # the simulated machine is read-only
        words = _pack_bits(self._bits[table]) if table in self._bits else self._registers[table]
        registers[0 : len(words)] = words
        return None


async def _shutdown(server: ModbusTcpServer) -> None:
    await server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus leaves it unannotated


def _pack_bits(bits: list[bool]) -> list[int]:
    """Bits to registers as pymodbus keeps them in a bit block: bit 0 of a word first."""
    words = []
    for start in range(0, len(bits), 16):
        word = 0
        for i, bit in enumerate(bits[start : start + 16]):
            if bit:
                word |= 1 << i
        words.append(word)
    return words


def _check_range(address: int, count: int) -> None:
    if address < 0 or address + count > SIZE:
        raise ValueError(
            f"address {address} (+{count - 1}) is outside 0..{SIZE - 1} of the simulated machine"
        )
