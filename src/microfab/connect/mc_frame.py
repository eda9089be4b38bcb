"""Mitsubishi MC protocol, 3E frame, binary code: the frames of a batch read, both ways.

Written from the published frame format (Mitsubishi Electric, "MELSEC Communication Protocol
Reference Manual", SH-080008, the 3E frame and the Batch Read command 0401). Only what the
connector needs: a batch read of word or bit devices, in the Q/L-series form of the device
specification (3-byte device number, 1-byte device code), which iQ-R and iQ-F (FX5) CPUs accept
as well. All numbers are little-endian.

Request::

    50 00         subheader
    00            network number
    FF            PC number
    FF 03         request destination module I/O number (0x03FF: own station)
    00            request destination module station number
    LL LL         request data length: bytes from the monitoring timer to the end
    TT TT         monitoring timer, units of 250 ms
    01 04         command 0x0401, batch read
    SS SS         subcommand 0x0000 word units, 0x0001 bit units
    NN NN NN      head device number
    CC            device code (D 0xA8, M 0x90, X 0x9C, ...)
    PP PP         number of device points

Response::

    D0 00 00 FF FF 03 00   subheader and the same route
    LL LL                  response data length: end code and data
    EE EE                  end code (0: completed; otherwise the error code, then 9 bytes of
                           error information)
    data                   words: 2 bytes each; bits: 4 bits each, the first point in the high
                           nibble of the first byte
"""

from __future__ import annotations

import struct

SUBHEADER_REQUEST = b"\x50\x00"
SUBHEADER_RESPONSE = b"\xd0\x00"
ROUTE = b"\x00\xff\xff\x03\x00"
"""Network 0, PC 0xFF, module I/O 0x03FF, station 0: the connected CPU itself."""
BATCH_READ = 0x0401
WORD_UNITS = 0x0000
BIT_UNITS = 0x0001
HEADER_SIZE = 9
"""Subheader, route and data length: the bytes before a frame's data."""

MAX_WORDS = 960
"""Most word points one batch read may ask for."""
MAX_BITS = 7168
"""Most bit points one batch read may ask for."""

END_CODES = {
    0xC050: "ASCII data that cannot be converted",
    0xC051: "too many points",
    0xC056: "device out of range",
    0xC059: "command or subcommand not supported",
    0xC05B: "the CPU cannot read this device",
    0xC05C: "wrong request",
    0xC061: "request data length does not match",
}


class McError(Exception):
    """The PLC answered with an end code other than 0."""

    def __init__(self, code: int) -> None:
        self.code = code
        super().__init__(f"end code 0x{code:04X} ({END_CODES.get(code, 'error')})")


def read_request(
    device_code: int, head: int, points: int, *, bits: bool, timer_250ms: int = 16
) -> bytes:
    """A 3E binary batch read request."""
    body = (
        struct.pack("<HHH", timer_250ms, BATCH_READ, BIT_UNITS if bits else WORD_UNITS)
        + struct.pack("<I", head)[:3]
        + struct.pack("<BH", device_code, points)
    )
    return SUBHEADER_REQUEST + ROUTE + struct.pack("<H", len(body)) + body


def data_length(header: bytes) -> int:
    """Bytes that follow the 9-byte header of a frame (checks the subheader)."""
    if len(header) != HEADER_SIZE or header[:2] not in (SUBHEADER_REQUEST, SUBHEADER_RESPONSE):
        raise ValueError(f"not a 3E binary frame: {header.hex(' ')}")
    return int(struct.unpack("<H", header[7:9])[0])


def parse_response(data: bytes, points: int, *, bits: bool) -> list[int]:
    """The values of a response's data (after the header): words, or bits as 0/1.

    Raises :class:`McError` for an end code other than 0, ValueError for a short answer.
    """
    if len(data) < 2:
        raise ValueError("the response has no end code")
    code = int(struct.unpack("<H", data[:2])[0])
    if code != 0:
        raise McError(code)
    payload = data[2:]
    if bits:
        if len(payload) < (points + 1) // 2:
            raise ValueError("the response is shorter than the bits asked for")
        values = []
        for i in range(points):
            byte = payload[i // 2]
            values.append((byte >> 4) & 1 if i % 2 == 0 else byte & 1)
        return values
    if len(payload) < points * 2:
        raise ValueError("the response is shorter than the words asked for")
    return list(struct.unpack(f"<{points}H", payload[: points * 2]))


def parse_request(data: bytes) -> tuple[int, int, int, int, int]:
    """``(command, subcommand, head, device_code, points)`` of a request's data (a server's
    view; the data starts at the monitoring timer)."""
    if len(data) < 12:
        raise ValueError("request too short")
    _timer, command, subcommand = struct.unpack("<HHH", data[:6])
    head = int.from_bytes(data[6:9], "little")
    device_code, points = struct.unpack("<BH", data[9:12])
    return command, subcommand, head, device_code, points


def response(end_code: int, payload: bytes = b"") -> bytes:
    """A 3E binary response frame; an error carries the 9 bytes of error information."""
    if end_code != 0:
        payload = ROUTE + struct.pack("<HH", BATCH_READ, WORD_UNITS)
    body = struct.pack("<H", end_code) + payload
    return SUBHEADER_RESPONSE + ROUTE + struct.pack("<H", len(body)) + body


def pack_bits(values: list[int]) -> bytes:
    """Bits as a response carries them: two per byte, the first in the high nibble."""
    out = bytearray()
    for i in range(0, len(values), 2):
        high = values[i] & 1
        low = values[i + 1] & 1 if i + 1 < len(values) else 0
        out.append(high << 4 | low)
    return bytes(out)
