"""Desired state vs observed state -> an ordered list of changes, each with its reason.

A change is ``+`` (create), ``~`` (modify in place: an MTU, a bridge master, a TBF rate —
a qdisc is changed, never deleted and re-added, Mininet #650) or ``-`` (delete).  An
object whose identity-defining fields differ (a VXLAN's VNI, a qdisc's kind) is replaced:
``-`` then ``+``.

Order: every deletion first, dependents before what they depend on (routes before
addresses before links before namespaces), then every creation and modification in
dependency order (namespaces, bridges before their ports, links before addresses before
routes).  Among changes that could go in either order, changes in the same namespace are
kept together, so that the engine sends one batch per namespace.

Deletions the kernel does by itself — the contents of a deleted namespace, the addresses
of a deleted link, the peer of a deleted veth end, the ports a deleted bridge releases —
are listed as *implied* changes: never sent, but undone like the others if the apply has
to roll back.  The end of a veth pair that crosses out of a namespace being deleted is
deleted explicitly, because namespace teardown is asynchronous and would leave that end
in the surviving namespace for a while.

Where the kernel would leave something broken, the planner replaces more than asked:

* a TBF whose child qdisc (NetEm) goes is replaced too: deleting the child of a TBF
  leaves it with a qdisc that drops every packet (sch_tbf grafts ``noop``);
* a redirect whose target link goes is deleted before it and created again: the kernel
  keeps the filter, redirecting to nothing.  The target is deleted only after the link
  the redirect sits on and its ingress qdisc, so that the kernel never has to leave a
  redirect dangling during an apply.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from functools import cached_property
from typing import Any

from netmanager.inputs.units import format_rate
from netmanager.kernel.contract import Action, Verb
from netmanager.kernel.netlink import burst_tolerance
from netmanager.kernel.objects import (
    ADOPTED,
    MARKER,
    ORDER,
    TC_H_INGRESS,
    TC_H_ROOT,
    Address,
    FdbEntry,
    HostState,
    HtbClass,
    KernelObject,
    Key,
    Link,
    MirredRedirect,
    Namespace,
    Netem,
    Qdisc,
    QdiscParams,
    Route,
    Tbf,
    U32Filter,
    link_key,
    netns_key,
    requires,
    tbf_class,
)
from netmanager.kernel.scope import Scope
from netmanager.kernel.semantics import KernelModel, aliases


class Op(enum.StrEnum):
    CREATE = "+"
    MODIFY = "~"
    DELETE = "-"


@dataclass(frozen=True)
class Change:
    """One step of a plan.  ``obj`` is the desired object (+, ~) or the observed one (-);
    ``old`` the observed object a ``~`` changes.  ``implied_by`` is the index of the change
    whose kernel effect this is (nothing is sent for it)."""

    op: Op
    obj: KernelObject
    reason: str
    old: KernelObject | None = None
    implied_by: int | None = None

    @property
    def implied(self) -> bool:
        return self.implied_by is not None

    def line(self) -> str:
        return f"{self.op} {self.obj.label()}: {self.reason}"

    def do(self) -> Action | None:
        """The action that makes this change, or None if the kernel makes it by itself."""
        if self.implied:
            return None
        if self.op is Op.CREATE:
            return Action(Verb.CREATE, self.obj)
        if self.op is Op.MODIFY:
            return Action(Verb.MODIFY, self.obj, self.old)
        return Action(Verb.DELETE, self.obj)

    def undo(self) -> Action | None:
        """The action that takes this change back, or None if another undo does it."""
        if self.op is Op.CREATE:
            if isinstance(self.obj, Link) and not self.obj.creates_pair:
                return None  # deleting the pair's creating end deletes this end too
            return Action(Verb.DELETE, self.obj)
        if self.op is Op.MODIFY:
            assert self.old is not None
            return Action(Verb.MODIFY, self.old, self.obj)
        return Action(Verb.CREATE, self.obj)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "op": str(self.op),
            "kind": self.obj.KIND,
            "object": self.obj.label(),
            "reason": self.reason,
            "spec": to_jsonable(self.obj),
        }
        if self.implied_by is not None:
            out["implied_by"] = self.implied_by
        return out


@dataclass(frozen=True)
class Plan:
    """The changes that turn the observed state of ``namespaces`` into the desired one.

    ``observed_digest`` fingerprints the state the plan was made against; applying the
    plan to any other state is refused.
    """

    changes: tuple[Change, ...]
    namespaces: tuple[str, ...]
    observed: HostState = field(repr=False, compare=False)
    scope: Scope | None = None  # None: the namespaces, fully owned, any owner

    @property
    def effective_scope(self) -> Scope:
        """The scope to observe again before applying this plan."""
        return self.scope if self.scope is not None else Scope.of(None, self.namespaces)

    @cached_property
    def observed_digest(self) -> str:
        return self.observed.digest()

    def __len__(self) -> int:
        return len(self.changes)

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def steps(self) -> list[int]:
        """Indices of the changes that are sent to the kernel."""
        return [i for i, c in enumerate(self.changes) if not c.implied]

    def counts(self) -> dict[str, int]:
        out = {"create": 0, "modify": 0, "delete": 0, "implied": 0}
        names = {Op.CREATE: "create", Op.MODIFY: "modify", Op.DELETE: "delete"}
        for change in self.changes:
            out["implied" if change.implied else names[change.op]] += 1
        return out

    def summary(self) -> str:
        c = self.counts()
        text = f"{c['create']} to create, {c['modify']} to change, {c['delete']} to delete"
        if c["implied"]:
            text += f" ({c['implied']} more follow by themselves)"
        return text

    def lines(self) -> list[str]:
        return [change.line() for change in self.changes]

    def render(self) -> str:
        return "\n".join([*self.lines(), self.summary()])

    def to_json(self) -> dict[str, Any]:
        return {
            "changes": [change.to_json() for change in self.changes],
            "counts": self.counts(),
            "namespaces": list(self.namespaces),
            "scope": self.effective_scope.to_json(),
            "observed_digest": self.observed_digest,
        }


def to_jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: to_jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


# -------------------------------------------------------------------------------- compare


def _show(name: str, value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and name.endswith("_bps"):
        return format_rate(value)
    return str(value)


def _same_rate(a: int, b: int) -> bool:
    return a // 8 == b // 8  # the kernel keeps rates in bytes per second


def _params_diff(want: QdiscParams, have: QdiscParams) -> list[str]:
    out: list[str] = []
    for f in fields(want):
        w, h = getattr(want, f.name), getattr(have, f.name)
        if w == h:
            continue
        if f.name == "rate_bps" and _same_rate(w, h):
            continue
        if (
            f.name == "burst_bytes"
            and isinstance(want, Tbf)
            and abs(w - h) <= burst_tolerance(want.rate_bps)
        ):
            continue
        if f.name == "loss_ppm" and isinstance(want, Netem) and abs(w - h) <= 1:
            continue
        out.append(f"{f.name} {_show(f.name, h)} -> {_show(f.name, w)}")
    return out


def compare(want: KernelObject, have: KernelObject) -> tuple[list[str], list[str]]:
    """(differences changeable in place, differences that need a replacement)."""
    if want == have:
        return [], []
    inplace: list[str] = []
    replacing: list[str] = []
    mutable = type(want).MUTABLE
    for f in fields(want):
        name = f.name
        w, h = getattr(want, name), getattr(have, name)
        if w == h or (w is None and name in getattr(want, "WILDCARDS", ())):
            continue
        if (w is None or h is None) and name in getattr(want, "LOOSE", ()):
            continue
        if isinstance(want, Qdisc) and name == "params":
            if type(w) is not type(h):
                replacing.append(f"kind {h.KIND} -> {w.KIND}")
            else:
                inplace.extend(_params_diff(w, h))
            continue
        if isinstance(want, HtbClass):
            if name in ("rate_bps", "ceil_bps") and _same_rate(w, h):
                continue
            if name in ("burst_bytes", "cburst_bytes"):
                rate = want.rate_bps if name == "burst_bytes" else want.ceil_bps
                if abs(w - h) <= burst_tolerance(rate):
                    continue
        text = f"{name} {_show(name, h)} -> {_show(name, w)}"
        (inplace if name in mutable else replacing).append(text)
    return inplace, replacing


# ------------------------------------------------------------------------------- ordering


def _channel(obj: KernelObject) -> str | None:
    """Where a change is executed: its namespace's socket, or None for namespaces
    themselves (created and removed by the engine's own process)."""
    return None if isinstance(obj, Namespace) else obj.namespace


def _dependencies(objects: Mapping[Key, KernelObject]) -> dict[Key, list[Key]]:
    """For each object, the keys (among ``objects``) it must come after when created.

    Besides what an object requires, a link with a redirect (and its ingress qdisc) comes
    after the redirect's target, so that the target is deleted only after them."""
    alias: dict[Key, Key] = {}
    addresses: dict[Key, list[Key]] = {}
    targets: dict[Key, list[Key]] = {}  # the link and qdisc of a redirect: after its target
    for key, obj in objects.items():
        for a in aliases(obj):
            alias[a] = key
        if isinstance(obj, Address):
            addresses.setdefault(link_key(obj.namespace, obj.ifname), []).append(key)
    for obj in objects.values():
        if isinstance(obj, MirredRedirect):
            target = link_key(obj.namespace, obj.target)
            qdisc = ("qdisc-handle", obj.namespace, obj.ifname, obj.parent)
            for holder in (link_key(obj.namespace, obj.ifname), alias.get(qdisc, qdisc)):
                targets.setdefault(holder, []).append(target)
    out: dict[Key, list[Key]] = {}
    for key, obj in objects.items():
        deps = [alias.get(d, d) for d in requires(obj)]
        if isinstance(obj, Route):
            deps.extend(addresses.get(link_key(obj.namespace, obj.dev), ()))
        deps.extend(targets.get(key, ()))
        out[key] = [d for d in deps if d in objects and d != key]
    return out


def order(objects: Mapping[Key, KernelObject], *, reverse: bool = False) -> list[Key]:
    """A dependency order of ``objects`` (creation order, or deletion order if ``reverse``)
    that keeps the objects of one namespace together where the dependencies allow."""
    deps = _dependencies(objects)
    before: dict[Key, list[Key]] = {k: [] for k in objects}  # k must wait for these
    if reverse:
        for key, ds in deps.items():
            for d in ds:
                before[d].append(key)
    else:
        before = {k: list(ds) for k, ds in deps.items()}
    waiting = {k: len(set(ds)) for k, ds in before.items()}
    after: dict[Key, list[Key]] = {k: [] for k in objects}
    for key, ds in before.items():
        for d in set(ds):
            after[d].append(key)

    rank: dict[Key, tuple[int, int]] = {}
    for i, key in enumerate(sorted(objects, key=lambda k: (ORDER[objects[k].KIND], repr(k)))):
        kind_rank = ORDER[objects[key].KIND]
        rank[key] = (-kind_rank if reverse else kind_rank, i)

    by_channel: dict[str | None, list[tuple[tuple[int, int], Key]]] = {}
    anywhere: list[tuple[tuple[int, int], str | None]] = []

    def ready(key: Key) -> None:
        channel = _channel(objects[key])
        heapq.heappush(by_channel.setdefault(channel, []), (rank[key], key))
        heapq.heappush(anywhere, (rank[key], channel))

    for key, count in waiting.items():
        if not count:
            ready(key)
    out: list[Key] = []
    current: str | None = None
    while len(out) < len(objects):
        queue = by_channel.get(current)
        if not queue:
            while anywhere and not by_channel.get(anywhere[0][1]):
                heapq.heappop(anywhere)
            if not anywhere:
                raise ValueError(
                    "dependency cycle among: "
                    + ", ".join(objects[k].label() for k in objects if k not in set(out))
                )
            current = anywhere[0][1]
            queue = by_channel[current]
        _, key = heapq.heappop(queue)
        out.append(key)
        for nxt in after[key]:
            waiting[nxt] -= 1
            if not waiting[nxt]:
                ready(nxt)
    return out


# ---------------------------------------------------------------------------------- plan


def _containers(obj: KernelObject, model: KernelModel) -> list[Key]:
    """Keys whose deletion makes the kernel delete ``obj`` too (veth ends aside).

    A parent HTB class is not one: the kernel refuses to delete a class that still has
    children or filters, so those are deleted explicitly first.
    """
    if isinstance(obj, Namespace):
        return []
    out: list[Key] = netns_key(obj.namespace)
    if isinstance(obj, Link):
        if obj.vxlan and obj.vxlan.underlay:
            out.append(link_key(obj.namespace, obj.vxlan.underlay))
        if obj.vlan:
            out.append(link_key(obj.namespace, obj.vlan.parent))
    elif isinstance(obj, Route):
        out.append(link_key(obj.namespace, obj.dev))
    elif isinstance(obj, Address | FdbEntry):
        out.append(link_key(obj.namespace, obj.ifname))
    elif isinstance(obj, Qdisc):
        out.append(link_key(obj.namespace, obj.ifname))
        if obj.parent not in (TC_H_ROOT, TC_H_INGRESS):
            out.append(model.resolve(("class", obj.namespace, obj.ifname, obj.parent)))
    elif isinstance(obj, HtbClass | U32Filter | MirredRedirect):
        out.append(link_key(obj.namespace, obj.ifname))
        major = (obj.classid if isinstance(obj, HtbClass) else obj.parent) & 0xFFFF0000
        out.append(model.resolve(("qdisc-handle", obj.namespace, obj.ifname, major)))
    return out


def _also_gone(have: Mapping[Key, KernelObject], want_gone: dict[Key, str]) -> None:
    """Add to ``want_gone`` what must go with it so that the kernel is never left broken:
    the other end of a veth, a TBF whose child goes, a redirect whose target goes."""
    redirects: dict[Key, list[Key]] = {}
    tbfs: dict[Key, Key] = {}
    for key, obj in have.items():
        if isinstance(obj, MirredRedirect):
            redirects.setdefault(link_key(obj.namespace, obj.target), []).append(key)
        elif isinstance(obj, Qdisc) and isinstance(obj.params, Tbf):
            tbfs[("class", obj.namespace, obj.ifname, tbf_class(obj.handle))] = key
    todo = list(want_gone)
    while todo:
        key = todo.pop()
        obj = have[key]
        more: list[tuple[Key, str]] = []
        if isinstance(obj, Link):
            if obj.peer_key in have:
                assert obj.peer_key is not None
                more.append((obj.peer_key, f"its veth peer {obj.ifname} goes ({want_gone[key]})"))
            for redirect in redirects.get(key, ()):
                more.append((redirect, f"its target {obj.ifname} goes ({want_gone[key]})"))
        elif isinstance(obj, Qdisc):
            tbf = tbfs.get(("class", obj.namespace, obj.ifname, obj.parent))
            if tbf is not None:
                more.append(
                    (
                        tbf,
                        f"replaced: its child {obj.kind} goes, and a TBF whose child is"
                        " deleted drops every packet",
                    )
                )
        for other, reason in more:
            if other not in want_gone:
                want_gone[other] = reason
                todo.append(other)


def _without_absent_taps(
    want: Mapping[Key, KernelObject], have: Mapping[Key, KernelObject]
) -> Mapping[Key, KernelObject]:
    """``want`` less the adopted links that do not exist (a tap whose guest is not
    running, a NIC not there: the engine cannot create them) and the objects on them."""
    absent = {
        key
        for key, obj in want.items()
        if isinstance(obj, Link) and obj.kind in ADOPTED and key not in have
    }
    if not absent:
        return want
    return {
        key: obj for key, obj in want.items() if key not in absent and _link_of(obj) not in absent
    }


def _released(
    want: Mapping[Key, KernelObject], have: Mapping[Key, KernelObject]
) -> Mapping[Key, KernelObject]:
    """``want`` with each adopted link that is observed marked but no longer desired let
    go: its mark cleared (alias ""), nothing else changed.  Its process (a guest's QEMU,
    a libvirt domain) keeps it; another owner may adopt it later; what hung on it goes."""
    released = {
        key: replace(obj, alias="", master=_kept_master(obj, want, have))
        for key, obj in have.items()
        if key not in want
        and isinstance(obj, Link)
        and obj.kind in ADOPTED
        and obj.alias.startswith(MARKER)
    }
    return {**want, **released} if released else want


def _kept_master(
    link: Link, want: Mapping[Key, KernelObject], have: Mapping[Key, KernelObject]
) -> str | None:
    """A released link's master: kept, unless it is a bridge of the scope's that goes."""
    if link.master is None:
        return None
    key = link_key(link.namespace, link.master)
    return None if key in have and key not in want else link.master


def _link_of(obj: KernelObject) -> Key | None:
    """The link an object hangs on (None for namespaces, links and sysctls)."""
    if isinstance(obj, Route):
        return link_key(obj.namespace, obj.dev)
    ifname = getattr(obj, "ifname", None)
    if isinstance(obj, Link) or not isinstance(ifname, str):
        return None
    return link_key(obj.namespace, ifname)


@dataclass
class _Entry:
    op: Op
    obj: KernelObject
    reason: str
    old: KernelObject | None = None
    real: bool = True
    cause: int | None = None  # entry number of the real change that does this one


def plan(
    desired: HostState,
    observed: HostState,
    namespaces: Iterable[str] | None = None,
    *,
    scope: Scope | None = None,
) -> Plan:
    """The changes that turn ``observed`` into ``desired``.

    ``namespaces`` were observed (default: the namespaces of both states), or ``scope``,
    recorded in the plan so that applying it observes the same again; objects of
    ``observed`` outside ``desired`` are deleted — except taps, which only their guest's
    process creates and ends: a desired tap not observed waits, with what hangs on it,
    and an observed tap no longer desired is left where it is (:attr:`LinkKind.TAP`).
    """
    want = _released(_without_absent_taps(desired.by_key, observed.by_key), observed.by_key)
    have = observed.by_key
    seen = set(namespaces or ()) | (scope.all if scope is not None else set())
    names = sorted(seen | desired.namespaces | observed.namespaces)

    # 1. what must go: not desired, or desired with different identity-defining fields
    want_gone: dict[Key, str] = {}
    inplace: dict[Key, list[str]] = {}  # of the objects kept as observed, for step 4
    for key, obj in have.items():
        target = want.get(key)
        if target is None:
            if not (isinstance(obj, Link) and obj.kind in ADOPTED):
                want_gone[key] = "not desired"
            continue
        inplace[key], replacing = compare(target, obj)
        if replacing:
            want_gone[key] = "replaced: " + ", ".join(replacing)
    _also_gone(have, want_gone)

    if not want_gone:  # the common case of a re-apply: no kernel model needed
        return _finish([], want, have, {}, set(), {}, names, observed, scope, inplace)

    # 2. everything that goes, including what the kernel takes along
    scratch = KernelModel(have.values())
    gone: set[Key] = set()
    for key in sorted(want_gone, key=repr):
        removed, _ = scratch.delete(key)
        gone.update(o.key for o in removed)

    # 3. deletions, in order; decide which are sent and which follow by themselves
    model = KernelModel(have.values())
    entries: list[_Entry] = []
    entry_of: dict[Key, int] = {}
    pending: dict[Key, int] = {}  # implied entries whose cause has not run yet

    def sent_by_kernel(obj: KernelObject) -> bool:
        if isinstance(obj, Link) and obj.peer is not None:
            if ("netns", obj.namespace) in gone:
                return True
            if ("netns", obj.peer.namespace) in gone:
                return False
            return not obj.creates_pair and obj.peer_key in gone
        return any(k in gone for k in _containers(obj, model))

    for key in order({k: have[k] for k in gone}, reverse=True):
        obj = have[key]
        if key not in model:
            cause = entry_of[key]
            entries.append(_Entry(Op.DELETE, obj, "", real=False, cause=cause))
            continue
        if key not in want_gone or sent_by_kernel(obj):
            pending[key] = len(entries)
            entries.append(_Entry(Op.DELETE, obj, "", real=False))
            continue
        removed, changed = model.delete(key)
        this = len(entries) + len(changed)
        for before, after in changed:  # listed first: undone after the deletion is undone
            entries.append(_Entry(Op.MODIFY, after, "", old=before, real=False, cause=this))
        entries.append(_Entry(Op.DELETE, obj, want_gone[key]))
        for other in removed[1:]:
            entry_of[other.key] = this
            if other.key in pending:
                entries[pending.pop(other.key)].cause = this
    for key, index in pending.items():  # never taken along after all: delete explicitly
        entry = entries[index]
        if key in model:
            model.delete(key)
            entry.real = True
            entry.reason = want_gone.get(key, "goes with its container")

    return _finish(
        entries, want, model.objects, want_gone, gone, entry_of, names, observed, scope, inplace
    )


def _finish(
    entries: list[_Entry],
    want: Mapping[Key, KernelObject],
    left: Mapping[Key, KernelObject],
    want_gone: Mapping[Key, str],
    gone: set[Key],
    entry_of: Mapping[Key, int],
    names: list[str],
    observed: HostState,
    scope: Scope | None,
    inplace: Mapping[Key, list[str]],
) -> Plan:
    """Steps 4 and 5: creations and modifications against what is ``left`` after the
    deletions, then numbering.  ``inplace``: the in-place differences step 1 found
    between the desired and the observed objects (reused where ``left`` kept those)."""
    have = observed.by_key
    # 4. creations and modifications against what is left
    creates: dict[Key, KernelObject] = {}
    reasons: dict[Key, tuple[Op, str, KernelObject | None]] = {}
    for key, target in want.items():
        current = left.get(key)
        if current is None:
            if key in want_gone:
                reason = want_gone[key]
            elif key in gone:
                cause_entry = entries[entry_of[key]] if key in entry_of else None
                reason = (
                    f"recreated: went with {cause_entry.obj.label()}"
                    if cause_entry is not None
                    else "recreated"
                )
            else:
                reason = "missing"
            creates[key] = target
            reasons[key] = (Op.CREATE, reason, None)
            continue
        if current is have.get(key) and key in inplace:
            diff = inplace[key]
        else:
            diff, _ = compare(target, current)
        if diff:
            creates[key] = target
            reasons[key] = (Op.MODIFY, ", ".join(diff), current)
    for key in order(creates):
        op, reason, old = reasons[key]
        entries.append(_Entry(op, creates[key], reason, old=old))

    # 5. number the changes; implied ones point at the change that does them
    changes: list[Change] = []
    for entry in entries:
        implied_by = None
        reason = entry.reason
        if not entry.real:
            assert entry.cause is not None, entry
            implied_by = entry.cause
            cause_label = entries[entry.cause].obj.label()
            if entry.op is Op.MODIFY:
                reason = f"released by the deletion of {cause_label}"
            else:
                reason = f"goes with {cause_label}"
        changes.append(Change(entry.op, entry.obj, reason, old=entry.old, implied_by=implied_by))
    return Plan(tuple(changes), tuple(names), observed, scope)
