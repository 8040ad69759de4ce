"""Emulated hosts as QEMU guests running a stock Debian kernel (``hypervisor="guest"``).

:mod:`.image` builds the kernel and initramfs, :mod:`.qemu` starts and stops guests and
talks to :mod:`.guestd`, the control daemon inside each guest.
"""

#: The capabilities (names of real.xml's ``capabilities``) of the guests' stock Debian
#: kernel with the modules the initramfs loads; tests/guests check them with ``doctor``
#: inside a guest.
GUEST_FEATURES = frozenset(
    {
        "8021q",
        "vxlan",
        "netem",
        "tbf",
        "htb",
        "ifb",
        "bridge",
        "br_netfilter",
        "ebtables",
        "iptables",
    }
)
