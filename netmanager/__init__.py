"""netmanager: a network virtualization provisioner for emulation testbeds."""

__version__ = "0.1.0"
