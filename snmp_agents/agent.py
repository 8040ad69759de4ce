"""netmanager-agent: one SNMP agent per host, configuration by SET, monitoring by GET.

::

    netmanager-agent --listen 127.0.0.1:16101 --state-dir /var/lib/netmanager/agent-host1 \\
        --credentials snmp.toml --netns nmh1 --trap-receiver 127.0.0.1:16162

Serves SNMPv2-MIB (system and snmp groups), SNMP-FRAMEWORK-MIB's engine group, IF-MIB
ifTable/ifXTable for netmanager's links, and NETMANAGER-MIB (configuration tables,
transaction group, link table).  Configuration SETs need SNMPv3 USM authPriv with the
``[write]`` user; everyone else reads (or gets nothing, as the credentials say).

The agent binds its UDP socket itself and exits with status 2 and one line on stderr
when it cannot (port taken), when the credentials file is unusable, or when AES is
unavailable.  Engine id and boots, the candidate, the transaction and the ifIndex map
live in ``--state-dir`` and survive restarts.  SIGTERM/SIGINT stop it cleanly.

On a real hypervisor host the agent runs as a systemd service and reads its options from
a TOML file (``--config /etc/netmanager/agent.toml``, keys in ``agent.toml.example``;
options given on the command line win).  ``--check`` says whether this host can run it
(credentials, state directory, port, kernel features, libvirt) without starting it or
changing anything; ``--install-unit`` installs the systemd unit and the example file.
That code is in ``service.py``; this module is the agent and its command line.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config, engine
from pysnmp.proto import rfc1902

from netmanager.host.memory import MemoryBackend
from netmanager.host.protocol import HostBackend
from netmanager.kernel.linkstats import NetnsLinkReader
from netmanager.snmp import mib
from netmanager.snmp.credentials import Credentials, CredentialsError, load_credentials
from netmanager.snmp.usm import AUTH, PRIV
from netmanager.statedir import read_json, write_json
from snmp_agents.configstore import ConfigStore
from snmp_agents.kernelprobe import KernelProbe
from snmp_agents.monitor import (
    WATCHED_SUBTREES,
    IfIndexMap,
    LinkRow,
    Monitor,
)
from snmp_agents.oidtree import Entry, Oid, OidTree, Section, const, dynamic
from snmp_agents.responder import FastV2c, Policy, Responder
from snmp_agents.runtime import RuntimeSets
from snmp_agents.schedule import ScheduleRunner
from snmp_agents.service import (
    BACKENDS,
    CONFIG_DEFAULTS,
    CONFIG_KEYS,
    DEFAULT_CONFIG,
    LOG_LEVELS,
    UNIT_DIR,
    UNIT_NAME,
    ConfigError,
    StartupError,
    check_crypto,
    check_main,
    example_config,
    install_unit,
    load_config,
    parse_listen,
)
from snmp_agents.transaction import Transaction
from snmp_agents.traps import LINK_DOWN, LINK_UP, TrapSender, parse_endpoint

log = logging.getLogger("netmanager.agent")

MAX_DATAGRAM = 65507
SYSTEM: Oid = (1, 3, 6, 1, 2, 1, 1)
SNMP_GROUP: Oid = (1, 3, 6, 1, 2, 1, 11)
ENGINE_GROUP: Oid = (1, 3, 6, 1, 6, 3, 10, 2, 1)
IF_INDEX: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 1)
IF_ADMIN: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 7)
IF_OPER: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 8)
IF_ALIAS: Oid = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 18)


def bind_udp(address: str, port: int) -> socket.socket:
    """Bind the agent's socket ourselves: pysnmp's open_server_mode fails silently."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((address, port))
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on {address}:{port}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock


class GuardedUdpTransport(udp.UdpAsyncioTransport):  # type: ignore[misc]
    """pysnmp's UDP transport, but SNMPv2c reads go to :class:`FastV2c` first, and a
    datagram that makes pysnmp raise is counted and dropped instead of reaching asyncio's
    exception handler."""

    dropped = 0
    fast: FastV2c | None = None

    def datagram_received(self, datagram: bytes, transportAddress: Any) -> None:
        if len(datagram) > MAX_DATAGRAM:
            GuardedUdpTransport.dropped += 1
            return
        self.loop.call_soon(self._deliver, transportAddress, datagram)

    def _deliver(self, address: Any, datagram: bytes) -> None:
        if self.fast is not None and self.transport is not None:
            try:
                reply = self.fast.answer(datagram)
            except Exception:
                log.exception("fast path failed; handing the request to pysnmp")
                reply = None
            if reply is not None:
                self.transport.sendto(reply, address)
                return
        try:
            if self._callback_function is not None:
                self._callback_function(self, address, datagram)
        except Exception as exc:
            GuardedUdpTransport.dropped += 1
            log.info("datagram from %s dropped: %s", address, type(exc).__name__)


def load_engine_state(state_dir: Path) -> tuple[bytes, int]:
    """Engine id (created once) and snmpEngineBoots (incremented at every start)."""
    path = state_dir / "engine.json"
    doc = read_json(path, {}) or {}
    engine_id = doc.get("engine_id")
    if not engine_id:
        # RFC 3411 format 5 (octets), enterprise 0: administratively assigned, random
        engine_id = (bytes([0x80, 0, 0, 0, 5]) + os.urandom(12)).hex()
    boots = min(int(doc.get("boots", 0)) + 1, 2**31 - 1)
    write_json(path, {"engine_id": engine_id, "boots": boots})
    return bytes.fromhex(engine_id), boots


TIMER_RESOLUTION_S = 1.0


def make_engine(
    engine_id: bytes, boots: int, transport: GuardedUdpTransport, creds: Credentials
) -> Any:
    snmp = engine.SnmpEngine()
    builder = snmp.get_mib_builder()
    (id_obj,) = builder.import_symbols("__SNMP-FRAMEWORK-MIB", "snmpEngineID")
    id_obj.syntax = id_obj.syntax.clone(engine_id)
    snmp.snmpEngineID = id_obj.syntax
    (boots_obj,) = builder.import_symbols("__SNMP-FRAMEWORK-MIB", "snmpEngineBoots")
    boots_obj.syntax = boots_obj.syntax.clone(boots)

    config.add_transport(snmp, udp.DOMAIN_NAME, transport)
    # pysnmp ticks its engine every 0.1 s to expire request caches and retry what it
    # sends; an agent sends nothing through it (traps are built here) and its caches can
    # wait: once a second, an idle agent costs a tenth of the CPU (64 agents on two
    # cores took a quarter of a core doing nothing)
    snmp.transport_dispatcher.set_timer_resolution(TIMER_RESOLUTION_S)
    if creds.community and creds.read_only_view:
        config.add_v1_system(snmp, "nm-read", creds.community)
    if creds.read_user is not None:
        r = creds.read_user
        if r.auth_protocol and r.auth_key:
            config.add_v3_user(snmp, r.user, AUTH[r.auth_protocol], r.auth_key)
        else:
            config.add_v3_user(snmp, r.user)
    w = creds.write
    config.add_v3_user(
        snmp,
        w.user,
        AUTH[w.auth_protocol],
        w.auth_key,
        PRIV[w.priv_protocol],
        w.priv_key,
    )
    return snmp


class Uptime:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self) -> int:
        return int((time.monotonic() - self.t0) * 100) % 2**32


def system_section(args: argparse.Namespace, uptime: Uptime) -> Section:
    def text(s: str) -> Entry:
        return const(rfc1902.OctetString(s.encode("utf-8")[:255]))

    items: list[tuple[Oid, Entry]] = [
        (
            (*SYSTEM, 1, 0),
            text(f"netmanager-agent (netmanager SNMP agent) on {socket.gethostname()}"),
        ),
        ((*SYSTEM, 2, 0), const(rfc1902.ObjectIdentifier(mib.NETMANAGER_MIB))),
        ((*SYSTEM, 3, 0), dynamic(lambda: rfc1902.TimeTicks(uptime()))),
        ((*SYSTEM, 4, 0), text(args.sys_contact)),
        ((*SYSTEM, 5, 0), text(args.sys_name or socket.gethostname())),
        ((*SYSTEM, 6, 0), text(args.sys_location)),
        ((*SYSTEM, 7, 0), const(rfc1902.Integer32(72))),
    ]
    return Section.build("system", SYSTEM, items, [(*SYSTEM, i) for i in range(1, 8)])


def counters_sections(snmp: Any) -> list[Section]:
    """The snmp group of SNMPv2-MIB and the engine group, read from pysnmp's own MIB."""
    builder = snmp.get_mib_builder()

    def mib_value(module: str, name: str) -> Entry:
        (obj,) = builder.import_symbols(module, name)
        if name == "snmpEngineTime":  # its clone() computes the seconds since start
            return dynamic(lambda: obj.syntax.clone())
        return dynamic(lambda: obj.syntax)

    counters = [
        (1, "snmpInPkts"),
        (3, "snmpInBadVersions"),
        (4, "snmpInBadCommunityNames"),
        (5, "snmpInBadCommunityUses"),
        (6, "snmpInASNParseErrs"),
        (30, "snmpEnableAuthenTraps"),
        (31, "snmpSilentDrops"),
        (32, "snmpProxyDrops"),
    ]
    snmp_items = [((*SNMP_GROUP, n, 0), mib_value("__SNMPv2-MIB", name)) for n, name in counters]
    engine_items = [
        ((*ENGINE_GROUP, n, 0), mib_value("__SNMP-FRAMEWORK-MIB", name))
        for n, name in (
            (1, "snmpEngineID"),
            (2, "snmpEngineBoots"),
            (3, "snmpEngineTime"),
            (4, "snmpEngineMaxMessageSize"),
        )
    ]
    return [
        Section.build("snmp", SNMP_GROUP, snmp_items, [o[:-1] for o, _ in snmp_items]),
        Section.build("engine", ENGINE_GROUP, engine_items, [o[:-1] for o, _ in engine_items]),
    ]


def make_backend(args: argparse.Namespace, state_dir: Path) -> HostBackend:
    if args.backend == "memory":
        return MemoryBackend(
            state_dir / "memory-backend.json", fail=args.memory_fail, delay_s=args.memory_delay
        )
    if args.backend == "kernel":
        if not args.dom0:
            raise StartupError("--backend kernel needs --dom0 NAMESPACE ('.': the agent's own)")
        from netmanager.host.domainhost import DomainHost
        from netmanager.host.kernelhost import KernelBackend

        dom0 = "" if args.dom0 == "." else args.dom0
        # a libvirt host: its VMs are the domains of that hypervisor (a keeper process,
        # in the dom0, holds the connection)
        uri = getattr(args, "libvirt_uri", None)
        peers = tuple(getattr(args, "libvirt_peers", None) or ())
        hypervisor = DomainHost(uri, dom0, state_dir, peers) if uri else None
        # the engine itself is created by the first call, in the backend's worker thread
        return KernelBackend(dom0, state_dir, hypervisor=hypervisor)
    raise StartupError(f"unknown backend '{args.backend}'")  # pragma: no cover - argparse checks


def apply_underlay(path: Path) -> int:
    """An emulated guest host's own NICs as the manager describes them (``--underlay``:
    the JSON of its GuestHost), built by the kernel engine in a scope of those NICs only,
    as the infrastructure's: adopted, marked, addressed, shaped.  The number of changes."""
    from netmanager.compile.desired import render_guest_underlay
    from netmanager.compile.hostconfig import INFRA, guest_from_json
    from netmanager.kernel import ROOT_NAMESPACE, Engine, HostState, Scope

    guest = guest_from_json(json.loads(path.read_text()))
    scope = Scope.of_links(INFRA, [(ROOT_NAMESPACE, nic.ifname) for nic in guest.nics])
    with Engine() as engine:
        return engine.apply(HostState(frozenset(render_guest_underlay(guest))), scope=scope).changes


def link_trap_varbinds(row: LinkRow) -> list[tuple[Oid, Any]]:
    i = row.index
    return [
        ((*IF_INDEX, i), rfc1902.Integer32(i)),
        ((*IF_ADMIN, i), rfc1902.Integer32(1 if row.sample.admin_up else 2)),
        ((*IF_OPER, i), rfc1902.Integer32(row.sample.oper)),
        ((*IF_ALIAS, i), rfc1902.OctetString(row.sample.alias.encode("utf-8")[:64])),
    ]


async def serve(args: argparse.Namespace, creds: Credentials, sock: socket.socket) -> None:
    state_dir: Path = args.state_dir
    engine_id, boots = load_engine_state(state_dir)
    transport = GuardedUdpTransport().open_server_mode(sock=sock)
    snmp = make_engine(engine_id, boots, transport, creds)
    uptime = Uptime()
    tree = OidTree()
    tree.put(system_section(args, uptime))
    for section in counters_sections(snmp):
        tree.put(section)

    backend_executor = ThreadPoolExecutor(1, thread_name_prefix="nm-backend")
    poll_executor = ThreadPoolExecutor(1, thread_name_prefix="nm-poll")
    community = creds.trap_community or "public"
    traps = TrapSender([parse_endpoint(r, 162) for r in args.trap_receiver], community, uptime)
    await traps.open()

    def on_oper_change(row: LinkRow, old: int, new: int) -> None:
        if new in (2, 7) and old not in (2, 7):
            trap = LINK_DOWN
        elif new == 1 and old != 1:
            trap = LINK_UP
        else:
            return
        log.info(
            "%s %s (ifIndex %d): oper %d -> %d",
            "linkDown" if trap == LINK_DOWN else "linkUp",
            row.sample.key,
            row.index,
            old,
            new,
        )
        traps.send(trap, link_trap_varbinds(row))

    backend = make_backend(args, state_dir)
    default_netns = ["."]
    if args.backend == "kernel":
        # the dom0 and the VM namespaces of the running configuration (as of start-up)
        default_netns = [args.dom0, *getattr(backend, "vm_namespaces", list)()]
    namespaces = ["" if n == "." else n for n in (args.netns or default_netns)]
    reader = NetnsLinkReader(namespaces, args.alias_prefix)
    monitor = Monitor(
        reader,
        IfIndexMap(state_dir / "ifindex.json"),
        tree,
        uptime,
        poll_executor,
        interval_s=args.poll_interval,
        on_oper_change=on_oper_change,
        watched_interval_s=args.watched_poll_interval,
    )
    store = ConfigStore()

    def notify(name: str, varbinds: Sequence[tuple[Oid, Any]]) -> None:
        traps.send(mib.oid_of(name), varbinds)

    txn = Transaction(
        store, backend, state_dir, backend_executor, notify=notify, on_running=monitor.set_running
    )

    monitor.busy = txn.busy
    guest_addresses = getattr(backend, "guest_addresses", None)
    if guest_addresses is not None:
        monitor.guest_addresses = guest_addresses
    backend_runtime = getattr(backend, "runtime", None)
    if backend_runtime is not None:
        monitor.port_values = backend.port_values  # type: ignore[attr-defined]

        # whether the kernel has NetEm: a real host's agent (--probe-kernel) asks a child
        # process at start (a probe makes a namespace, which a process serving requests
        # must not risk); until it answers, and on hosts whose manager probes their
        # kernel (emulated here), the backend finds out when a change needs it, before it
        # changes anything
        netem = KernelProbe(state_dir / "features.json", start=args.probe_kernel).has("netem")

        def running_ports() -> set[tuple[str, str, str]]:
            from netmanager.host.rows import host_configs_from_candidate
            from netmanager.host.runtime import ports_by_key

            running = backend.running()
            return set(ports_by_key(host_configs_from_candidate(running, check=False)))

        warm = getattr(backend, "warm_runtime", None)
        runner = ScheduleRunner(
            state_dir,
            lambda changes: txn.call(backend_runtime, changes),
            running_ports,
            netem,
            (lambda keys: txn.call(warm, keys)) if warm is not None else None,
        )
        txn.schedule = runner
        # built again when asked for after a change (its table of recent steps grows)
        runner.section_changed = lambda: tree.invalidate("schedule", runner.root, runner.section)
        tree.put(runner.section())
        txn.runtime = RuntimeSets(
            lambda: monitor.rows_by_index,
            lambda changes: txn.call(backend_runtime, changes),
            netem,
            done=monitor.values_changed,
            pairs=lambda: monitor.pairs,
        )

    migrate_domain = getattr(backend, "migrate_domain", None)
    if migrate_domain is not None and getattr(backend, "hypervisor", None) is not None:
        from snmp_agents.migration import Migrations

        # a libvirt host: its agent makes libvirt's call of a live migration
        txn.migrations = Migrations(
            migrate_domain,
            committing=txn.busy,
            on_change=lambda: txn.section_changed(),
            job=getattr(backend, "migration_job", None),
        )

    def publish() -> None:
        tree.invalidate("config", mib.NM_CONFIG, store.section)
        tree.invalidate("txn", mib.NM_TXN, txn.section)

    txn.section_changed = publish
    publish()
    settled = (*mib.oid_of("nmTxnSettledState"), 0)
    migrate_state = (*mib.oid_of("nmTxnMigrateState"), 0)

    def defer(oids: Sequence[Oid]) -> asyncio.Future[Any] | None:
        """A GET answered once what it asks about has ended (or after a second)."""
        if settled in oids:
            return txn.settling()
        if migrate_state in oids and txn.migrations is not None:
            return txn.migrations.waiting()
        return None

    responder = Responder(
        snmp,
        tree,
        Policy(creds),
        txn.handle_set,
        max_bulk_varbinds=args.max_bulk_varbinds,
        defer=defer,
    )
    responder.reader.watch(WATCHED_SUBTREES, monitor.counters_read)
    if creds.community and creds.read_only_view:
        (in_pkts,) = snmp.get_mib_builder().import_symbols("__SNMPv2-MIB", "snmpInPkts")

        def count_in() -> None:
            in_pkts.syntax += 1

        transport.fast = FastV2c(responder.reader, creds.community, count_in)

    if args.underlay is not None:
        # the host's own NICs first: the topologies recovered next ride on them
        changed = await asyncio.get_running_loop().run_in_executor(
            backend_executor, apply_underlay, args.underlay
        )
        log.info("underlay: %d change(s)", changed)
    await txn.start()
    await monitor.poll()
    # the MIBs, the engine and the first snapshot live as long as the agent: keep the
    # collector from scanning them again at every poll (a 1000-link poll allocates a lot)
    gc.collect()
    gc.freeze()
    monitor.start()

    address, port = sock.getsockname()[:2]
    write_json(
        state_dir / "agent.json",
        {"pid": os.getpid(), "address": address, "port": port, "engine_id": engine_id.hex()},
    )
    log.info("listening on %s:%d (engine boots %d)", address, port, boots)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        monitor.stop()
        traps.close()
        txn.flush()
        snmp.close_dispatcher()
        reader_close = loop.run_in_executor(poll_executor, reader.close)
        await asyncio.wait([reader_close], timeout=2)
        close = getattr(backend, "close", None)
        if close is not None:
            backend_close = loop.run_in_executor(backend_executor, close)
            await asyncio.wait([backend_close], timeout=2)
        backend_executor.shutdown(wait=False, cancel_futures=True)
        poll_executor.shutdown(wait=False, cancel_futures=True)
        if txn.migrations is not None:
            txn.migrations.close()
        (state_dir / "agent.json").unlink(missing_ok=True)


# --- the command line, over the configuration file (--config), over the defaults --------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="netmanager-agent",
        description="netmanager's SNMP agent: configuration by SET, monitoring by GET.",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="read the options from this TOML file (keys: agent.toml.example); options "
        f"given on the command line win.  --install-unit: the file to create ({DEFAULT_CONFIG})",
    )
    p.add_argument("--listen", default="127.0.0.1:161", help="ADDRESS:PORT (port 0: any free)")
    p.add_argument("--state-dir", type=Path, default=None, help="engine, candidate, journal")
    p.add_argument("--credentials", type=Path, default=None, help="snmp.toml (mode 0600)")
    p.add_argument(
        "--netns",
        action="append",
        default=[],
        metavar="NAME",
        help="network namespace whose links to monitor (repeat; '.' is the agent's own)",
    )
    p.add_argument("--alias-prefix", default="nm:", help="monitor links whose ifalias starts so")
    p.add_argument("--poll-interval", type=float, default=5.0, metavar="SECONDS")
    p.add_argument(
        "--watched-poll-interval",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="poll this often while requests read the interface or link tables "
        "(until 10 s after the last one); 0: never faster than --poll-interval",
    )
    p.add_argument(
        "--trap-receiver", action="append", default=[], metavar="HOST[:PORT]", help="(repeat)"
    )
    p.add_argument("--backend", choices=BACKENDS, default="memory")
    p.add_argument(
        "--underlay",
        type=Path,
        default=None,
        metavar="FILE",
        help="emulated guest hosts: the host's own NICs (JSON, written by the manager), "
        "configured through the kernel engine before the agent serves",
    )
    p.add_argument(
        "--dom0",
        default="",
        metavar="NAMESPACE",
        help="kernel backend: the host's dom0 namespace (its default --netns too); '.' is "
        "the agent's own (a real host, or a guest host, whose dom0 is its root namespace)",
    )
    p.add_argument(
        "--libvirt",
        dest="libvirt_uri",
        default=None,
        metavar="URI",
        help="the libvirt URI of the hypervisor this host's VMs run on (e.g. qemu:///system)",
    )
    p.add_argument(
        "--libvirt-peer",
        dest="libvirt_peers",
        action="append",
        default=[],
        metavar="URI",
        help="a libvirt URI this host's domains may be live-migrated to, opened by its keeper "
        "before --libvirt (an embedded driver's process can open no other URI after it); "
        "repeatable",
    )
    p.add_argument(
        "--memory-fail",
        action="append",
        default=[],
        choices=["stage", "commit", "undo"],
        help="memory backend: make an operation fail (tests)",
    )
    p.add_argument("--memory-delay", type=float, default=0.0, metavar="SECONDS")
    p.add_argument("--max-bulk-varbinds", type=int, default=2000)
    p.add_argument(
        "--probe-kernel",
        action="store_true",
        help="probe this host's kernel features at start (in a child process; cached in the "
        "state directory), so that runtime changes and schedules asking for what it lacks "
        "(NetEm) are refused before anything: a real host's agent (the configuration "
        "file's default)",
    )
    p.add_argument("--sys-name", default="")
    p.add_argument("--sys-contact", default="")
    p.add_argument("--sys-location", default="")
    p.add_argument("--log-level", default="info", choices=LOG_LEVELS)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--check",
        action="store_true",
        help="check whether this host can run the agent as configured (credentials, state "
        "directory, port, kernel features, libvirt), start nothing and change nothing; "
        "exit 0 when everything required is ok, 1 otherwise",
    )
    mode.add_argument(
        "--install-unit",
        action="store_true",
        help=f"install the systemd unit ({UNIT_DIR / UNIT_NAME}) running this agent with "
        f"--config, and the example configuration where none exists ({DEFAULT_CONFIG})",
    )
    p.add_argument("--json", action="store_true", help="--check: a JSON list of the checks")
    p.add_argument(
        "--root",
        type=Path,
        default=None,
        metavar="DIR",
        help="--install-unit: install under DIR instead of / (tests, images)",
    )
    return p


def given_options(argv: Sequence[str] | None) -> set[str]:
    """The argument names (``dest``) given on the command line itself."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line, over the configuration file's values (``--config``), over the
    defaults.  ConfigError when the configuration file is unusable."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.json and not args.check:
        parser.error("--json goes with --check")
    if args.root is not None and not args.install_unit:
        parser.error("--root goes with --install-unit")
    if args.install_unit:
        return args  # the configuration file is to be created, not read
    args.config_keys, args.config_overridden = [], []
    if args.config is not None:
        given = given_options(argv)
        values = load_config(args.config)
        args.config_keys = [k for k, spec in CONFIG_KEYS.items() if spec.dest in values]
        args.config_overridden = [k for k in args.config_keys if CONFIG_KEYS[k].dest in given]
        for dest, value in {**CONFIG_DEFAULTS, **values}.items():
            if dest not in given:
                setattr(args, dest, value)
    if not args.check:
        missing = [
            (option, key)
            for dest, option, key in (
                ("state_dir", "--state-dir", "state_dir"),
                ("credentials", "--credentials", "credentials"),
            )
            if getattr(args, dest) is None
        ]
        if missing and args.config is not None:
            raise ConfigError(
                args.config,
                f"no {' and no '.join(repr(k) for _, k in missing)}, and the command line "
                f"gives no {' nor '.join(o for o, _ in missing)}",
                f"see {example_config()}",
            )
        if missing:
            parser.error(
                "the following arguments are required: "
                f"{', '.join(o for o, _ in missing)} (or --config FILE)"
            )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except StartupError as exc:
        print(f"netmanager-agent: error: {exc}", file=sys.stderr)
        return 2
    if args.install_unit:
        return install_unit(args)
    if args.check:
        return check_main(args)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s netmanager-agent[%(process)d] %(levelname)s %(message)s",
    )
    try:
        try:
            host, port = parse_listen(args.listen)
        except ValueError as exc:
            raise StartupError(f"--listen {exc}") from None
        check_crypto()
        creds = load_credentials(args.credentials)
        args.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        sock = bind_udp(host, port)
    except (StartupError, CredentialsError) as exc:
        print(f"netmanager-agent: error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(args, creds, sock))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
