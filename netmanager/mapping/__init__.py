"""The mapping stage: VMs onto hosts, virtual links onto physical paths, segment ids.

``map_model(model)`` is the entry point; it is pure (no I/O) and deterministic.  The
modules, bottom up:

- :mod:`.demand`: the virtual topology as hyperedges with bandwidth demand (and the
  placement objective);
- :mod:`.physical`: the physical environment as a networkx graph;
- :mod:`.placement`: the capacity-aware partitioning heuristic;
- :mod:`.routing`: paths, hose-model reservations and latency budgets;
- :mod:`.segments`: VLAN ids / VNIs and their record in the state directory;
- :mod:`.problems`: the E6xx diagnostics (the table of codes is there);
- :mod:`.mapper`: :func:`map_model`; :mod:`.result`: the :class:`Mapping`;
- :mod:`.render`: the hosts × networks table.

networkx is used only inside this package.
"""

from netmanager.mapping.mapper import map_model
from netmanager.mapping.render import render_table, vm_ranges
from netmanager.mapping.result import (
    DelayBudget,
    HostLoad,
    HostUsage,
    LinkLoad,
    Mapping,
    NetworkRoute,
    Occupied,
    PairRoute,
    Segment,
)
from netmanager.mapping.segments import (
    load_allocations,
    release_allocations,
    save_allocations,
)

__all__ = [
    "DelayBudget",
    "HostLoad",
    "HostUsage",
    "LinkLoad",
    "Mapping",
    "NetworkRoute",
    "Occupied",
    "PairRoute",
    "Segment",
    "load_allocations",
    "map_model",
    "release_allocations",
    "render_table",
    "save_allocations",
    "vm_ranges",
]
