"""Modbus TCP connector: poll the registers mapped in the factory model and publish events.

Every machine with ``connect.modbus`` in the factory model is read by one polling task per Modbus
device, that is per ``(host, port, unit)``. Each poll reads every mapped register (neighbouring
registers of one table in one request, at most 125 registers or 2000 bits), decodes it by
``data_type`` and ``word_order``, and hands the values to the machine's
:class:`~microfab.connect.mapping.PointMapper` with the poll time as event time (UTC, ms). A state
is stored when it changes and a count when the running total rises; a telemetry or energy reading
is stored when it changes (telemetry: by more than the point's ``deadband``) and otherwise at most
every ``heartbeat_s`` seconds of its machine's source, so that a steady value is still seen. The
events go to the publisher, which is flushed after every poll.

A register address is the ``point`` of a mapping, 0-based as on the wire: ``"0"``, ``"2"``
(register 40001 of a PLC manual is holding register ``"0"``).

When a device cannot be reached (refused, timed out, connection dropped, or a gateway reporting
its target silent) the connector reports the link ``down``, publishes one ``offline`` event with
reason ``LINK-DOWN`` per machine with a state point on that device, and tries again every
``reconnect_s`` seconds. Once the device answers again the mappers forget their last state and
counter readings, so the current state is reported at once and counters re-baseline instead of
counting across the gap; the first telemetry and energy readings are stored again. A register the
device refuses (an exception response such as "illegal data address") makes only that value
unavailable; it is named in :meth:`ModbusConnector.health`. No exception leaves a polling task.

Link changes are logged at INFO (the status line shows them); pymodbus's own log of the same
failures ("Failed to connect …", "Repeating....") is silenced unless the ``pymodbus`` logger has
been given a level (see :func:`~microfab.logs.configure_connector_logging`).
"""

from __future__ import annotations

import logging
import math
import re
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ModbusPDU

from microfab.connect.mapping import PointMapper
from microfab.connect.polling import Device, LinkLost, PollingConnector, Reading
from microfab.connect.publisher import Publisher
from microfab.errors import InputError
from microfab.model.factory import Factory, ModbusRegister, ModbusSource

logger = logging.getLogger(__name__)

SOURCE = "modbus"
"""``source`` of the point mappers: the prefix of every event id this connector makes."""

MAX_REGISTERS = 125
"""Most registers one Modbus read may return."""
MAX_BITS = 2000
"""Most coils or discrete inputs one Modbus read may return."""

_WIDTH: dict[str, int] = {
    "uint16": 1,
    "int16": 1,
    "bool": 1,
    "uint32": 2,
    "int32": 2,
    "float32": 2,
}
_STRUCT: dict[str, str] = {"uint16": "H", "int16": "h", "uint32": "I", "int32": "i", "float32": "f"}
_BIT_TABLES = frozenset({"coil", "discrete"})
_GATEWAY_FAULTS = {0x0A: "gateway path unavailable", 0x0B: "gateway target device did not respond"}
_EXCEPTION_NAMES = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "device failure",
    0x05: "acknowledge",
    0x06: "device busy",
}

Table = Literal["holding", "input", "coil", "discrete"]


# --------------------------------------------------------------------------- decoding


def decode_registers(
    registers: list[int], data_type: str, word_order: Literal["big", "little"] = "big"
) -> int | float | bool:
    """The value held in ``registers`` (one or two 16-bit words, bytes big-endian in a word).

    ``word_order`` ``little`` means the low word comes first (common on PLCs for 32-bit values).
    A ``float32`` is rounded to the 7 significant digits it carries, so 21.3 reads as 21.3.
    """
    if data_type == "bool":
        return registers[0] != 0
    width = _WIDTH[data_type]
    if len(registers) < width:
        raise ValueError(f"{data_type} needs {width} registers, got {len(registers)}")
    words = registers[:width]
    if word_order == "little":
        words = list(reversed(words))
    raw = b"".join((w & 0xFFFF).to_bytes(2, "big") for w in words)
    value: int | float = struct.unpack(f">{_STRUCT[data_type]}", raw)[0]
    if data_type == "float32" and isinstance(value, float) and math.isfinite(value):
        value = float(f"{value:.7g}")
    return value


def parse_address(point: str) -> int:
    """A register address of a mapping (``"0"``, ``"17"``, or hex ``"0x11"``)."""
    text = point.strip()
    try:
        address = int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        raise ValueError(
            f"point '{point}' is not a register address; write the 0-based address such as '0'"
        ) from None
    if not 0 <= address <= 0xFFFF:
        raise ValueError(f"point '{point}' is outside the register addresses 0-65535")
    return address


# --------------------------------------------------------------------------- plan of a device


@dataclass(frozen=True)
class _Point:
    machine: int  # index into _Device.mappers
    point: str
    table: Table
    address: int
    width: int
    data_type: str
    word_order: Literal["big", "little"]
    deadband: float = 0.0


@dataclass
class _Block:
    """One read request: ``count`` registers (or bits) of ``table`` from ``address``."""

    table: Table
    address: int
    count: int
    points: list[_Point]


@dataclass
class _Device(Device):
    """One Modbus device (host, port, unit) and the machines read from it."""

    host: str = ""
    port: int = 502
    unit: int = 1
    points: list[_Point] = field(default_factory=list)
    blocks: list[_Block] = field(default_factory=list)


def _plan_blocks(points: list[_Point]) -> list[_Block]:
    """Group points into reads: same table, contiguous or overlapping, within the size limits."""
    blocks: list[_Block] = []
    ordered = sorted(points, key=lambda p: (p.table, p.address, p.width))
    for p in ordered:
        last = blocks[-1] if blocks else None
        limit = MAX_BITS if p.table in _BIT_TABLES else MAX_REGISTERS
        if last is not None and last.table == p.table and p.address <= last.address + last.count:
            end = max(last.address + last.count, p.address + p.width)
            if end - last.address <= limit:
                last.count = end - last.address
                last.points.append(p)
                continue
        blocks.append(_Block(p.table, p.address, p.width, [p]))
    return blocks


def _devices_of(factory: Factory, poll_s: float | None) -> list[_Device]:
    devices: dict[tuple[str, int, int], _Device] = {}
    for ref in factory.machines():
        connect = ref.machine.connect
        source: ModbusSource | None = connect.modbus if connect is not None else None
        if source is None:
            continue
        key = (source.host, source.port, source.unit)
        device = devices.get(key)
        if device is None:
            device = _Device(
                label=f"{source.host}:{source.port} unit {source.unit}",
                poll_s=poll_s or source.poll_s,
                host=source.host,
                port=source.port,
                unit=source.unit,
            )
            devices[key] = device
        else:
            device.poll_s = min(device.poll_s, poll_s or source.poll_s)
        index = device.add_machine(
            PointMapper(SOURCE, ref.path, list(source.points)), source.heartbeat_s
        )
        seen: set[str] = set()
        for i, register in enumerate(source.points):
            where = f"machine {ref.path}: connect.modbus.points[{i}]"
            if register.point in seen:
                raise InputError(
                    f"{where}: point '{register.point}' is mapped twice; map each address once"
                )
            seen.add(register.point)
            device.points.append(_point(index, register, where))
            device.deadbands[(index, register.point)] = register.deadband
    for device in devices.values():
        device.blocks = _plan_blocks(device.points)
    return list(devices.values())


def _point(machine: int, register: ModbusRegister, where: str) -> _Point:
    try:
        address = parse_address(register.point)
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None
    width = 1 if register.table in _BIT_TABLES else _WIDTH[register.data_type]
    if address + width > 0x10000:
        raise InputError(f"{where}: a {register.data_type} at {address} runs past register 65535")
    return _Point(
        machine,
        register.point,
        register.table,
        address,
        width,
        register.data_type,
        register.word_order,
        register.deadband,
    )


# --------------------------------------------------------------------------- the connector


class ModbusConnector(PollingConnector[_Device, AsyncModbusTcpClient]):
    """Polls every Modbus TCP device of the factory model; see the module docstring.

    Link bookkeeping, the polling loop and publishing are :mod:`microfab.connect.polling`'s.
    """

    name = "modbus"
    noun = "Modbus device"
    logger = logger
    link_errors = (ModbusException, OSError, TimeoutError)

    def __init__(
        self,
        factory: Factory,
        publisher: Publisher,
        *,
        reconnect_s: float = 2.0,
        timeout_s: float = 2.0,
        poll_s: float | None = None,
    ) -> None:
        """``poll_s`` overrides every device's ``poll_s``; ``timeout_s`` bounds each request.

        Raises :class:`~microfab.errors.InputError` when no machine has ``connect.modbus`` or a
        mapped point is not a register address.
        """
        devices = _devices_of(factory, poll_s)
        if not devices:
            raise InputError(
                "no machine of the factory model has connect.modbus; map registers in the "
                "factory file (see docs/connectors.md) and run 'microfab factory apply' again"
            )
        super().__init__(publisher, devices, reconnect_s=reconnect_s, timeout_s=timeout_s)
        _quiet_pymodbus()

    # ------------------------------------------------------------------ one device

    async def _open(self, device: _Device) -> AsyncModbusTcpClient:
        client = AsyncModbusTcpClient(
            device.host,
            port=device.port,
            name=f"microfab-{device.host}:{device.port}",
            timeout=self.timeout_s,
            retries=0,
            reconnect_delay=0,  # reconnecting is done by the polling loop, at reconnect_s
        )
        try:
            if not await client.connect():
                raise LinkLost(f"cannot connect to {device.host}:{device.port}")
        except BaseException:
            client.close()
            raise
        return client

    async def _close(self, device: _Device, session: AsyncModbusTcpClient | None) -> None:
        if session is not None:
            session.close()

    def _describe(self, exc: BaseException) -> str:
        return _describe(exc)

    async def _read(self, device: _Device, session: AsyncModbusTcpClient) -> list[Reading]:
        """Every readable value of the device; refused registers are left out (and noted)."""
        if not session.connected:
            raise LinkLost("the device closed the connection")
        values: list[tuple[_Point, int | float | bool]] = []
        kept: list[_Block] = []
        for block in device.blocks:
            pdu = await self._request(session, block, device.unit)
            if not pdu.isError():
                kept.append(block)
                values += self._decode(device, block, pdu)
                continue
            if len(block.points) == 1:
                kept.append(block)
                self._refused(device, block.points[0], pdu.exception_code)
                continue
            # one register of a combined read is refused: read them one by one from now on
            for point in block.points:
                single = _Block(point.table, point.address, point.width, [point])
                kept.append(single)
                pdu = await self._request(session, single, device.unit)
                if pdu.isError():
                    self._refused(device, point, pdu.exception_code)
                else:
                    values += self._decode(device, single, pdu)
        device.blocks = kept
        return [Reading(point.machine, point.point, value) for point, value in values]

    async def _request(self, client: AsyncModbusTcpClient, block: _Block, unit: int) -> ModbusPDU:
        readers: dict[str, Callable[..., Awaitable[ModbusPDU]]] = {
            "holding": client.read_holding_registers,
            "input": client.read_input_registers,
            "coil": client.read_coils,
            "discrete": client.read_discrete_inputs,
        }
        pdu = await readers[block.table](block.address, count=block.count, device_id=unit)
        if pdu.isError() and pdu.exception_code in _GATEWAY_FAULTS:
            raise LinkLost(_GATEWAY_FAULTS[pdu.exception_code])
        return pdu

    def _decode(
        self, device: _Device, block: _Block, pdu: ModbusPDU
    ) -> list[tuple[_Point, int | float | bool]]:
        values: list[tuple[_Point, int | float | bool]] = []
        for point in block.points:
            offset = point.address - block.address
            key = f"{point.table} {point.address}"
            try:
                if block.table in _BIT_TABLES:
                    bit = bool(pdu.bits[offset])
                    value: int | float | bool = bit if point.data_type == "bool" else int(bit)
                else:
                    words = list(pdu.registers[offset : offset + point.width])
                    value = decode_registers(words, point.data_type, point.word_order)
            except (IndexError, ValueError, struct.error):
                device.problems[key] = f"{key}: the device sent a short answer"
                continue
            device.problems.pop(key, None)
            values.append((point, value))
        return values

    def _refused(self, device: _Device, point: _Point, code: int) -> None:
        key = f"{point.table} {point.address}"
        what = _EXCEPTION_NAMES.get(code, f"exception {code}")
        problem = f"{key} (point '{point.point}') refused: {what}"
        if device.problems.get(key) != problem:  # the status line shows it too
            logger.info("Modbus device %s: %s", device.label, problem)
        device.problems[key] = problem


def _describe(exc: BaseException) -> str:
    """One line on why the link failed, in plain words (no "Modbus Error: [Connection]")."""
    if isinstance(exc, TimeoutError):
        return "no answer (timed out)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    text = str(exc).strip()
    if isinstance(exc, ModbusException):
        text = re.sub(r"^Modbus Error:\s*(\[[^\]]*\]\s*)?", "", text).strip()
    return text or type(exc).__name__


def _quiet_pymodbus() -> None:
    """pymodbus logs every failed connect ("Failed to connect [Errno 111] …", "Repeating....") and
    lost answer: the connector reports the same once, in plain words. Unless the application set
    a level for the ``pymodbus`` logger, only its critical messages are let through."""
    library = logging.getLogger("pymodbus")
    if library.level == logging.NOTSET:
        library.setLevel(logging.CRITICAL)
