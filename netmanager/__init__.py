"""netmanager: a network virtualization provisioner for emulation testbeds.

The Python API mirrors the command line::

    import netmanager
    model = netmanager.load("real.xml", "virtual.xml")   # raises NetmanagerError
"""

from netmanager.errors import Diagnostic, ExitCode, NetmanagerError
from netmanager.loader import load, load_with_warnings
from netmanager.model import Model

__version__ = "0.1.0"

__all__ = ["Diagnostic", "ExitCode", "Model", "NetmanagerError", "load", "load_with_warnings"]
