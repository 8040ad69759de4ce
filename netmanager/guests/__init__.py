"""Emulated hosts as QEMU guests running a stock Debian kernel (``hypervisor="guest"``).

:mod:`.image` builds the kernel and initramfs, :mod:`.qemu` starts and stops guests and
talks to :mod:`.guestd`, the control daemon inside each guest.
"""

from netmanager.inputs.model import CAPABILITIES

#: The capabilities of the guests' stock Debian kernel with the modules the initramfs loads:
#: every one real.xml can name (tests/guests check them with ``doctor`` inside a guest).
GUEST_FEATURES = CAPABILITIES
