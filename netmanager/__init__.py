"""netmanager: a network virtualization provisioner for emulation testbeds.

The Python API mirrors the command line::

    import netmanager
    model = netmanager.load("real.xml", "virtual.xml")   # raises NetmanagerError
    mapping = netmanager.map(model)                       # raises InfeasibleError
"""

from typing import TYPE_CHECKING

from netmanager.errors import Diagnostic, ExitCode, NetmanagerError
from netmanager.loader import load, load_with_warnings
from netmanager.model import Model

if TYPE_CHECKING:
    from netmanager.mapping import Mapping

__version__ = "0.1.0"


def map(model: Model, **options: object) -> "Mapping":
    """Place the model's VMs on hosts and its links on paths (``netmanager.mapping.map_model``)."""
    from netmanager.mapping import map_model

    return map_model(model, **options)  # type: ignore[arg-type]


__all__ = [
    "Diagnostic",
    "ExitCode",
    "Model",
    "NetmanagerError",
    "load",
    "load_with_warnings",
    "map",
]
