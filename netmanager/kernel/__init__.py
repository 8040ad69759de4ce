"""The host engine: turn the desired kernel objects of one host into reality, transactionally.

Layers, pure until the last one::

    objects   frozen dataclasses (Namespace, Link, Address, Route, FdbEntry, Qdisc, ...),
              HostState = every object netmanager owns on one host; validate()
    scope     Scope: whose objects an engine sees and changes (owners sharing a
              namespace, the root namespace included)
    shaping   TBF/NetEm sizes from rates (burst and queues from the rate, not constants);
              NetEm below TBF, ingress shaping through an IFB
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

Owners sharing a namespace (here the root namespace, a real host's dom0): each applies and
destroys only its own objects (links marked ``nm:<owner>:``, and what hangs on them)::

    from netmanager.kernel import ROOT_NAMESPACE, Scope
    scope = Scope.of("demo", namespaces=["nm-h1-vm1"], shared=[ROOT_NAMESPACE])
    engine.apply(desired, scope=scope)      # desired: HostState.checked(objects, scope)
    engine.destroy(scope)
"""

from netmanager.kernel.contract import Action, ActionResult, Backend, Verb
from netmanager.kernel.engine import ApplyResult, Engine, MissingNamespaceError, StalePlanError
from netmanager.kernel.journal import ApplyError, Faults, UndoFailure
from netmanager.kernel.objects import (
    INGRESS_HANDLE,
    MARKER,
    ROOT_NAMESPACE,
    RT_PROTO,
    TC_H_INGRESS,
    TC_H_ROOT,
    Address,
    FdbEntry,
    HostState,
    Htb,
    HtbClass,
    Ingress,
    KernelObject,
    KernelStateError,
    Link,
    LinkKind,
    MirredRedirect,
    Namespace,
    Netem,
    Qdisc,
    Route,
    Sysctl,
    Tbf,
    U32Filter,
    VethPeer,
    Vlan,
    Vxlan,
    format_handle,
    kernel_name,
    tbf_class,
    tc_handle,
    validate,
)
from netmanager.kernel.plan import Change, Op, Plan, plan
from netmanager.kernel.scope import Scope
from netmanager.kernel.shaping import ifb_ingress, netem_for, tbf_for_rate, tbf_with_netem

__all__ = [
    "INGRESS_HANDLE",
    "MARKER",
    "ROOT_NAMESPACE",
    "RT_PROTO",
    "TC_H_INGRESS",
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
    "Ingress",
    "KernelObject",
    "KernelStateError",
    "Link",
    "LinkKind",
    "MirredRedirect",
    "MissingNamespaceError",
    "Namespace",
    "Netem",
    "Op",
    "Plan",
    "Qdisc",
    "Route",
    "Scope",
    "StalePlanError",
    "Sysctl",
    "Tbf",
    "U32Filter",
    "UndoFailure",
    "Verb",
    "VethPeer",
    "Vlan",
    "Vxlan",
    "format_handle",
    "ifb_ingress",
    "kernel_name",
    "netem_for",
    "plan",
    "tbf_class",
    "tbf_for_rate",
    "tbf_with_netem",
    "tc_handle",
    "validate",
]
