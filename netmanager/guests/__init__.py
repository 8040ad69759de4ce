"""Emulated hosts as QEMU guests running a stock Debian kernel (``hypervisor="guest"``).

:mod:`.image` builds the kernel and initramfs, :mod:`.qemu` starts and stops guests and
talks to :mod:`.guestd`, the control daemon inside each guest.
"""
