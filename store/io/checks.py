"""Checks every importer applies to untrusted input: text encoding, finite numbers, files kept inside the data set."""

from __future__ import annotations

import codecs
import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

OUTSIDE_FLAG = "--allow-outside"
MAX_LINE_BYTES = 1 << 20  # one line of a CSV (Python's csv module refuses a field above 128 KiB anyway)


def decode_utf8(raw: bytes, name: str, problems: list[str]) -> str | None:
    """`raw` as text (a UTF-8 byte-order mark is dropped); None and a "name:line" problem when not UTF-8."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        problems.append(f"{name}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                        "save it as UTF-8")
        return None


def utf8_lines(handle: BinaryIO, name: str, problems: list[str]) -> Iterator[str]:
    """The lines of a binary file as text, one at a time (a UTF-8 byte-order mark is dropped). At a line that is
    not UTF-8, or longer than `MAX_LINE_BYTES`, a "name:line" problem is added and the lines end."""
    offset = 0
    for number in itertools.count(1):
        raw = handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            problems.append(f"{name}:{number}: a line longer than {MAX_LINE_BYTES // 2**20} MiB; this is not a CSV "
                            "of one row per line")
            return
        start = len(codecs.BOM_UTF8) if number == 1 and raw.startswith(codecs.BOM_UTF8) else 0
        try:
            yield raw[start:].decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(f"{name}:{number}: not UTF-8 text (byte 0x{raw[start + exc.start]:02x} at offset "
                            f"{offset + start + exc.start}); save it as UTF-8")
            return
        offset += len(raw)


def finite_float(value: object) -> float | None:
    """`value` as a float when it is a JSON number that fits one: not bool, NaN, ±inf or an int beyond 1e308."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def pixel_coordinate(text: str, what: str, problems: list[str]) -> float | None:
    """`text` as a finite float; None and a problem "`what` 'text' is not a (finite) number" when it is not one."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        problems.append(f"{what} {text!r} is not a number; write the pixel coordinate")
        return None
    if not math.isfinite(value):  # float() reads "nan", "inf" and 1e400 (= inf) without complaint
        problems.append(f"{what} {text!r} is not a finite number; write the pixel coordinate")
        return None
    return value


class Confinement:
    """Keeps imported files inside a data set folder: symlinks and `..` are followed before the check.

    `name_paths=False` (imports a browser user asks for): a refusal names no path on the server, neither where
    the file really is nor the folder, and offers no command-line flag.
    """

    def __init__(self, root: Path, *, allow_outside: bool = False, name_paths: bool = True) -> None:
        self.root = root
        self.allow_outside = allow_outside
        self.name_paths = name_paths
        self._real_root = root.resolve()

    def refusal(self, file: Path) -> str | None:
        """None when `file` may be imported; else where it really is and what to do."""
        if self.allow_outside:
            return None
        resolved = file.resolve()
        if resolved.is_relative_to(self._real_root):
            return None
        if not self.name_paths:
            return ("the image lies outside the data set (an absolute path, '..' or a link leading out of it); put "
                    "the image itself inside the data set")
        return (f"the image resolves to {resolved}, outside the data set folder {self.root}; move it into that "
                f"folder, or pass {OUTSIDE_FLAG} if images outside it are meant to be imported")
