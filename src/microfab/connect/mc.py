"""Mitsubishi MC protocol connector: poll MELSEC devices over the 3E frame, binary code.

Every machine with ``connect.mc`` is read by one polling task per PLC ``(host, port)`` (the port
of an "MC protocol, TCP, binary" open setting in GX Works, often 5007 or 5000; MELSEC Q, L,
iQ-R and iQ-F/FX5 CPUs and their Ethernet modules). Points are device addresses
(:mod:`microfab.model.plc_address`): ``D100``, ``M10``, ``X0``, and ``D200:2`` for a 32-bit value
held in two words, low word first as MELSEC stores it. ``data_type``: ``int16`` (default for a
word), ``uint16``, ``int32`` (default for a pair), ``uint32``, ``real`` (a pair), ``bool`` (a bit
device, or a word that is not 0).

Points of one device code within :data:`MERGE_GAP` of each other are one batch read (command
0401; at most 960 words or 7168 bits), so a machine's words in one D range are one request per
poll. The frames are :mod:`microfab.connect.mc_frame`'s, written from the published format; no
MC library is used. A read the PLC refuses (an end code such as 0xC056, device out of range) is
split into one read per point and each refused point is named in health; the others are still
read. Link losses, back-off and ``offline``/``LINK-DOWN`` are :mod:`microfab.connect.polling`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import struct
from dataclasses import dataclass, field

from microfab.connect.mapping import PointMapper
from microfab.connect.mc_frame import (
    HEADER_SIZE,
    MAX_BITS,
    MAX_WORDS,
    McError,
    data_length,
    parse_response,
    read_request,
)
from microfab.connect.polling import Device, LinkLost, PlcConnector, Reading
from microfab.errors import InputError
from microfab.model.factory import Factory, McSource
from microfab.model.plc_address import McAddress, parse_mc

logger = logging.getLogger(__name__)

SOURCE = "mc"
MERGE_GAP = 16
"""Points of one device code at most this many devices apart are read in one request."""


class McClient:
    """One TCP connection to a MELSEC CPU speaking 3E binary frames (one request at a time)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()

    @classmethod
    async def connect(cls, host: str, port: int, timeout_s: float) -> McClient:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
        return cls(reader, writer)

    async def read(self, address: McAddress, points: int, timeout_s: float) -> list[int]:
        """``points`` words (or bits, as 0/1) from ``address``; McError when refused."""
        bits = address.is_bit
        frame = read_request(address.code, address.number, points, bits=bits)
        async with self._lock:
            self._writer.write(frame)
            await self._writer.drain()
            try:
                header = await asyncio.wait_for(self._reader.readexactly(HEADER_SIZE), timeout_s)
                data = await asyncio.wait_for(
                    self._reader.readexactly(data_length(header)), timeout_s
                )
            except asyncio.IncompleteReadError:
                raise LinkLost("the PLC closed the connection") from None
            except ValueError as exc:
                raise LinkLost(f"the PLC sent a frame that is not 3E binary ({exc})") from None
        try:
            return parse_response(data, points, bits=bits)
        except ValueError as exc:
            raise LinkLost(f"the PLC sent a short answer ({exc})") from None

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await self._writer.wait_closed()


def decode(words: list[int], data_type: str) -> int | float | bool:
    """A value from one word, or a pair (low word first)."""
    if data_type == "bool":
        return any(words)
    if len(words) == 1:
        raw = words[0] & 0xFFFF
        return raw - 0x10000 if data_type == "int16" and raw >= 0x8000 else raw
    raw32 = (words[0] & 0xFFFF) | (words[1] & 0xFFFF) << 16
    if data_type == "real":
        value = float(struct.unpack("<f", raw32.to_bytes(4, "little"))[0])
        return float(f"{value:.7g}") if math.isfinite(value) else value
    if data_type == "int32" and raw32 >= 0x80000000:
        return raw32 - 0x100000000
    return raw32


@dataclass(frozen=True)
class _Point:
    machine: int
    point: str
    address: McAddress
    data_type: str

    @property
    def width(self) -> int:
        return max(self.address.words, 1)


@dataclass
class _Block:
    head: McAddress
    count: int
    points: list[_Point]

    @property
    def label(self) -> str:
        end = self.head.number + self.count - 1
        return f"{self.head.device}{self.head.number}-{self.head.device}{end}"


@dataclass
class _Plc(Device):
    host: str = ""
    port: int = 5007
    points: list[_Point] = field(default_factory=list)
    blocks: list[_Block] = field(default_factory=list)


def plan_blocks(points: list[_Point]) -> list[_Block]:
    """Group points into batch reads: same device, within :data:`MERGE_GAP`, within the limits."""
    blocks: list[_Block] = []
    for p in sorted(points, key=lambda p: (p.address.device, p.address.number)):
        last = blocks[-1] if blocks else None
        limit = MAX_BITS if p.address.is_bit else MAX_WORDS
        if last is not None and last.head.device == p.address.device:
            end = max(last.head.number + last.count, p.address.number + p.width)
            near = p.address.number <= last.head.number + last.count + MERGE_GAP
            if near and end - last.head.number <= limit:
                last.count = end - last.head.number
                last.points.append(p)
                continue
        blocks.append(_Block(p.address, p.width, [p]))
    return blocks


def _plcs_of(factory: Factory, poll_s: float | None) -> list[_Plc]:
    plcs: dict[tuple[str, int], _Plc] = {}
    for ref in factory.machines():
        source: McSource | None = ref.machine.connect.mc if ref.machine.connect else None
        if source is None:
            continue
        plc = plcs.get((source.host, source.port))
        if plc is None:
            plc = plcs[(source.host, source.port)] = _Plc(
                label=f"{source.host}:{source.port}",
                poll_s=poll_s or source.poll_s,
                host=source.host,
                port=source.port,
            )
        plc.poll_s = min(plc.poll_s, poll_s or source.poll_s)
        index = plc.add_machine(
            PointMapper(SOURCE, ref.path, list(source.points)), source.heartbeat_s
        )
        seen: set[str] = set()
        for i, spec in enumerate(source.points):
            if spec.point in seen:
                raise InputError(
                    f"machine {ref.path}: connect.mc.points[{i}]: point '{spec.point}' is mapped "
                    "twice; map each device once"
                )
            seen.add(spec.point)
            address = parse_mc(spec.point)
            default = {0: "bool", 1: "int16", 2: "int32"}[address.words]
            plc.points.append(_Point(index, spec.point, address, spec.data_type or default))
    for plc in plcs.values():
        plc.blocks = plan_blocks(plc.points)
    return list(plcs.values())


class McConnector(PlcConnector[_Plc, McClient]):
    """Polls every MELSEC PLC of the factory model over MC protocol; see the module docstring."""

    name = SOURCE
    noun = "MC PLC"
    logger = logger

    block = "mc"
    mapped = "devices"

    @classmethod
    def _devices_of(cls, factory: Factory, poll_s: float | None) -> list[_Plc]:
        return _plcs_of(factory, poll_s)

    async def _open(self, device: _Plc) -> McClient:
        return await McClient.connect(device.host, device.port, self.timeout_s)

    async def _close(self, device: _Plc, session: McClient | None) -> None:
        if session is not None:
            await asyncio.wait_for(session.close(), timeout=self.timeout_s)

    async def _read(self, device: _Plc, session: McClient) -> list[Reading]:
        readings: list[Reading] = []
        kept: list[_Block] = []
        for block in device.blocks:
            try:
                values = await session.read(block.head, block.count, self.timeout_s)
            except McError as exc:
                if len(block.points) == 1:
                    kept.append(block)
                    self._refused(device, block, exc)
                    continue
                for point in block.points:  # read them one by one from now on
                    single = _Block(point.address, point.width, [point])
                    kept.append(single)
                    try:
                        values = await session.read(single.head, single.count, self.timeout_s)
                    except McError as single_exc:
                        self._refused(device, single, single_exc)
                        continue
                    readings += self._decode(device, single, values)
                continue
            kept.append(block)
            readings += self._decode(device, block, values)
        device.blocks = kept
        return readings

    def _decode(self, device: _Plc, block: _Block, values: list[int]) -> list[Reading]:
        device.problems.pop(block.label, None)
        readings = []
        for point in block.points:
            offset = point.address.number - block.head.number
            words = values[offset : offset + point.width]
            readings.append(Reading(point.machine, point.point, decode(words, point.data_type)))
        return readings

    def _refused(self, device: _Plc, block: _Block, exc: McError) -> None:
        names = ", ".join(f"'{p.point}'" for p in block.points)
        problem = f"{block.label} (point {names}) refused: {exc}"
        if device.problems.get(block.label) != problem:
            logger.info("MC PLC %s: %s", device.label, problem)
        device.problems[block.label] = problem
