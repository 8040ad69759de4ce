"""How busy this machine's CPUs were while something was measured.

The kernel's pressure stall information (PSI, ``/proc/pressure/cpu``) counts, in
microseconds, how long some task waited for a CPU.  Over a measurement, that total's
growth divided by the measurement's length is the share of the time during which the
CPUs were contended.  A measurement that came out *worse* than declared (a round trip
longer, a rate lower) while that share was high says more about this machine than about
the emulation, and is measured again or reported as inconclusive; one that came out
*better* than declared (a shaper missing) is never explained by a busy machine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

CPU_PRESSURE = Path("/proc/pressure/cpu")

# Share of the time some task waited for a CPU above which a measurement that fell short
# is not held against the emulation.
BUSY_PRESSURE = 0.5


def cpu_stall_us() -> int | None:
    """How long, in all, some task on this machine has waited for a CPU (PSI's ``some``
    total, microseconds), or None where the kernel does not say."""
    try:
        text = CPU_PRESSURE.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("some "):
            for word in line.split():
                if word.startswith("total="):
                    return int(word[len("total=") :])
    return None


@dataclass
class CpuWatch:
    """Started when created; :meth:`share` is the share of the time since during which
    some task waited for a CPU (0..1), None where the kernel has no PSI."""

    stall_us: int | None = field(default_factory=cpu_stall_us)
    start: float = field(default_factory=time.monotonic)

    def share(self) -> float | None:
        end = cpu_stall_us()
        elapsed = time.monotonic() - self.start
        if self.stall_us is None or end is None or elapsed <= 0:
            return None
        return min(1.0, max(0.0, (end - self.stall_us) / 1e6 / elapsed))


def busy(share: float | None) -> bool:
    return share is not None and share >= BUSY_PRESSURE
