"""PLC addresses as written in a factory file: Siemens S7, Mitsubishi MC and Logix tag names.

Pure parsing (no I/O): the factory model validates every mapped point with these functions, so a
bad address fails ``microfab validate`` with its file and line, and the connectors use the same
parsed form to plan their reads.

- **S7** (:func:`parse_s7`): ``DB1.DBX14.0`` (bit), ``DB1.DBB4`` (byte), ``DB1.DBW0`` (word),
  ``DB1.DBD2`` (double word); the flag, input and output areas ``M``, ``I`` (or German ``E``) and
  ``Q`` (or ``A``): ``M10.3``, ``MB10``, ``MW10``, ``MD10``, ``I0.0``, ``IW64``, ``Q0.1``.
- **MC** (:func:`parse_mc`): a device code and number, ``D100``, ``M10``, ``X0`` (X, Y, B and W
  are numbered in hex, as on Q and iQ-R CPUs), and ``D200:2`` for a 32-bit value held in two
  words (low word first).
- **Logix** (:func:`check_logix_tag`): ``Line1.State``, ``Counts[2]``, ``Program:Main.Count``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

S7Area = Literal["DB", "M", "I", "Q"]

S7_SYNTAX = (
    "write DBn.DBX byte.bit, DBn.DBB byte, DBn.DBW byte or DBn.DBD byte (e.g. DB1.DBX14.0, "
    "DB1.DBW0), or M/I/Q as M10.3, MB10, MW10, MD10, I0.0, IW64, Q0.1"
)

S7_SIZE = {"X": 1, "B": 1, "W": 2, "D": 4}
"""Bytes read for an address of each width letter (a bit is read as its byte)."""

S7_TYPES_BY_WIDTH = {
    "X": ("bool",),
    "B": ("byte", "bool"),
    "W": ("int16", "uint16", "bool"),
    "D": ("int32", "uint32", "real", "bool"),
}
"""Data types an address of each width letter can hold (``bool`` on a byte or word: non-zero)."""

S7_DEFAULT_TYPE = {"X": "bool", "B": "byte", "W": "int16", "D": "int32"}


@dataclass(frozen=True, slots=True)
class S7Address:
    """A parsed S7 address: area (DB number for ``DB``), width letter, byte offset, bit."""

    area: S7Area
    db: int
    width: str
    """``X`` (bit), ``B``, ``W`` or ``D``."""
    byte: int
    bit: int | None = None

    @property
    def size(self) -> int:
        return S7_SIZE[self.width]


_DB = re.compile(r"^DB(\d{1,5})\.DB([XBWD])(\d{1,5})(?:\.(\d))?$")
_AREA = re.compile(r"^([MIEQA])([BWD]?)(\d{1,5})(?:\.(\d))?$")
_AREA_NAMES: dict[str, S7Area] = {"M": "M", "I": "I", "E": "I", "Q": "Q", "A": "Q"}


def parse_s7(point: str) -> S7Address:
    """The S7 address ``point`` names; ValueError (saying the syntax) when it is not one."""
    text = point.strip().upper().replace(" ", "")
    bad = ValueError(f"point '{point}' is not an S7 address; {S7_SYNTAX}")
    found = _DB.match(text)
    if found is not None:
        db, width, offset, bit = found.groups()
        area: S7Area = "DB"
        number = int(db)
        if number < 1:
            raise ValueError(f"point '{point}': data blocks are numbered from DB1")
    else:
        found = _AREA.match(text)
        if found is None:
            raise bad
        letter, width, offset, bit = found.groups()
        area = _AREA_NAMES[letter]
        number = 0
        width = width or "X"
    if width == "X":
        if bit is None:
            raise ValueError(f"point '{point}': a bit address needs byte.bit, e.g. DB1.DBX14.0")
        if int(bit) > 7:
            raise ValueError(f"point '{point}': the bit is 0-7")
        return S7Address(area, number, "X", int(offset), int(bit))
    if bit is not None:
        raise bad
    return S7Address(area, number, width, int(offset))


def check_s7_type(address: S7Address, data_type: str) -> None:
    """ValueError when ``data_type`` does not fit the width of ``address``."""
    allowed = S7_TYPES_BY_WIDTH[address.width]
    if data_type not in allowed:
        names = {"X": "a bit", "B": "a byte", "W": "a word", "D": "a double word"}
        raise ValueError(
            f"data_type {data_type} does not fit {names[address.width]} address; "
            f"use {' or '.join(allowed)} (or an address of the right width: "
            "DBX bit, DBB byte, DBW 16-bit, DBD 32-bit)"
        )


# --------------------------------------------------------------------------- Mitsubishi MC

MC_SYNTAX = (
    "write a device code and number such as D100, M10, X0, W1F or ZR0, and add :2 for a 32-bit "
    "value in two words (D200:2); word devices D, W, R, ZR, SD, TN, CN; bit devices M, X, Y, L, "
    "F, B, SM (X, Y, B and W are numbered in hex)"
)

MC_WORD_DEVICES: dict[str, int] = {
    "D": 0xA8,
    "W": 0xB4,
    "R": 0xAF,
    "ZR": 0xB0,
    "SD": 0xA9,
    "TN": 0xC2,
    "CN": 0xC5,
}
"""Word devices and their binary device codes (3E frame)."""

MC_BIT_DEVICES: dict[str, int] = {
    "M": 0x90,
    "X": 0x9C,
    "Y": 0x9D,
    "L": 0x92,
    "F": 0x93,
    "B": 0xA0,
    "SM": 0x91,
}
"""Bit devices and their binary device codes (3E frame)."""

MC_HEX_DEVICES = frozenset({"X", "Y", "B", "W"})

_MC = re.compile(r"^(ZR|SD|SM|TN|CN|[DWRMXYLFB])([0-9A-F]+)(?::([12]))?$")


@dataclass(frozen=True, slots=True)
class McAddress:
    """A parsed MC device address: device name, number, words (1 or 2; 0 for a bit device)."""

    device: str
    number: int
    words: int

    @property
    def code(self) -> int:
        return MC_WORD_DEVICES.get(self.device) or MC_BIT_DEVICES[self.device]

    @property
    def is_bit(self) -> bool:
        return self.device in MC_BIT_DEVICES


def parse_mc(point: str) -> McAddress:
    """The MC device address ``point`` names; ValueError (saying the syntax) when it is not one."""
    text = point.strip().upper()
    found = _MC.match(text)
    bad = ValueError(f"point '{point}' is not an MC device address; {MC_SYNTAX}")
    if found is None:
        raise bad
    device, digits, pair = found.groups()
    base = 16 if device in MC_HEX_DEVICES else 10
    try:
        number = int(digits, base)
    except ValueError:
        raise bad from None
    if number > 0xFFFFFF:
        raise ValueError(f"point '{point}': the device number is beyond 16777215")
    if device in MC_BIT_DEVICES:
        if pair is not None:
            raise ValueError(f"point '{point}': :2 (a 32-bit pair) is for word devices only")
        return McAddress(device, number, 0)
    return McAddress(device, number, int(pair or 1))


# --------------------------------------------------------------------------- Logix tags

LOGIX_SYNTAX = (
    "write a Logix tag name such as Line1.State, Counts[2] or Program:Main.Count "
    "(letters, digits and _, members after '.', array indexes in [])"
)

_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\[\d+(?:,\d+){0,2}\])?"
_TAG = re.compile(rf"^(?:Program:[A-Za-z_][A-Za-z0-9_]*\.)?{_NAME}(?:\.{_NAME})*(?:\.\d{{1,2}})?$")


def check_logix_tag(point: str) -> str:
    """``point`` when it is a Logix tag name; ValueError (saying the syntax) when not."""
    if _TAG.match(point.strip()) is None:
        raise ValueError(f"point '{point}' is not a tag name; {LOGIX_SYNTAX}")
    return point.strip()
