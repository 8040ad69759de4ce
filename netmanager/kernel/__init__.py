"""The host engine: turn the desired kernel objects of one host into reality, transactionally.

Layers, pure until the last one::

    objects   frozen dataclasses (Namespace, Link, Address, Route, FdbEntry, Qdisc, ...),
              HostState = every object netmanager owns on one host; validate()
    shaping   TBF/NetEm sizes from rates (burst and queues from the rate, not constants)
    plan      desired vs observed -> ordered + ~ - changes with reasons (and implied ones)
    journal   execute a plan on a backend; on failure undo what was done, report undo errors
    backend   the local kernel: observe by dumps, apply by batched rtnetlink, one socket per
              namespace, namespaces created in-process        (NetlinkBackend)
    fake      an in-memory kernel that fails like the real one (FakeKernel)
    engine    Engine.plan / apply / destroy over any backend

Example::

    from netmanager.kernel import Engine, HostState, Namespace, Link, LinkKind, VethPeer
    state = HostState.checked([
        Namespace("nm-h1"), Namespace("nm-h1-vm1"),
        Link("nm-h1", "br-net1", LinkKind.BRIDGE, alias="nm:demo:net1"),
        Link("nm-h1", "vm1-0", LinkKind.VETH, alias="nm:demo:vm1/0", master="br-net1",
             peer=VethPeer("nm-h1-vm1", "eth0")),
        Link("nm-h1-vm1", "eth0", LinkKind.VETH, alias="nm:demo:vm1/0",
             peer=VethPeer("nm-h1", "vm1-0")),
    ])
    with Engine() as engine:
        print(engine.plan(state).render())
        engine.apply(state)
"""

from netmanager.kernel.contract import Action, ActionResult, Backend, Verb
from netmanager.kernel.engine import ApplyResult, Engine, StalePlanError
from netmanager.kernel.journal import ApplyError, Faults, UndoFailure
from netmanager.kernel.objects import (
    MARKER,
    RT_PROTO,
    TC_H_ROOT,
    Address,
    FdbEntry,
    HostState,
    Htb,
    HtbClass,
    KernelObject,
    KernelStateError,
    Link,
    LinkKind,
    Namespace,
    Netem,
    Qdisc,
    Route,
    Sysctl,
    Tbf,
    U32Filter,
    VethPeer,
    Vxlan,
    format_handle,
    kernel_name,
    tc_handle,
    validate,
)
from netmanager.kernel.plan import Change, Op, Plan, plan
from netmanager.kernel.shaping import netem_for, tbf_for_rate

__all__ = [
    "MARKER",
    "RT_PROTO",
    "TC_H_ROOT",
    "Action",
    "ActionResult",
    "Address",
    "ApplyError",
    "ApplyResult",
    "Backend",
    "Change",
    "Engine",
    "Faults",
    "FdbEntry",
    "HostState",
    "Htb",
    "HtbClass",
    "KernelObject",
    "KernelStateError",
    "Link",
    "LinkKind",
    "Namespace",
    "Netem",
    "Op",
    "Plan",
    "Qdisc",
    "Route",
    "StalePlanError",
    "Sysctl",
    "Tbf",
    "U32Filter",
    "UndoFailure",
    "Verb",
    "VethPeer",
    "Vxlan",
    "format_handle",
    "kernel_name",
    "netem_for",
    "plan",
    "tbf_for_rate",
    "tc_handle",
    "validate",
]
