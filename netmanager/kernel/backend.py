"""The local kernel as a backend: observe by dumps, execute by batched netlink requests.

Design (see docs in the package's ``__init__``):

* **One socket per namespace**, opened by entering the namespace in-process (setns),
  kept for the life of the backend.  Namespaces are created in-process too.
* **Observe** a :class:`~netmanager.kernel.scope.Scope` = one dump each of links,
  addresses, routes (filtered by netmanager's route protocol in the kernel) and qdiscs per
  namespace, plus FDB, class and filter dumps only for the owned links that have them
  (filters below an HTB root or an ingress qdisc), and the managed sysctls of fully owned
  namespaces.  Veth peers are resolved across namespaces with one RTM_GETNSID batch per
  namespace that needs it.  The root namespace (``""``) is the one the backend was made
  in.
* **Execute**: consecutive actions in the same namespace become one batch of requests,
  sent many per send(); every request is ACKed and checked.  Interface indexes are chosen
  by the engine (free ones, per namespace) so that a whole batch — a veth, its qdisc, an
  address on it — can be built before anything is sent.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from netmanager.kernel import netlink as nl
from netmanager.kernel import netns
from netmanager.kernel.contract import NOT_RUN, Action, ActionResult, Verb
from netmanager.kernel.ethtool import EthtoolSocket
from netmanager.kernel.netlink import NetlinkError, RawLink, RawTc, Request
from netmanager.kernel.nlsock import RtnlSocket
from netmanager.kernel.objects import (
    ETH_P_ALL,
    ETH_P_IP,
    IPV6_SYSCTLS,
    MARKER,
    ROOT_NAMESPACE,
    RT_PROTO,
    SYSCTL_DEFAULTS,
    Address,
    FdbEntry,
    HostState,
    Htb,
    HtbClass,
    Ingress,
    KernelObject,
    Link,
    LinkKind,
    MirredRedirect,
    Namespace,
    Netem,
    Qdisc,
    QdiscParams,
    Route,
    Sysctl,
    Tbf,
    U32Filter,
    VethPeer,
    Vlan,
    Vxlan,
    ipv6_sysctls,
)
from netmanager.kernel.scope import Scope

_KINDS = {kind.value: kind for kind in LinkKind}
#: consecutive link deletions in one namespace from which they go as one group deletion
BULK_DELETE_MIN = 4
#: device groups netmanager uses for a moment to delete links together: "NM" and 16 bits
BULK_GROUP_BASE = 0x4E4D0000
SYSCTL_NAMES = [*SYSCTL_DEFAULTS, *IPV6_SYSCTLS]
NETCONF_SYSCTLS = {
    "net.ipv4.ip_forward": nl.NETCONFA_FORWARDING,
    "net.ipv4.conf.all.rp_filter": nl.NETCONFA_RP_FILTER,
}
_TC_KINDS = ("tbf", "htb", "netem", "ingress")
_FILTERED = ("htb", "ingress")  # qdiscs whose filters are observed


class _Ns:
    """What the engine holds for one namespace: descriptor, socket, interface indexes."""

    __slots__ = (
        "ethtool",
        "fd",
        "index",
        "learnt",
        "name",
        "names",
        "next_index",
        "remembered",
        "sock",
    )

    def __init__(
        self,
        name: str,
        fd: int,
        sock: RtnlSocket,
        ethtool: EthtoolSocket,
        remembered: dict[tuple[str, str], int],
    ) -> None:
        self.name = name
        self.fd = fd
        self.sock = sock
        self.ethtool = ethtool
        self.index: dict[str, int] = {}
        self.names: dict[int, str] = {}
        self.next_index = 2
        self.learnt = False
        self.remembered = remembered  # (namespace, ifname) -> ifindex of deleted links

    def learn(self, links: Iterable[RawLink]) -> None:
        self.learnt = True
        self.index = {link.ifname: link.index for link in links}
        self.names = {i: n for n, i in self.index.items()}
        self.next_index = max(self.next_index, max(self.names, default=1) + 1)

    def ifindex(self, ifname: str, what: str) -> int:
        index = self.index.get(ifname)
        if index is None:
            raise NetlinkError(errno.ENODEV, f"no link {ifname} in {self.name}", what)
        return index

    def allocate(self, ifname: str, avoid: int = 0) -> Callable[[bool], None]:
        """Give ``ifname`` a free ifindex for a link about to be created: the one it had if
        this engine deleted it (so that a rollback restores the very same link), else the
        next unused one other than ``avoid``.  The returned function settles it once the
        kernel has answered.

        ``avoid`` is the index of a veth's other end: the kernel handles a carrier change
        of a device whose ifindex equals its iflink (the peer's index, even in another
        namespace) as not urgent, and may leave the port down for up to a second.
        """
        index = self.remembered.pop((self.name, ifname), 0)
        if not index or index in self.names or index == avoid:
            index = self.next_index
            self.next_index += 1
            if index == avoid:
                index = self.next_index
                self.next_index += 1
        shadowed = self.index.get(ifname)
        self.index[ifname] = index
        self.names[index] = ifname

        def settle(created: bool) -> None:
            if created:
                if shadowed is not None and self.names.get(shadowed) == ifname:
                    del self.names[shadowed]
                return
            self.names.pop(index, None)
            if shadowed is None:
                self.index.pop(ifname, None)
            else:
                self.index[ifname] = shadowed

        return settle

    def release(self, ifname: str) -> Callable[[bool], None]:
        """Take ``ifname`` out of the map for a deletion in flight; settle it later."""
        index = self.index.pop(ifname, None)

        def settle(deleted: bool) -> None:
            if index is None:
                return
            if deleted:
                if self.names.get(index) == ifname:
                    del self.names[index]
                self.remembered[(self.name, ifname)] = index
            else:
                self.index[ifname] = index

        return settle

    def forget(self, ifname: str) -> None:
        self.release(ifname)(True)

    def forget_all(self) -> None:
        for ifname in list(self.index):
            self.forget(ifname)

    def close(self) -> None:
        self.sock.close()
        self.ethtool.close()
        os.close(self.fd)


@dataclass
class _Raw:
    """Everything read from one namespace, before ownership is decided."""

    links: list[RawLink]
    addrs: list[tuple[int, ipaddress.IPv4Interface | ipaddress.IPv6Interface]]
    routes: list[nl.RawRoute]
    qdiscs: list[RawTc]
    classes: dict[int, list[RawTc]] = field(default_factory=dict)
    filters: dict[int, list[RawTc]] = field(default_factory=dict)
    fdb: dict[int, list[tuple[int, int, int, str, ipaddress.IPv4Address | None]]] = field(
        default_factory=dict
    )
    sysctls: dict[str, str] = field(default_factory=dict)


def _decode_params(tc: RawTc) -> QdiscParams | None:
    try:
        if tc.kind == "netem":
            delay, jitter, loss, limit = nl.decode_netem(tc.options)
            return Netem(delay_us=delay, jitter_us=jitter, loss_ppm=loss, limit_packets=limit)
        options = nl.parse_attrs(tc.options, 0, len(tc.options))
        if tc.kind == "tbf":
            rate, burst, limit = nl.decode_tbf(options)
            return Tbf(rate_bps=rate, burst_bytes=burst, limit_bytes=limit)
        if tc.kind == "htb":
            default, r2q = nl.decode_htb(options)
            return Htb(default_minor=default, r2q=r2q)
        if tc.kind == "ingress":
            return Ingress()
    except (KeyError, ValueError, IndexError):
        return None
    return None


def _qdisc_options(params: QdiscParams) -> bytes:
    if isinstance(params, Tbf):
        return nl.tbf_options(params.rate_bps, params.burst_bytes, params.limit_bytes)
    if isinstance(params, Netem):
        return nl.netem_options(
            params.delay_us, params.jitter_us, params.loss_ppm, params.limit_packets
        )
    if isinstance(params, Ingress):
        return b""
    return nl.htb_options(params.default_minor, params.r2q)


class NetlinkBackend:
    """The kernel this process runs on, reached through rtnetlink from this thread."""

    def __init__(self) -> None:
        self._home = netns.current_fd()
        self._ns: dict[str, _Ns] = {}
        self._remembered: dict[tuple[str, str], int] = {}
        self._settlers: dict[int, list[Callable[[bool], None]]] = {}
        self._after: dict[int, list[Callable[[], None]]] = {}  # ioctls after a batch

    def __enter__(self) -> NetlinkBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for handle in self._ns.values():
            handle.close()
        self._ns.clear()
        if self._home >= 0:
            os.close(self._home)
            self._home = -1

    # ---------------------------------------------------------------------- namespaces

    def _open(self, name: str, fd: int) -> _Ns:
        with netns.inside(fd, self._home):
            sock = RtnlSocket()
        handle = _Ns(name, fd, sock, EthtoolSocket(sock.socket), self._remembered)
        self._ns[name] = handle
        return handle

    @staticmethod
    def _exists(name: str) -> bool:
        return name == ROOT_NAMESPACE or netns.exists(name)

    def _attach(self, name: str) -> _Ns | None:
        """The handle of an existing namespace, opened (socket and fd) on first use."""
        handle = self._ns.get(name)
        if handle is not None:
            return handle
        if name == ROOT_NAMESPACE:
            return self._open(name, os.dup(self._home))
        if not netns.exists(name):  # no file, or one with no namespace on it (yet)
            return None
        try:
            fd = netns.open_fd(name)
        except FileNotFoundError:
            return None
        return self._open(name, fd)

    def _handle(self, name: str, what: str) -> _Ns:
        """The handle of a namespace an action needs, its links learnt."""
        handle = self._attach(name)
        if handle is None:
            raise NetlinkError(errno.ENOENT, f"no namespace {name}", what)
        if not handle.learnt:
            handle.learn(self._dump_links(handle))
        return handle

    def _current(self, name: str) -> bool:
        """Whether the held handle of ``name`` is still that namespace: a namespace deleted
        and made again under the same name (by anyone) is another one."""
        handle = self._ns[name]
        if name == ROOT_NAMESPACE:
            return True
        try:
            found = os.stat(netns.path_of(name))
        except FileNotFoundError:
            return False
        held = os.fstat(handle.fd)
        return (found.st_dev, found.st_ino) == (held.st_dev, held.st_ino)

    def prune(self) -> None:
        """Let go of the namespaces that are gone or were made again since they were
        opened: a held descriptor or socket keeps a deleted namespace, and everything in
        it, alive."""
        for name in [n for n in self._ns if not self._current(n)]:
            self._drop(name)

    def _drop(self, name: str) -> None:
        handle = self._ns.pop(name, None)
        if handle is not None:
            handle.close()

    def move_link(self, namespace: str, ifname: str, to: str) -> None:
        """Move link ``ifname`` of ``namespace`` into namespace ``to``, under its name (a
        veth keeps its peer; the kernel takes the link down and off its master on the
        way).  NetlinkError when the kernel refuses (a name taken there, no such link)."""
        what = f"move {ifname} from {namespace or 'root'} to {to or 'root'}"
        source = self._handle(namespace, what)
        source.learn(self._dump_links(source))
        target = self._handle(to, what)
        index = source.ifindex(ifname, what)
        ((code, note),) = source.sock.transact([nl.link_set(index, netns_fd=target.fd)])
        if code:
            raise NetlinkError(code, note, what)
        source.forget(ifname)
        target.learn(self._dump_links(target))

    @staticmethod
    def _dump_links(handle: _Ns) -> list[RawLink]:
        return [
            nl.decode_link(m.buf, m.pos, m.end)
            for m in handle.sock.dump(nl.link_dump())
            if m.type == nl.RTM_NEWLINK
        ]

    # -------------------------------------------------------------------------- settle

    def settle(self, links: Iterable[tuple[str, str]], timeout_s: float) -> list[tuple[str, str]]:
        """Wait until the given links, where up and with carrier, run.

        The kernel activates the queue of a link whose carrier came on asynchronously
        (linkwatch): until then the link drops what it sends.  That is the case of the end
        of a veth pair whose other end came up after it, in a later batch, and of a bridge
        whose first port starts forwarding.  An ARP request or reply lost that way costs
        the first packets a one-second retransmission, right after an apply (measured
        over 400 applies of two emulated hosts joined by VXLAN: 30 left such a link
        behind, and about one in a hundred first pings took a second).  This polls one
        link dump per namespace, usually once (about a millisecond).
        """
        waiting: dict[str, set[str]] = {}
        for namespace, ifname in links:
            waiting.setdefault(namespace, set()).add(ifname)
        deadline = time.monotonic() + timeout_s
        pause = 0.0005
        while True:
            for namespace in list(waiting):
                handle = self._attach(namespace)
                if handle is None:
                    del waiting[namespace]
                    continue
                pending = {
                    link.ifname
                    for link in self._dump_links(handle)
                    if link.ifname in waiting[namespace]
                    and link.flags & nl.IFF_UP
                    and link.flags & nl.IFF_LOWER_UP
                    and not link.flags & nl.IFF_RUNNING
                }
                if pending:
                    waiting[namespace] = pending
                else:
                    del waiting[namespace]
            if not waiting or time.monotonic() >= deadline:
                return sorted((ns, name) for ns, names in waiting.items() for name in names)
            time.sleep(pause)
            pause = min(pause * 2, 0.02)

    # ------------------------------------------------------------------------- observe

    def absent(self, namespaces: Iterable[str]) -> set[str]:
        return {name for name in namespaces if not self._exists(name)}

    def observe(self, scope: Scope | Iterable[str]) -> HostState:
        scope = Scope.coerce(scope)
        raws: dict[str, _Raw] = {}
        for name in sorted(scope.all):
            if name in self._ns and not self._current(name):
                self._drop(name)
            handle = self._attach(name)
            if handle is not None:
                raws[name] = self._read(handle, scope, name)
        peers = self._resolve_peers(raws, scope.marker)
        objects: list[KernelObject] = []
        for name, raw in raws.items():
            objects.extend(self._objects(self._ns[name], raw, peers, scope))
        return HostState(frozenset(objects))

    def _read(self, handle: _Ns, scope: Scope, name: str) -> _Raw:
        """Dump one namespace: the links ``scope`` claims are owned; where it owns the
        namespace too, its sysctls are read."""
        sock = handle.sock
        links = self._dump_links(handle)
        handle.learn(links)
        owned = {
            link.index
            for link in links
            if scope.claims(name, link.ifname, link.alias, tap=link.kind == "tun")
        }
        # an unmarked veth end may still be owned through its peer (decided later)
        maybe = owned | {
            link.index
            for link in links
            if link.kind == "veth" and not link.alias.startswith(MARKER)
        }
        addrs = []
        for m in sock.dump(nl.addr_dump()):
            if (
                m.type == nl.RTM_NEWADDR
                and nl.addr_index(m.buf, m.pos) in maybe
                and (found := nl.decode_addr(m.buf, m.pos, m.end))
            ):
                addrs.append(found)
        routes = []
        for m in sock.dump(nl.route_dump(RT_PROTO)):
            if m.type == nl.RTM_NEWROUTE and (route := nl.decode_route(m.buf, m.pos, m.end)):
                routes.append(route)
        qdiscs = [
            nl.decode_tc(m.buf, m.pos, m.end)
            for m in sock.dump(nl.tc_dump(nl.RTM_GETQDISC))
            if m.type == nl.RTM_NEWQDISC
        ]
        raw = _Raw(links=links, addrs=addrs, routes=routes, qdiscs=qdiscs)
        for tc in qdiscs:
            if tc.kind in _FILTERED and tc.index in owned:
                if tc.kind == "htb":
                    raw.classes.setdefault(tc.index, []).extend(
                        nl.decode_tc(m.buf, m.pos, m.end)
                        for m in sock.dump(nl.tc_dump(nl.RTM_GETTCLASS, tc.index))
                        if m.type == nl.RTM_NEWTCLASS
                    )
                raw.filters.setdefault(tc.index, []).extend(
                    nl.decode_tc(m.buf, m.pos, m.end)
                    for m in sock.dump(nl.tc_dump(nl.RTM_GETTFILTER, tc.index, tc.handle))
                    if m.type == nl.RTM_NEWTFILTER
                )
        for link in links:
            if link.kind == "vxlan" and link.index in owned:
                raw.fdb[link.index] = [
                    nl.decode_fdb(m.buf, m.pos, m.end)
                    for m in sock.dump(nl.fdb_dump(link.index))
                    if m.type == nl.RTM_NEWNEIGH
                ]
        if name in scope.namespaces:
            raw.sysctls = self._read_sysctls(handle, links)
        return raw

    def _read_sysctls(self, handle: _Ns, links: list[RawLink]) -> dict[str, str]:
        """The managed sysctls, through netlink where it can tell (netconf of IPv4 "all";
        IPv6 from the loopback, to which writes of net.ipv6.conf.all propagate) and from
        /proc/sys for the rest: opening /proc/sys files costs tens of microseconds per
        namespace once there are a thousand of them."""
        values: dict[str, str] = {}
        answer = handle.sock.query([nl.netconf_request()])[0]
        if isinstance(answer, nl.Message) and answer.type == nl.RTM_NEWNETCONF:
            conf = nl.decode_netconf(answer.buf, answer.pos, answer.end)
            for name, attribute in NETCONF_SYSCTLS.items():
                if attribute in conf:
                    values[name] = str(conf[attribute])
        lo = next((link for link in links if link.ifname == "lo"), None)
        if lo is not None:
            disabled = "1" if nl.ipv6_disabled(lo.af_spec) else "0"
            values.update(dict.fromkeys(IPV6_SYSCTLS, disabled))
        rest = [name for name in SYSCTL_NAMES if name not in values]
        if rest:
            with netns.inside(handle.fd, self._home):
                values.update(netns.read_sysctls(rest))
        return values

    def _resolve_peers(
        self, raws: dict[str, _Raw], marker: str
    ) -> dict[tuple[str, int], tuple[str, int]]:
        """(namespace, ifindex) -> (namespace, ifindex) of the other end, for every owned
        veth end (alias starting with ``marker``) and its peer.  Namespace ids are asked
        of the kernel only where a peer in another namespace is not already known from the
        other side."""
        peers: dict[tuple[str, int], tuple[str, int]] = {}
        crossing: dict[str, list[RawLink]] = {}
        for name, raw in raws.items():
            for link in raw.links:
                if link.kind != "veth" or not link.alias.startswith(marker):
                    continue
                if link.peer_netnsid is None:
                    peers[(name, link.index)] = (name, link.peer_index)
                    peers[(name, link.peer_index)] = (name, link.index)
                else:
                    crossing.setdefault(name, []).append(link)
        for name in sorted(crossing, key=lambda n: (-len(crossing[n]), n)):
            todo = [link for link in crossing[name] if (name, link.index) not in peers]
            if not todo:
                continue
            candidates = [other for other in raws if other != name]
            answers = self._ns[name].sock.query(
                [nl.nsid_request(self._ns[c].fd) for c in candidates]
            )
            by_id: dict[int, str] = {}
            for candidate, answer in zip(candidates, answers, strict=True):
                if isinstance(answer, nl.Message) and answer.type == nl.RTM_NEWNSID:
                    nsid = nl.decode_nsid(answer.buf, answer.pos, answer.end)
                    if nsid >= 0:
                        by_id[nsid] = candidate
            for link in todo:
                other = by_id.get(link.peer_netnsid if link.peer_netnsid is not None else -1)
                if other is None:
                    continue
                peers[(name, link.index)] = (other, link.peer_index)
                peers.setdefault((other, link.peer_index), (name, link.index))
        return peers

    def _objects(
        self,
        handle: _Ns,
        raw: _Raw,
        peers: dict[tuple[str, int], tuple[str, int]],
        scope: Scope,
    ) -> list[KernelObject]:
        """The objects of ``scope`` in one namespace (the rule of :meth:`Scope.select`)."""
        name = handle.name
        names = handle.names
        full = name in scope.namespaces
        out: list[KernelObject] = []
        if full:
            lo_up = any(link.ifname == "lo" and link.flags & nl.IFF_UP for link in raw.links)
            ipv6 = any(raw.sysctls.get(key, "1") == "0" for key in IPV6_SYSCTLS)
            out.append(Namespace(name, loopback_up=lo_up, ipv6=ipv6))
        owned: dict[int, str] = {}
        foreign: set[int] = set()
        # IPv6 is each link's own (Link.ipv6) in a shared namespace that has it on (a real
        # host's root namespace); netmanager's own have it off everywhere (as lo shows)
        lo = next((link for link in raw.links if link.ifname == "lo"), None)
        per_link_ipv6 = not full and not (lo is not None and nl.ipv6_disabled(lo.af_spec))
        for link in raw.links:
            kind = _KINDS.get(link.kind)
            ours = scope.claims(name, link.ifname, link.alias, tap=kind is LinkKind.TAP)
            marked = link.alias.startswith(MARKER)
            if kind is None or not (
                ours
                or (
                    kind is LinkKind.VETH
                    and not marked
                    and scope.links is None
                    and (name, link.index) in peers
                )
            ):
                if marked and not ours:
                    foreign.add(link.index)
                continue
            owned[link.index] = link.ifname
            offloads = None
            if kind is LinkKind.VETH:
                try:
                    offloads = handle.ethtool.offloads(link.ifname)
                except OSError:
                    offloads = None
            # in a shared namespace IPv6 is each link's own (Link.ipv6)
            link_ipv6 = not nl.ipv6_disabled(link.af_spec) if per_link_ipv6 else None
            out.append(self._link(name, names, link, kind, peers, offloads, link_ipv6))
        for index, address in raw.addrs:
            if index in owned and not (address.version == 6 and address.ip.is_link_local):
                out.append(Address(name, owned[index], address))
        for route in raw.routes:
            if route.protocol != RT_PROTO or route.type != 1:
                continue
            if route.oif not in owned and not (full and route.oif not in foreign):
                continue
            dev = names.get(route.oif, f"#{route.oif}")
            out.append(Route(name, route.dst, dev, route.gateway, route.table, route.metric))
        for tc in raw.qdiscs:
            if tc.index in owned and tc.kind in _TC_KINDS and tc.handle:
                params = _decode_params(tc)
                if params is not None:
                    out.append(Qdisc(name, owned[tc.index], params, tc.handle, tc.parent))
        for index, classes in raw.classes.items():
            if index not in owned:
                continue
            for tc in classes:
                if tc.kind != "htb":
                    continue
                options = nl.parse_attrs(tc.options, 0, len(tc.options))
                rate, ceil, burst, cburst, prio = nl.decode_htb_class(options)
                # a class right below the qdisc is dumped with parent "root"
                parent = tc.handle & 0xFFFF0000 if tc.parent == nl.TC_H_ROOT else tc.parent
                out.append(
                    HtbClass(name, owned[index], tc.handle, rate, ceil, burst, cburst, parent, prio)
                )
        for index, filters in raw.filters.items():
            if index in owned:
                out.extend(self._filters(name, owned[index], names, filters))
        for index, entries in raw.fdb.items():
            for _index, state, flags, mac, remote in entries:
                if remote is not None and flags & nl.NTF_SELF and state & nl.NUD_PERMANENT:
                    out.append(FdbEntry(name, owned[index], remote, mac))
        for key, value in raw.sysctls.items():
            if key in SYSCTL_DEFAULTS and value != SYSCTL_DEFAULTS[key]:
                out.append(Sysctl(name, key, value))
        return out

    @staticmethod
    def _filters(
        name: str, ifname: str, names: dict[int, str], filters: list[RawTc]
    ) -> list[KernelObject]:
        """Our u32 nodes among a link's dumped filters: address filters to a class, and
        match-all redirects (hash tables and foreign filters are skipped)."""
        out: list[KernelObject] = []
        for tc in filters:
            node = tc.handle & 0xFFF
            if tc.kind != "u32" or tc.handle != nl.u32_handle(node) or not node:
                continue
            options = nl.parse_attrs(tc.options, 0, len(tc.options))
            prio = tc.info >> 16
            target = nl.decode_mirred(options)
            if target is not None:
                out.append(
                    MirredRedirect(
                        name, ifname, names.get(target, f"#{target}"), tc.parent, prio, node
                    )
                )
                continue
            decoded = nl.decode_u32(options)
            if decoded is None:
                continue
            flowid, src, dst = decoded
            out.append(
                U32Filter(name, ifname, flowid, node, dst=dst, src=src, parent=tc.parent, prio=prio)
            )
        return out

    def _link(
        self,
        name: str,
        names: dict[int, str],
        link: RawLink,
        kind: LinkKind,
        peers: dict[tuple[str, int], tuple[str, int]],
        offloads: bool | None,
        ipv6: bool | None = None,
    ) -> Link:
        peer = None
        vxlan = None
        vlan = None
        snooping = False
        if kind is LinkKind.VETH:
            found = peers.get((name, link.index))
            if found is None:
                peer = VethPeer("?", f"#{link.peer_index}")
            else:
                other, index = found
                other_names = self._ns[other].names if other in self._ns else {}
                peer = VethPeer(other, other_names.get(index, f"#{index}"))
        elif kind is LinkKind.VXLAN:
            vni, local, underlay, port, learning = nl.decode_vxlan(link.data)
            vxlan = Vxlan(
                vni=vni,
                local=local,
                underlay=names.get(underlay, f"#{underlay}") if underlay else None,
                port=port,
                learning=learning,
            )
        elif kind is LinkKind.VLAN:
            parent = (
                names.get(link.peer_index, f"#{link.peer_index}")
                if link.peer_netnsid is None
                else f"#{link.peer_index}"
            )
            vlan = Vlan(nl.decode_vlan(link.data), parent)
        elif kind is LinkKind.BRIDGE:
            snooping = nl.decode_mcast_snooping(link.data)
        return Link(
            namespace=name,
            ifname=link.ifname,
            kind=kind,
            alias=link.alias,
            mtu=link.mtu,
            up=bool(link.flags & nl.IFF_UP),
            master=names.get(link.master, f"#{link.master}") if link.master else None,
            mac=link.mac,
            peer=peer,
            vxlan=vxlan,
            offloads=offloads,
            vlan=vlan,
            mcast_snooping=snooping,
            ipv6=ipv6,
        )

    # ------------------------------------------------------------------------- execute

    @staticmethod
    def _channel(action: Action) -> str | None:
        obj = action.obj
        if isinstance(obj, Namespace | Sysctl):
            return None
        return obj.namespace

    def execute(self, actions: Sequence[Action], *, stop_on_error: bool) -> list[ActionResult]:
        results: list[ActionResult] = [NOT_RUN] * len(actions)
        i = 0
        while i < len(actions):
            channel = self._channel(actions[i])
            if channel is None:
                results[i] = self._process(actions[i])
                if stop_on_error and not results[i].ok:
                    break
                i += 1
                continue
            j = i
            batch: list[tuple[int, list[Request]]] = []
            self._settlers = {}
            self._after = {}
            while j < len(actions) and self._channel(actions[j]) == channel:
                try:
                    batch.append((j, self._compile(actions[j], j)))
                except OSError as exc:
                    results[j] = ActionResult(applied=False, error=exc)
                    batch.append((j, []))
                j += 1
            if not self._send(channel, actions, batch, results, stop_on_error) and stop_on_error:
                break
            i = j
        return results

    def _send(
        self,
        channel: str,
        actions: Sequence[Action],
        batch: list[tuple[int, list[Request]]],
        results: list[ActionResult],
        stop_on_error: bool,
    ) -> bool:
        """Send one namespace's batch; settle each action; False if any failed."""
        ok = all(results[index].ok for index, _ in batch)
        requests = [r for _, reqs in batch for r in reqs]
        if not requests:
            for index, _ in batch:
                for settle in self._settlers.pop(index, ()):
                    settle(False)
            return ok
        handle = self._ns.get(channel)
        if handle is None:
            for index, reqs in batch:
                if reqs:
                    error = NetlinkError(
                        errno.ENOENT, f"no namespace {channel}", actions[index].label()
                    )
                    results[index] = ActionResult(applied=False, error=error)
            return False
        runs = _deletion_runs(actions, batch)
        if runs:
            answers = self._send_bulk(handle, batch, runs, stop_on_error)
        else:
            answers = handle.sock.transact(requests, stop_on_error=stop_on_error)
        pos = 0
        for index, reqs in batch:
            if not reqs:  # refused before sending: undo its index bookkeeping
                for settle in self._settlers.pop(index, ()):
                    settle(False)
                continue
            codes = answers[pos : pos + len(reqs)]
            pos += len(reqs)
            results[index] = self._settle(actions[index], codes, len(reqs))
            primary_ok = bool(codes) and codes[0][0] == 0
            for settle in self._settlers.pop(index, ()):
                settle(primary_ok)
            for after in self._after.pop(index, ()):
                if primary_ok:
                    try:
                        after()
                    except OSError as exc:
                        error = NetlinkError(
                            exc.errno or errno.EIO, str(exc), actions[index].label()
                        )
                        results[index] = ActionResult(applied=True, error=error)
            ok = ok and results[index].ok
        return ok

    def _send_bulk(
        self,
        handle: _Ns,
        batch: list[tuple[int, list[Request]]],
        runs: list[list[int]],
        stop_on_error: bool,
    ) -> list[tuple[int, str]]:
        """Send a batch whose runs of link deletions (positions in ``batch``) go as group
        deletions: each link of a run is put in a device group no link of the namespace
        is in, then the group is deleted in one request (see
        :func:`~netmanager.kernel.netlink.link_delete_group`).  The answers are those the
        batch's own requests would have had, one per request; a link whose group was set
        but which was not deleted gets its group back."""
        used = {nl.decode_link(m.buf, m.pos, m.end).group for m in handle.sock.dump(nl.link_dump())}
        free = (g for g in range(BULK_GROUP_BASE, BULK_GROUP_BASE + 0x10000) if g not in used)
        run_of: dict[int, tuple[int, int]] = {}  # position -> (group, position of run's end)
        for run in runs:
            group = next(free)
            for position in run:
                run_of[position] = (group, run[-1])
        sent: list[Request] = []
        for position, (_, reqs) in enumerate(batch):
            if position not in run_of:
                sent.extend(reqs)
                continue
            group, end = run_of[position]
            sent.append(nl.link_set(nl.request_index(reqs[0]), group=group))
            if position == end:
                sent.append(nl.link_delete_group(group))
        raw = handle.sock.transact(sent, stop_on_error=stop_on_error)
        # back to one answer per request of the batch
        at = 0
        # end of a run -> (answer slot, position in batch, code, note) of its links
        grouped: dict[int, list[tuple[int, int, int, str]]] = {}
        deleted: dict[int, tuple[int, str] | None] = {}  # end -> the group deletion's answer
        answers: list[tuple[int, str] | None] = []
        for position, (_, reqs) in enumerate(batch):
            if position not in run_of:
                for _ in reqs:
                    answers.append(raw[at] if at < len(raw) else None)
                    at += 1
                continue
            _, end = run_of[position]
            code, note = raw[at] if at < len(raw) else (errno.ECANCELED, "not sent")
            at += 1
            grouped.setdefault(end, []).append((len(answers), position, code, note))
            answers.append(None)  # filled below
            if position == end:
                deleted[end] = raw[at] if at < len(raw) else None
                at += 1
        regroup: list[Request] = []
        for end, members in grouped.items():
            outcome = deleted.get(end)
            for slot, position, code, note in members:
                if code:
                    answers[slot] = (code, note)
                elif outcome is None or outcome[0]:
                    answers[slot] = outcome or (errno.ECANCELED, "not sent")
                    regroup.append(nl.link_set(nl.request_index(batch[position][1][0]), group=0))
                else:
                    answers[slot] = (0, "")
        if regroup:
            handle.sock.transact(regroup)
        # a batch's answers stop at the first request never answered
        out: list[tuple[int, str]] = []
        for answer in answers:
            if answer is None:
                break
            out.append(answer)
        return out

    def _settle(self, action: Action, codes: list[tuple[int, str]], sent: int) -> ActionResult:
        if not codes:
            return NOT_RUN
        failure = next(((c, note) for c, note in codes if c), None)
        if len(codes) < sent and failure is None:
            failure = (errno.ECANCELED, "not sent: an earlier request of the batch failed")
        error = NetlinkError(failure[0], failure[1], action.label()) if failure else None
        primary_ok = codes[0][0] == 0
        applied = primary_ok if action.verb is not Verb.MODIFY else True
        return ActionResult(applied=applied, error=error)

    # ------------------------------------------------------------- in-process actions

    def _process(self, action: Action) -> ActionResult:
        obj = action.obj
        try:
            if isinstance(obj, Namespace):
                if action.verb is Verb.CREATE:
                    return self._create_namespace(obj)
                if action.verb is Verb.MODIFY:
                    return self._modify_namespace(obj, action.old, action.label())
                handle = self._ns.get(obj.name)
                netns.remove(obj.name)
                if handle is not None:
                    handle.forget_all()
                self._drop(obj.name)
                return ActionResult(applied=True)
            if isinstance(obj, Sysctl):
                handle = self._handle(obj.namespace, action.label())
                value = obj.default if action.verb is Verb.DELETE else obj.value
                netns.write_sysctls(handle.fd, self._home, {obj.name: value})
                return ActionResult(applied=True)
        except OSError as exc:
            return ActionResult(applied=False, error=exc)
        raise TypeError(f"not an in-process action: {action.label()}")

    def _modify_namespace(
        self, obj: Namespace, old: KernelObject | None, what: str
    ) -> ActionResult:
        handle = self._handle(obj.name, what)
        if not isinstance(old, Namespace) or old.ipv6 != obj.ipv6:
            netns.write_sysctls(handle.fd, self._home, ipv6_sysctls(obj.ipv6))
        if not isinstance(old, Namespace) or old.loopback_up != obj.loopback_up:
            request = nl.link_set(handle.ifindex("lo", what), up=obj.loopback_up)
            code, note = handle.sock.transact([request])[0]
            if code:
                return ActionResult(applied=True, error=NetlinkError(code, note, what))
        return ActionResult(applied=True)

    def _create_namespace(self, obj: Namespace) -> ActionResult:
        self._drop(obj.name)
        fd = netns.create(obj.name, self._home, ipv6_sysctls(obj.ipv6))
        handle = self._open(obj.name, fd)
        handle.learn(self._dump_links(handle))
        if obj.loopback_up:
            code, note = handle.sock.transact([nl.link_set(handle.index.get("lo", 1), up=True)])[0]
            if code:
                return ActionResult(applied=True, error=NetlinkError(code, note, obj.label()))
        return ActionResult(applied=True)

    # ----------------------------------------------------------------- netlink actions

    def _compile(self, action: Action, position: int) -> list[Request]:
        """The requests of one action; link index changes wait in ``self._settlers``
        for the kernel's answer to the first request."""
        obj = action.obj
        what = action.label()
        handle = self._handle(obj.namespace, what)
        if isinstance(obj, Link):
            settlers = self._settlers.setdefault(position, [])
            old = action.old if isinstance(action.old, Link) else None
            if (
                obj.offloads is not None
                and action.verb is not Verb.DELETE
                and (old is None or old.offloads != obj.offloads)
            ):
                self._after.setdefault(position, []).append(
                    lambda: handle.ethtool.set_offloads(obj.ifname, bool(obj.offloads))
                )
            return self._compile_link(action, obj, handle, what, settlers)
        if isinstance(obj, Address):
            cmd = nl.RTM_DELADDR if action.verb is Verb.DELETE else nl.RTM_NEWADDR
            return [nl.addr_request(cmd, handle.ifindex(obj.ifname, what), obj.address)]
        if isinstance(obj, Route):
            return [self._route(action.verb, obj, handle, what)]
        if isinstance(obj, FdbEntry):
            cmd = nl.RTM_DELNEIGH if action.verb is Verb.DELETE else nl.RTM_NEWNEIGH
            return [nl.fdb_request(cmd, handle.ifindex(obj.ifname, what), obj.mac, obj.dst)]
        if isinstance(obj, Qdisc):
            index = handle.ifindex(obj.ifname, what)
            cmd, flags = self._tc_verb(action.verb, nl.RTM_NEWQDISC, nl.RTM_DELQDISC)
            if action.verb is Verb.CREATE and obj.parent == nl.TC_H_ROOT:
                # a root qdisc observe did not count as ours is a default one, or the one
                # a tap's maker set (libvirt gives its taps "noqueue", handle 8001:): the
                # link is ours to shape, so ours replaces it
                flags = nl.NLM_F_CREATE | nl.NLM_F_REPLACE
            options = b"" if action.verb is Verb.DELETE else _qdisc_options(obj.params)
            return [
                nl.qdisc_request(
                    cmd,
                    flags,
                    index,
                    handle=obj.handle,
                    parent=obj.parent,
                    kind=obj.kind,
                    options=options,
                )
            ]
        if isinstance(obj, HtbClass):
            index = handle.ifindex(obj.ifname, what)
            cmd, flags = self._tc_verb(action.verb, nl.RTM_NEWTCLASS, nl.RTM_DELTCLASS)
            options = b""
            if action.verb is not Verb.DELETE:
                options = nl.htb_class_options(
                    obj.rate_bps, obj.ceil_bps, obj.burst_bytes, obj.cburst_bytes, obj.prio
                )
            return [
                nl.qdisc_request(
                    cmd,
                    flags,
                    index,
                    handle=obj.classid,
                    parent=obj.parent,
                    kind="htb",
                    options=options,
                )
            ]
        if isinstance(obj, U32Filter | MirredRedirect):
            # both are u32 filters: on addresses, or matching all and redirecting
            index = handle.ifindex(obj.ifname, what)
            cmd, flags = self._tc_verb(action.verb, nl.RTM_NEWTFILTER, nl.RTM_DELTFILTER)
            options = b""
            if action.verb is not Verb.DELETE:
                options = (
                    nl.u32_options(obj.flowid, obj.src, obj.dst)
                    if isinstance(obj, U32Filter)
                    else nl.mirred_options(handle.ifindex(obj.target, what))
                )
            return [
                nl.filter_request(
                    cmd,
                    flags,
                    index,
                    parent=obj.parent,
                    prio=obj.prio,
                    handle=nl.u32_handle(obj.handle),
                    options=options,
                    protocol=ETH_P_ALL if isinstance(obj, MirredRedirect) else ETH_P_IP,
                )
            ]
        raise TypeError(f"cannot compile {what}")

    @staticmethod
    def _tc_verb(verb: Verb, new: int, delete: int) -> tuple[int, int]:
        if verb is Verb.CREATE:
            return new, nl.NLM_F_CREATE | nl.NLM_F_EXCL
        if verb is Verb.MODIFY:
            return new, 0  # "tc ... change": in place, same handle
        return delete, 0

    @staticmethod
    def _route(verb: Verb, obj: Route, handle: _Ns, what: str) -> Request:
        if verb is Verb.DELETE:
            return nl.route_request(
                nl.RTM_DELROUTE,
                0,
                dst=obj.dst,
                oif=0,
                gateway=None,
                table=obj.table,
                metric=obj.metric,
                protocol=RT_PROTO,
            )
        flags = nl.NLM_F_CREATE | (nl.NLM_F_EXCL if verb is Verb.CREATE else nl.NLM_F_REPLACE)
        return nl.route_request(
            nl.RTM_NEWROUTE,
            flags,
            dst=obj.dst,
            oif=handle.ifindex(obj.dev, what),
            gateway=obj.via,
            table=obj.table,
            metric=obj.metric,
            protocol=RT_PROTO,
        )

    def _compile_link(
        self,
        action: Action,
        obj: Link,
        handle: _Ns,
        what: str,
        settlers: list[Callable[[bool], None]],
    ) -> list[Request]:
        """A veth pair is created from the namespace of its creating end, which stays
        there and can be brought up in the same request; the far end, created straight
        into its namespace, cannot (ENOTCONN) and is configured by its own action, sent
        on its own namespace's socket."""
        if action.verb is Verb.DELETE:
            request = nl.link_delete(handle.ifindex(obj.ifname, what))
            settlers.append(handle.release(obj.ifname))
            if obj.peer is not None and (peer := self._ns.get(obj.peer.namespace)) is not None:
                settlers.append(peer.release(obj.peer.ifname))
            return [request]
        master = handle.ifindex(obj.master, what) if obj.master else 0
        if action.verb is Verb.MODIFY or not obj.creates_pair:
            old = action.old if isinstance(action.old, Link) else None
            requests = [self._link_set(obj, old, handle, master, what)]
            if obj.ipv6 is not None and (old is None or old.ipv6 != obj.ipv6):
                if obj.ipv6 is False:
                    # before the set that may bring it up: the kernel applies a request's
                    # flags (up) before its IFLA_AF_SPEC
                    index = handle.ifindex(obj.ifname, what)
                    requests.insert(0, nl.link_set(index, addr_gen_none=True))
                settlers.append(self._ipv6_setter(handle, obj))
            return requests
        data = b""
        avoid = 0
        if obj.peer is not None:
            peer = self._handle(obj.peer.namespace, what)
            settlers.append(peer.allocate(obj.peer.ifname))
            avoid = peer.index[obj.peer.ifname]
            data = nl.veth_data(
                peer.index[obj.peer.ifname],
                obj.peer.ifname,
                peer_netns_fd=peer.fd if peer is not handle else None,
                mtu=obj.mtu,
                mac=None,
            )
        elif obj.vxlan is not None:
            v = obj.vxlan
            data = nl.vxlan_data(
                v.vni,
                local=v.local,
                underlay=handle.ifindex(v.underlay, what) if v.underlay else 0,
                port=v.port,
                learning=v.learning,
            )
        elif obj.kind is LinkKind.BRIDGE:
            data = nl.bridge_data(obj.mcast_snooping)
        lower = 0
        if obj.vlan is not None:
            lower = handle.ifindex(obj.vlan.parent, what)
            data = nl.vlan_data(obj.vlan.vlan_id)
        settlers.append(handle.allocate(obj.ifname, avoid))
        index = handle.index[obj.ifname]
        quiet = obj.ipv6 is False
        if obj.ipv6 is not None:
            settlers.append(self._ipv6_setter(handle, obj))
        return [
            nl.link_create(
                index,
                obj.ifname,
                obj.kind.value,
                mtu=obj.mtu,
                # with IPv6 off, up only once no address can be generated (below)
                up=obj.up and not quiet,
                mac=obj.mac,
                master=master,
                link=lower,
                data=data,
            ),
            # the kernel applies a request's flags (up) before its IFLA_AF_SPEC: the link
            # comes up in a request of its own
            nl.link_set(index, alias=obj.alias, addr_gen_none=quiet),
            *([nl.link_set(index, up=True)] if quiet and obj.up else []),
        ]

    def _ipv6_setter(self, handle: _Ns, obj: Link) -> Callable[[bool], None]:
        """After the batch: the link's own IPv6 switch (``disable_ipv6``), set in its
        namespace."""

        def settle(ok: bool) -> None:
            if ok and obj.ipv6 is not None:
                netns.set_link_ipv6(handle.fd, self._home, obj.ifname, obj.ipv6)

        return settle

    @staticmethod
    def _link_set(obj: Link, old: Link | None, handle: _Ns, master: int, what: str) -> Request:
        """A set request for what differs from ``old`` (everything if there is no old:
        the far end of a veth pair, configured after its creation)."""
        index = handle.ifindex(obj.ifname, what)
        if old is None:
            return nl.link_set(
                index,
                up=obj.up,
                mtu=obj.mtu,
                mac=obj.mac,
                master=master or None,
                alias=obj.alias,
            )
        snooping = obj.kind is LinkKind.BRIDGE and obj.mcast_snooping != old.mcast_snooping
        return nl.link_set(
            index,
            up=obj.up if obj.up != old.up else None,
            mtu=obj.mtu if obj.mtu != old.mtu else None,
            mac=obj.mac if obj.mac is not None and obj.mac != old.mac else None,
            master=master if obj.master != old.master else None,
            alias=obj.alias if obj.alias != old.alias else None,
            kind="bridge" if snooping else None,
            data=nl.bridge_data(obj.mcast_snooping) if snooping else None,
        )


def _deletion_runs(
    actions: Sequence[Action], batch: list[tuple[int, list[Request]]]
) -> list[list[int]]:
    """Runs of at least :data:`BULK_DELETE_MIN` consecutive link deletions in a batch (as
    positions in it), each a single RTM_DELLINK request."""
    runs: list[list[int]] = []
    current: list[int] = []
    for position, (index, reqs) in enumerate(batch):
        if (
            len(reqs) == 1
            and reqs[0].type == nl.RTM_DELLINK
            and actions[index].verb is Verb.DELETE
            and isinstance(actions[index].obj, Link)
        ):
            current.append(position)
            continue
        if len(current) >= BULK_DELETE_MIN:
            runs.append(current)
        current = []
    if len(current) >= BULK_DELETE_MIN:
        runs.append(current)
    return runs
