"""netmanager: a network virtualization provisioner for emulation testbeds.

The Python API, for emulation frameworks (see :mod:`netmanager.testbed`)::

    from netmanager import Testbed
    with Testbed("real.xml", "virtual.xml") as tb:      # applies; destroys on exit
        tb.exec("vm1", ["ping", "-c3", "10.0.0.2"], check=True)

and the pipeline's first stages on their own::

    import netmanager
    model = netmanager.load("real.xml", "virtual.xml")   # raises NetmanagerError
    mapping = netmanager.map(model)                       # raises InfeasibleError
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netmanager.errors import Diagnostic, ExitCode, InfeasibleError, NetmanagerError
from netmanager.lazy import exports

if TYPE_CHECKING:
    from netmanager.inputs.loader import load, load_with_warnings
    from netmanager.inputs.model import Model
    from netmanager.mapping import Mapping
    from netmanager.testbed import (
        GuestProcess,
        HostResult,
        InterfaceStatus,
        LinkState,
        Plan,
        PlannedChange,
        ProgressEvent,
        Result,
        Status,
        Testbed,
        VMStatus,
    )

# imported on first use (netmanager.lazy)
_LAZY = {
    "load": "netmanager.inputs.loader",
    "load_with_warnings": "netmanager.inputs.loader",
    "Model": "netmanager.inputs.model",
    **{
        name: "netmanager.testbed"
        for name in (
            "GuestProcess",
            "HostResult",
            "InterfaceStatus",
            "LinkState",
            "Plan",
            "PlannedChange",
            "ProgressEvent",
            "Result",
            "Status",
            "Testbed",
            "VMStatus",
        )
    },
}
__getattr__ = exports(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__version__ = "0.1.0"


def map(model: Model, **options: object) -> Mapping:
    """Place the model's VMs on hosts and its links on paths (``netmanager.mapping.map_model``)."""
    from netmanager.mapping import map_model

    return map_model(model, **options)  # type: ignore[arg-type]


__all__ = [
    "Diagnostic",
    "ExitCode",
    "GuestProcess",
    "HostResult",
    "InfeasibleError",
    "InterfaceStatus",
    "LinkState",
    "Model",
    "NetmanagerError",
    "Plan",
    "PlannedChange",
    "ProgressEvent",
    "Result",
    "Status",
    "Testbed",
    "VMStatus",
    "load",
    "load_with_warnings",
    "map",
]
