"""Human quantities ("100Mbit/s", "20ms", "0.5%", "256MB") parsed into integers in canonical units.

This is the only place where unit strings are read (and :func:`format_rate` & co. the only
place where they are written back for people).  Canonical units, used in every field name
of the model:

========== ============== ================================================
quantity   unit           accepted suffixes
========== ============== ================================================
rate       bit/s (bps)    bit kbit Mbit Gbit Tbit (SI, like tc), each optionally
                          followed by ``/s``; ``B/s kB/s MB/s GB/s`` for bytes per second
time       microseconds   us µs ms s  (a bare number is refused: say the unit)
fraction   ppm            ``%`` (0 to 100, up to four decimals)
memory     MiB            MiB GiB TiB and MB GB TB, all binary (as hypervisors count)
========== ============== ================================================

``Mbps``-style suffixes are refused: tc reads ``mbps`` as megabytes per second while most
people mean megabits, and a quiet factor of 8 is the worst kind of error for an emulator.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_NUMBER = r"(?P<num>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"


class UnitError(ValueError):
    """A quantity that cannot be read; the message says why and what would be accepted."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


_RATE_PREFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_RATE_RE = re.compile(_NUMBER + r"\s*(?P<prefix>[kKmMgGtT]?)(?P<kind>bit|B)(?:/s)?$")
_TIME_UNIT = {"us": 1, "µs": 1, "μs": 1, "ms": 1000, "s": 1_000_000}
_TIME_RE = re.compile(_NUMBER + r"\s*(?P<unit>us|µs|μs|ms|s)$")
_PERCENT_RE = re.compile(_NUMBER + r"\s*%$")
_MEMORY_UNIT = {"m": 1, "g": 1024, "t": 1024 * 1024}
_MEMORY_RE = re.compile(_NUMBER + r"\s*(?P<prefix>[MmGgTt])(?:i?B)$")

RATE_HINT = "write a rate such as '1Mbit', '100Mbit/s', '1.5Gbit' or '10MB/s' (bytes)"
TIME_HINT = "write a time such as '20ms', '150us' or '1.5s'"
PERCENT_HINT = "write a percentage from 0 to 100 such as '0.5%'"
MEMORY_HINT = "write a size such as '256MB', '512MiB' or '2.5GB' (binary units)"

MAX_RATE_BPS = 10**13
MAX_TIME_US = 3_600_000_000


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only numbers
        raise UnitError(f"'{text}' is not a number", "") from exc


def _whole(value: Decimal, what: str, text: str, hint: str) -> int:
    if value != value.to_integral_value():
        raise UnitError(f"{what} '{text}' is finer than the smallest unit", hint)
    return int(value)


def parse_rate(text: str) -> int:
    """'100Mbit/s' -> 100_000_000 (bit/s)."""
    s = text.strip()
    m = _RATE_RE.match(s)
    if not m:
        if re.search(r"bps$", s, re.IGNORECASE):
            raise UnitError(
                f"rate '{text}' is ambiguous: tc reads 'bps' as bytes per second",
                "write 'Mbit' (or 'Mbit/s') for megabits per second, 'MB/s' for megabytes",
            )
        if re.fullmatch(_NUMBER, s):
            raise UnitError(f"rate '{text}' has no unit", RATE_HINT)
        raise UnitError(f"'{text}' is not a rate", RATE_HINT)
    value = _decimal(m["num"]) * _RATE_PREFIX[m["prefix"].lower()]
    if m["kind"] == "B":
        value *= 8
    bps = _whole(value, "rate", text, "use a whole number of bit/s")
    if bps <= 0:
        raise UnitError(f"rate '{text}' must be above zero", RATE_HINT)
    if bps > MAX_RATE_BPS:
        raise UnitError(f"rate '{text}' is above 10Tbit", RATE_HINT)
    return bps


def parse_time(text: str) -> int:
    """'20ms' -> 20_000 (µs)."""
    s = text.strip()
    m = _TIME_RE.match(s)
    if not m:
        if re.fullmatch(_NUMBER, s):
            raise UnitError(f"time '{text}' has no unit", TIME_HINT)
        raise UnitError(f"'{text}' is not a time", TIME_HINT)
    value = _decimal(m["num"]) * _TIME_UNIT[m["unit"]]
    us = _whole(value, "time", text, "the smallest unit is 1us")
    if us > MAX_TIME_US:
        raise UnitError(f"time '{text}' is above one hour", TIME_HINT)
    return us


def parse_percent(text: str) -> int:
    """'0.5%' -> 5000 (ppm)."""
    s = text.strip()
    m = _PERCENT_RE.match(s)
    if not m:
        raise UnitError(f"'{text}' is not a percentage", PERCENT_HINT)
    value = _decimal(m["num"]) * 10_000
    ppm = _whole(value, "percentage", text, "use at most four decimals")
    if ppm > 1_000_000:
        raise UnitError(f"percentage '{text}' is above 100%", PERCENT_HINT)
    return ppm


def parse_memory(text: str) -> int:
    """'2.5GB' -> 2560 (MiB)."""
    s = text.strip()
    m = _MEMORY_RE.match(s)
    if not m:
        raise UnitError(f"'{text}' is not a memory size", MEMORY_HINT)
    value = _decimal(m["num"]) * _MEMORY_UNIT[m["prefix"].lower()]
    mib = _whole(value, "size", text, "the smallest unit is 1MiB")
    if mib <= 0:
        raise UnitError(f"size '{text}' must be above zero", MEMORY_HINT)
    return mib


def _trim(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def format_rate(bps: int) -> str:
    for unit, factor in (("Gbit", 10**9), ("Mbit", 10**6), ("kbit", 10**3)):
        if bps >= factor:
            return f"{_trim(bps / factor)}{unit}"
    return f"{bps}bit"


def format_time(us: int) -> str:
    if us >= 1_000_000:
        return f"{_trim(us / 1_000_000)}s"
    if us >= 1000:
        return f"{_trim(us / 1000)}ms"
    return f"{us}us"


def format_percent(ppm: int) -> str:
    return f"{_trim(ppm / 10_000)}%"


def format_memory(mib: int) -> str:
    if mib >= 1024 and mib % 1024 == 0:
        return f"{mib // 1024}GiB"
    if mib >= 1024:
        return f"{_trim(mib / 1024)}GiB"
    return f"{mib}MiB"
