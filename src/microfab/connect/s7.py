"""Siemens S7 connector: poll the data blocks and M/I/Q areas mapped in the factory model.

Every machine with ``connect.s7`` is read by one polling task per PLC, that is per
``(host, port, rack, slot)``, with python-snap7's asyncio client (S7 communication over ISO-on-TCP,
as S7-300/400/1200/1500 CPUs and their PUT/GET access serve it). Addresses use the usual S7
syntax (:mod:`microfab.model.plc_address`): ``DB1.DBW0``, ``DB1.DBX14.0``, ``MW10``, ``I0.0``.

Points of one area (one data block, or M, I, Q) that lie within :data:`MERGE_GAP` bytes of each
other are read in one request (snap7 splits a request larger than the PDU), so a machine's
state, counters and telemetry in one DB are usually one read per poll. Values are big-endian, as
S7 stores them: ``int16`` (INT), ``uint16`` (WORD), ``int32`` (DINT), ``uint32`` (DWORD/UDINT),
``real`` (REAL, rounded to the 7 significant digits it carries), ``byte``, ``bool``.

A read the PLC refuses (a DB that does not exist, an offset beyond its end, no PUT/GET access)
makes only the points of that request unavailable: the request is split into one read per point,
and each refused point is named in health; the others are still read. Link losses, back-off,
``offline``/``LINK-DOWN`` and re-baselining counters are :mod:`microfab.connect.polling`'s.
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
from dataclasses import dataclass, field

from snap7 import AsyncClient
from snap7.error import S7ConnectionError, S7Error, S7ProtocolError, S7TimeoutError
from snap7.type import Area

from microfab.connect.mapping import PointMapper
from microfab.connect.polling import Device, LinkLost, PlcConnector, Reading, refused
from microfab.errors import InputError
from microfab.model.factory import Factory, S7Source
from microfab.model.plc_address import S7_DEFAULT_TYPE, S7Address, parse_s7

logger = logging.getLogger(__name__)

SOURCE = "s7"

MERGE_GAP = 32
"""Points of one area at most this many bytes apart are read in one request."""
MAX_REQUEST = 1024
"""Most bytes planned into one request (snap7 splits it to the PDU size)."""

_AREAS = {"DB": Area.DB, "M": Area.MK, "I": Area.PE, "Q": Area.PA}
_STRUCT = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "real": ">f"}


def decode(raw: bytes | bytearray, address: S7Address, data_type: str) -> int | float | bool:
    """The value of ``data_type`` at the start of ``raw`` (``address.size`` bytes, big-endian)."""
    if address.width == "X":
        return bool(raw[0] >> (address.bit or 0) & 1)
    if data_type == "bool":
        return any(raw[: address.size])
    if data_type == "byte":
        return int(raw[0])
    value: int | float = struct.unpack(_STRUCT[data_type], bytes(raw[: address.size]))[0]
    if data_type == "real" and isinstance(value, float) and math.isfinite(value):
        value = float(f"{value:.7g}")
    return value


@dataclass(frozen=True)
class _Point:
    machine: int
    point: str
    address: S7Address
    data_type: str


@dataclass
class _Block:
    """One read: ``size`` bytes of an area (a DB number for ``DB``) from ``start``."""

    area: str
    db: int
    start: int
    size: int
    points: list[_Point]

    @property
    def label(self) -> str:
        where = f"DB{self.db}" if self.area == "DB" else self.area
        return f"{where} bytes {self.start}-{self.start + self.size - 1}"


@dataclass
class _Plc(Device):
    host: str = ""
    port: int = 102
    rack: int = 0
    slot: int = 1
    points: list[_Point] = field(default_factory=list)
    blocks: list[_Block] = field(default_factory=list)


def plan_blocks(points: list[_Point]) -> list[_Block]:
    """Group points into as few reads as possible: same area, within :data:`MERGE_GAP` bytes."""
    blocks: list[_Block] = []
    ordered = sorted(points, key=lambda p: (p.address.area, p.address.db, p.address.byte))
    for p in ordered:
        a = p.address
        last = blocks[-1] if blocks else None
        if (
            last is not None
            and (last.area, last.db) == (a.area, a.db)
            and a.byte <= last.start + last.size + MERGE_GAP
            and max(last.start + last.size, a.byte + a.size) - last.start <= MAX_REQUEST
        ):
            last.size = max(last.start + last.size, a.byte + a.size) - last.start
            last.points.append(p)
            continue
        blocks.append(_Block(a.area, a.db, a.byte, a.size, [p]))
    return blocks


def _plcs_of(factory: Factory, poll_s: float | None) -> list[_Plc]:
    plcs: dict[tuple[str, int, int, int], _Plc] = {}
    for ref in factory.machines():
        source: S7Source | None = ref.machine.connect.s7 if ref.machine.connect else None
        if source is None:
            continue
        key = (source.host, source.port, source.rack, source.slot)
        plc = plcs.get(key)
        if plc is None:
            plc = plcs[key] = _Plc(
                label=f"{source.host}:{source.port} rack {source.rack} slot {source.slot}",
                poll_s=poll_s or source.poll_s,
                host=source.host,
                port=source.port,
                rack=source.rack,
                slot=source.slot,
            )
        plc.poll_s = min(plc.poll_s, poll_s or source.poll_s)
        index = plc.add_machine(
            PointMapper(SOURCE, ref.path, list(source.points)), source.heartbeat_s
        )
        seen: set[str] = set()
        for i, spec in enumerate(source.points):
            if spec.point in seen:
                raise InputError(
                    f"machine {ref.path}: connect.s7.points[{i}]: point '{spec.point}' is mapped "
                    "twice; map each address once"
                )
            seen.add(spec.point)
            address = parse_s7(spec.point)  # the model validated it
            data_type = spec.data_type or S7_DEFAULT_TYPE[address.width]
            plc.points.append(_Point(index, spec.point, address, data_type))
    for plc in plcs.values():
        plc.blocks = plan_blocks(plc.points)
    return list(plcs.values())


class S7Connector(PlcConnector[_Plc, AsyncClient]):
    """Polls every Siemens S7 PLC of the factory model; see the module docstring."""

    name = SOURCE
    noun = "S7 PLC"
    logger = logger
    link_errors = (S7ConnectionError, S7TimeoutError, S7Error, OSError, TimeoutError)

    block = "s7"
    mapped = "addresses"

    @classmethod
    def _devices_of(cls, factory: Factory, poll_s: float | None) -> list[_Plc]:
        return _plcs_of(factory, poll_s)

    async def _open(self, device: _Plc) -> AsyncClient:
        return await open_client(device.host, device.port, device.rack, device.slot, self.timeout_s)

    async def _close(self, device: _Plc, session: AsyncClient | None) -> None:
        if session is not None:
            await asyncio.wait_for(session.disconnect(), timeout=self.timeout_s)

    def _describe(self, exc: BaseException) -> str:
        return describe(exc)

    async def _read(self, device: _Plc, session: AsyncClient) -> list[Reading]:
        readings: list[Reading] = []
        kept: list[_Block] = []
        for block in device.blocks:
            try:
                raw = await self._request(session, block)
            except S7ProtocolError as exc:
                if len(block.points) == 1:
                    kept.append(block)
                    self._refused(device, block, exc)
                    continue
                for point in block.points:  # read them one by one from now on
                    a = point.address
                    single = _Block(a.area, a.db, a.byte, a.size, [point])
                    kept.append(single)
                    try:
                        raw = await self._request(session, single)
                    except S7ProtocolError as single_exc:
                        self._refused(device, single, single_exc)
                        continue
                    readings += self._decode(device, single, raw)
                continue
            kept.append(block)
            readings += self._decode(device, block, raw)
        device.blocks = kept
        return readings

    async def _request(self, session: AsyncClient, block: _Block) -> bytearray:
        if not session.get_connected():
            raise LinkLost("the PLC closed the connection")
        return await asyncio.wait_for(
            session.read_area(_AREAS[block.area], block.db, block.start, block.size),
            timeout=self.timeout_s,
        )

    def _decode(self, device: _Plc, block: _Block, raw: bytearray) -> list[Reading]:
        readings: list[Reading] = []
        device.problems.pop(block.label, None)
        for point in block.points:
            offset = point.address.byte - block.start
            chunk = raw[offset : offset + point.address.size]
            if len(chunk) < point.address.size:
                device.problems[point.point] = f"{point.point}: the PLC sent a short answer"
                continue
            device.problems.pop(point.point, None)
            value = decode(chunk, point.address, point.data_type)
            readings.append(Reading(point.machine, point.point, value))
        return readings

    def _refused(self, device: _Plc, block: _Block, exc: S7ProtocolError) -> None:
        names = ", ".join(f"'{p.point}'" for p in block.points)
        reason = str(exc).removeprefix("Read operation failed: ")
        problem = f"{block.label} (point {names}) refused: {reason}"
        if device.problems.get(block.label) != problem:
            logger.info("S7 PLC %s: %s", device.label, problem)
        device.problems[block.label] = problem


async def open_client(host: str, port: int, rack: int, slot: int, timeout_s: float) -> AsyncClient:
    """A connected snap7 client (closed again if connecting fails)."""
    client = AsyncClient()
    try:
        await asyncio.wait_for(client.connect(host, rack, slot, port), timeout=timeout_s)
    except BaseException:
        await client.disconnect()
        raise
    return client


def describe(exc: BaseException) -> str:
    """One line on why the link to a PLC failed."""
    text = str(exc).strip()
    if isinstance(exc, TimeoutError | S7TimeoutError):
        return "no answer (timed out)"
    if refused(exc) or "Connection refused" in text or "Connect call failed" in text:
        return "connection refused"
    if "closed by peer" in text:
        return "the PLC closed the connection"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return text or type(exc).__name__


async def browse(
    host: str, port: int, rack: int, slot: int, area: str, size: int, timeout_s: float = 4.0
) -> list[str]:
    """Lines showing ``size`` bytes of ``area`` (``DB1``, ``M``, ``I``, ``Q``) with offsets: the
    byte (hex, bits), and the INT, DINT and REAL that start at each even offset."""
    text = area.strip().upper()
    if text.startswith("DB") and text[2:].isdigit() and int(text[2:]) > 0:
        area_name, db = "DB", int(text[2:])
    elif text in ("M", "I", "E", "Q", "A"):
        area_name, db = {"E": "I", "A": "Q"}.get(text, text), 0
    else:
        raise InputError(f"'{area}' is not an S7 area; write DB1 (a data block), M, I or Q")
    if not 1 <= size <= 65535:
        raise InputError("--size is a number of bytes, 1-65535")
    client = await open_client(host, port, rack, slot, timeout_s)
    try:
        raw = await asyncio.wait_for(
            client.read_area(_AREAS[area_name], db, 0, size), timeout=timeout_s
        )
    finally:
        await client.disconnect()
    prefix = {"DB": f"DB{db}.DB", "M": "M", "I": "I", "Q": "Q"}[area_name]
    head = (
        f"{'address':<12}{'hex':<5}{'bits 7..0':<11}{'INT (W)':>9}{'DINT (D)':>13}{'REAL (D)':>14}"
    )
    lines = [head]
    for offset in range(len(raw)):
        byte = raw[offset]
        word = dint = real = ""
        if offset % 2 == 0 and offset + 2 <= len(raw):
            word = str(struct.unpack(">h", bytes(raw[offset : offset + 2]))[0])
        if offset % 2 == 0 and offset + 4 <= len(raw):
            dint = str(struct.unpack(">i", bytes(raw[offset : offset + 4]))[0])
            real = f"{struct.unpack('>f', bytes(raw[offset : offset + 4]))[0]:.7g}"
        lines.append(
            f"{prefix + 'B' + str(offset):<12}"
            f"{byte:02X}   {byte:08b}   {word:>9}{dint:>13}{real:>14}"
        )
    return lines
