"""EtherNet/IP connector: poll Logix tags (ControlLogix, CompactLogix, Micro800) with pycomm3.

Every machine with ``connect.enip`` is read by one polling task per PLC ``(host, port, slot)``.
Points are tag names as the PLC program names them (:mod:`microfab.model.plc_address`):
``Line1.State`` (a member of a structure), ``Counts[2]`` (an array element),
``Program:Main.Count`` (a program-scoped tag).

Each tag is read with the CIP Read Tag service (0x4C) by its symbolic name, up to
:data:`TAGS_PER_REQUEST` of them in one Multiple Service Packet (tag by tag for a PLC that does
not take those). The reply carries the tag's type code, so the connector needs no tag list: it decodes any atomic type (BOOL, SINT, INT,
DINT, LINT, their unsigned forms, REAL, LREAL) with pycomm3's data types, and skips a structure
with a warning (map its members). pycomm3's client is synchronous; each connect, poll and close
runs in a worker thread so the event loop never waits on the network.

A tag the PLC refuses (unknown tag, no access) makes only that value unavailable and is named in
health; the others are still read. A failing request (socket closed, no answer) is a link loss:
back-off and ``offline``/``LINK-DOWN`` are :mod:`microfab.connect.polling`'s.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from pycomm3 import LogixDriver
from pycomm3.cip.data_types import UINT, DataTypes
from pycomm3.exceptions import CommError, PycommError
from pycomm3.packets.logix import (
    MultiServiceRequestPacket,
    ReadTagRequestPacket,
    ReadTagResponsePacket,
)

from microfab.connect.mapping import PointMapper
from microfab.connect.polling import Device, LinkLost, PlcConnector, Reading, refused
from microfab.errors import InputError
from microfab.model.factory import EnipSource, Factory

logger = logging.getLogger(__name__)

SOURCE = "enip"
_STRUCTURE = b"\xa0\x02"
TAGS_PER_REQUEST = 16
"""Tags read in one Multiple Service Packet (small enough for a 500-byte connection)."""


class _ReadReply(ReadTagResponsePacket):
    """A Read Tag reply decoded by the type code it carries (no tag list needed)."""

    def _parse_reply(self, dont_parse: bool = False) -> None:
        super()._parse_reply(dont_parse=True)
        if not self.is_valid():
            return
        data = bytes(self.data or b"")
        found: Any
        if data[:2] == _STRUCTURE:
            found = "STRUCT"
        else:
            name = DataTypes.get(UINT.decode(data[:2]))
            kind = DataTypes.get(name.lower()) if isinstance(name, str) else None
            if kind is None:
                found = f"type 0x{data[0] | data[1] << 8:04X}"
            else:
                found = name
                self.value = kind.decode(BytesIO(data[2:]))
        self.data_type = found


class _ReadTag(ReadTagRequestPacket):
    response_class = _ReadReply


Answer = tuple[Any, str | None, str | None]
"""``(value, type name, error)`` of one tag read."""


def _answer(reply: Any) -> Answer:
    if not reply.is_valid():
        return None, None, str(reply.error or "no valid reply")
    if reply.value is None:
        return None, reply.data_type, f"a {reply.data_type} is not a single value; map its members"
    return reply.value, reply.data_type, None


def read_tag(plc: LogixDriver, tag: str) -> Answer:
    """``(value, type name, error)`` of one tag (the error in the PLC's words); raises
    :class:`pycomm3.exceptions.CommError` when the link fails."""
    return _answer(plc.send(_ReadTag(plc._sequence, tag, 1, {}, 0, False)))


def read_tags(plc: LogixDriver, tags: list[str]) -> list[Answer] | None:
    """Every tag's answer from Multiple Service Packets of :data:`TAGS_PER_REQUEST` reads; None
    when the PLC does not take them (then read tag by tag)."""
    answers: list[Answer] = []
    for start in range(0, len(tags), TAGS_PER_REQUEST):
        requests = [
            _ReadTag(plc._sequence, tag, 1, {}, i, False)
            for i, tag in enumerate(tags[start : start + TAGS_PER_REQUEST])
        ]
        for request in requests:
            request.build_message()  # type: ignore[no-untyped-call]  # pycomm3, untyped
        reply = plc.send(MultiServiceRequestPacket(plc._sequence, requests))
        if not reply.is_valid() or len(reply.responses) != len(requests):
            return None
        answers += [_answer(response) for response in reply.responses]
    return answers


def open_plc(host: str, port: int, slot: int, timeout_s: float) -> LogixDriver:
    """An open pycomm3 driver, without uploading the tag list (blocking: call in a thread)."""
    path = f"{host}:{port}/{slot}" if slot else f"{host}:{port}"
    plc = LogixDriver(path, init_tags=False, init_program_tags=False)
    plc.socket_timeout = timeout_s
    try:
        if not plc.open():
            raise LinkLost(f"cannot open an EtherNet/IP session with {host}:{port}")
    except BaseException:
        plc.close()
        raise
    return plc


@dataclass
class _Plc(Device):
    host: str = ""
    port: int = 44818
    slot: int = 0
    tags: list[tuple[int, str]] = field(default_factory=list)
    """(machine, tag) of every mapped point."""
    multiple: bool = True
    """The PLC takes Multiple Service Packets (set False at the first that fails)."""


def _plcs_of(factory: Factory, poll_s: float | None) -> list[_Plc]:
    plcs: dict[tuple[str, int, int], _Plc] = {}
    for ref in factory.machines():
        source: EnipSource | None = ref.machine.connect.enip if ref.machine.connect else None
        if source is None:
            continue
        key = (source.host, source.port, source.slot)
        plc = plcs.get(key)
        if plc is None:
            plc = plcs[key] = _Plc(
                label=f"{source.host}:{source.port} slot {source.slot}",
                poll_s=poll_s or source.poll_s,
                host=source.host,
                port=source.port,
                slot=source.slot,
            )
        plc.poll_s = min(plc.poll_s, poll_s or source.poll_s)
        index = plc.add_machine(
            PointMapper(SOURCE, ref.path, list(source.points)), source.heartbeat_s
        )
        plc.tags += [(index, point.point) for point in source.points]
    return list(plcs.values())


class EnipConnector(PlcConnector[_Plc, LogixDriver]):
    """Polls every EtherNet/IP PLC of the factory model; see the module docstring."""

    name = SOURCE
    noun = "EtherNet/IP PLC"
    logger = logger
    link_errors = (CommError, PycommError, OSError, TimeoutError)

    block = "enip"
    mapped = "tags"

    @classmethod
    def _devices_of(cls, factory: Factory, poll_s: float | None) -> list[_Plc]:
        return _plcs_of(factory, poll_s)

    async def _open(self, device: _Plc) -> LogixDriver:
        return await asyncio.to_thread(
            open_plc, device.host, device.port, device.slot, self.timeout_s
        )

    async def _close(self, device: _Plc, session: LogixDriver | None) -> None:
        if session is not None:
            await asyncio.to_thread(session.close)

    def _describe(self, exc: BaseException) -> str:
        text = str(exc)
        if refused(exc) or "refused" in text.lower():
            return "connection refused"
        if text == "failed to receive reply":
            return "no reply (the connection was closed or timed out)"
        if "timed out" in text.lower():
            return "no answer (timed out)"
        return text or type(exc).__name__

    async def _read(self, device: _Plc, session: LogixDriver) -> list[Reading]:
        replies = await asyncio.to_thread(self._read_all, device, session)
        readings: list[Reading] = []
        for (machine, tag), (value, _kind, error) in zip(device.tags, replies, strict=True):
            if error is not None:
                problem = f"tag '{tag}' refused: {error}"
                if device.problems.get(tag) != problem:
                    logger.info("EtherNet/IP PLC %s: %s", device.label, problem)
                device.problems[tag] = problem
                continue
            device.problems.pop(tag, None)
            readings.append(Reading(machine, tag, value))
        return readings

    @staticmethod
    def _read_all(device: _Plc, plc: LogixDriver) -> list[Answer]:
        if not plc.connected:
            raise LinkLost("the PLC closed the connection")
        tags = [tag for _, tag in device.tags]
        if device.multiple:
            answers = read_tags(plc, tags)
            if answers is not None:
                return answers
            device.multiple = False
            logger.info(
                "EtherNet/IP PLC %s: no Multiple Service Packets; reading tag by tag", device.label
            )
        return [read_tag(plc, tag) for tag in tags]


async def list_tags(host: str, port: int, slot: int, timeout_s: float = 4.0) -> list[str]:
    """The controller's tags (name, type, dimensions), uploaded with pycomm3, as lines to print."""

    def upload() -> list[dict[str, Any]]:
        plc = open_plc(host, port, slot, timeout_s)
        try:
            return list(plc.get_tag_list(program="*"))
        finally:
            plc.close()

    try:
        tags = await asyncio.to_thread(upload)
    except PycommError as exc:
        raise InputError(
            f"{host}:{port} did not give its tag list ({exc}); a Logix controller (ControlLogix, "
            "CompactLogix) answers the Get Instance Attribute List service, simulators and "
            "other EtherNet/IP devices often do not"
        ) from None
    lines = [f"{'tag':<40}{'type':<16}dimensions"]
    for tag in sorted(tags, key=lambda t: str(t.get("tag_name"))):
        dims = [d for d in tag.get("dimensions", []) if d]
        lines.append(
            f"{tag.get('tag_name', ''):<40}{tag.get('data_type_name', ''):<16}"
            f"{'x'.join(map(str, dims)) if dims else '-'}"
        )
    return lines
