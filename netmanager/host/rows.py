"""A host's :class:`~netmanager.compile.hostconfig.HostConfig` list <-> the agent's :class:`Candidate`.

What travels, for each topology on the host:

* ``nmDocumentTable``: the topology's whole ``HostConfig`` as a document (JSON, zlib,
  base64, cut into chunks of at most :data:`CHUNK` characters) — the source of truth,
  lossless for what :func:`netmanager.compile.desired.render_host` needs (MTUs, tunnel and IFB
  names, static FDB entries, per-direction and per-peer shaping, forwarding VMs, NAT
  gateways, policies), none of which the first version of the MIB had columns for;
* the structured tables show the same configuration for people and tools (``snmptable``)
  and for the agent's link monitor (``nmPortIfName`` names the interfaces): networks,
  VXLAN peers, ports, per-port shaping, VM routes.  Several topologies share a host, so
  names are qualified by the topology: network ``topology/network``, VM ``topology/vm``
  (at most 32 characters, the MIB's ``NmName``).  The isolation rules of virtual.xml
  travel in the documents only (``nmRuleTable`` holds one prefix per side, policies many).

:func:`host_configs_from_candidate` refuses (``ValueError``) a candidate whose structured
rows are not exactly those its documents imply, so the two can never disagree.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable
from dataclasses import replace
from ipaddress import IPv4Address
from typing import Any

from netmanager.compile.hostconfig import HostConfig, Port, Shaping
from netmanager.host.candidate import (
    TABLES,
    Candidate,
    DocumentConfig,
    NetworkConfig,
    PeerConfig,
    PortConfig,
    RouteConfig,
    ShapingConfig,
)

CHUNK = 255  # nmDocumentData: DisplayString (SIZE (1..255))
#: documents decoded in this process, by value: equal documents give the same HostConfig
#: objects back (a backend reads its running candidate again at every operation, an agent
#: the candidate it completed, and what is computed from a configuration can be kept by
#: its identity), and the candidates whose structured rows were found to match them
_DECODED: dict[tuple[DocumentConfig, ...], list[HostConfig]] = {}
_CHECKED: dict[Candidate, list[HostConfig]] = {}
_CACHED_MAX = 32
NAME_MAX = 32  # NmName
SEPARATOR = "/"
ROWS = ("networks", "peers", "ports", "shapings", "routes")


def qualified(topology: str, name: str) -> str:
    """A network or VM name as it appears in the structured tables."""
    out = f"{topology}{SEPARATOR}{name}"
    if len(out) > NAME_MAX or not out.isascii() or any(c.isspace() for c in out):
        raise ValueError(
            f"'{out}' cannot name a row of NETMANAGER-MIB (at most {NAME_MAX} printable "
            "ASCII characters): shorten the topology or the name"
        )
    return out


def encode_document(config: HostConfig) -> list[str]:
    raw = json.dumps(config.as_json(), separators=(",", ":"), sort_keys=True).encode()
    text = base64.b64encode(zlib.compress(raw, 6)).decode("ascii")
    return [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]


def decode_document(chunks: Iterable[str]) -> HostConfig:
    raw = zlib.decompress(base64.b64decode("".join(chunks).encode("ascii"), validate=True))
    return HostConfig.from_json(json.loads(raw))


def _kbps(bps: int | None) -> int:
    return (bps or 0) // 1000


def _port_shaping(topology: str, port: Port) -> ShapingConfig | None:
    egress = port.egress
    if egress.empty and port.ingress.empty:
        return None
    return ShapingConfig(
        vm=qualified(topology, port.vm),
        network=qualified(topology, port.network),
        rate_kbps=_kbps(egress.rate_bps or port.ingress.rate_bps),
        delay_us=egress.delay_us or 0,
        jitter_us=egress.jitter_us or 0,
        loss_ppm=egress.loss_ppm or 0,
        queue_pkts=egress.queue_pkts or 0,
    )


def rows_of(config: HostConfig) -> dict[str, list[object]]:
    """The structured rows (every table but the documents) that show one HostConfig."""
    t = config.topology
    rows: dict[str, list[object]] = {name: [] for name in ROWS}
    for s in config.segments:
        rows["networks"].append(
            NetworkConfig(
                name=qualified(t, s.network),
                encap=s.encap.value,
                segment_id=s.segment_id,
                bridge=s.bridge,
                underlay=s.underlay or "",
                local_address=s.local or IPv4Address(0),
                isolated=any(p.network == s.network for p in config.policies),
            )
        )
        rows["peers"].extend(PeerConfig(qualified(t, s.network), r) for r in s.remotes)
    for p in config.ports:
        rows["ports"].append(
            PortConfig(
                vm=qualified(t, p.vm),
                network=qualified(t, p.network),
                address=p.ip.ip,
                prefix_length=p.ip.network.prefixlen,
                ifname=p.vif,
                vm_ifname=p.ifname,
                mac=p.mac,
            )
        )
        shaping = _port_shaping(t, p)
        if shaping is not None:
            rows["shapings"].append(shaping)
    for vm in config.vms:
        rows["routes"].extend(
            RouteConfig(qualified(t, vm.vm), r.to.network_address, r.to.prefixlen, r.via)
            for r in vm.routes
        )
    return rows


def candidate_from_host_configs(configs: Iterable[HostConfig]) -> Candidate:
    """The candidate that carries what one host builds for every topology it serves."""
    configs = list(configs)
    tables: dict[str, list[object]] = {name: [] for name in (*ROWS, "documents")}
    seen: set[str] = set()
    for config in configs:
        if config.topology in seen:
            raise ValueError(f"topology '{config.topology}' given twice")
        seen.add(config.topology)
        qualified(config.topology, "")  # the topology itself must fit in a row name
        for name, rows in rows_of(config).items():
            tables[name].extend(rows)
        tables["documents"].extend(
            DocumentConfig(config.topology, n, chunk)
            for n, chunk in enumerate(encode_document(config), start=1)
        )
    candidate = Candidate.of(**tables)
    _keep(_DECODED, candidate.documents, configs)
    _keep(_CHECKED, candidate, configs)
    return candidate


def topology_of(row: object) -> str:
    """The topology a structured row belongs to (its qualified name's first part)."""
    for attr in ("vm", "name", "network"):  # ports, shapings, routes; networks; peers
        value = getattr(row, attr, None)
        if value:
            return str(value).split(SEPARATOR, 1)[0]
    return ""


def documented(candidate: Candidate) -> set[str]:
    """The topologies of which a candidate carries a document."""
    return {d.topology for d in candidate.documents}


def complete(candidate: Candidate) -> Candidate:
    """``candidate`` with the structured rows its documents imply and it lacks added; the
    same object when it lacks none or its documents cannot be read (staging it then says
    why).  An agent completes its candidate when asked to stage, so that a manager sends
    the documents (a few SETs) and not the rows they imply (most of them); rows set by
    hand stay, and must agree with the documents (see :func:`host_configs_from_candidate`)."""
    if not candidate.documents:
        return candidate
    try:
        configs = host_configs_from_candidate(candidate, check=False)
    except ValueError:
        return candidate
    implied = candidate_from_host_configs(configs)
    added: dict[str, list[object]] = {}
    for name in ROWS:
        present = set(getattr(candidate, name))
        missing = [r for r in getattr(implied, name) if r not in present]
        if missing:
            added[name] = [*getattr(candidate, name), *missing]
    if not added:
        return candidate
    tables = {name: getattr(candidate, name) for name in TABLES}
    return Candidate.of(**{**tables, **added})


def _keep(cache: dict[Any, list[HostConfig]], key: Any, configs: list[HostConfig]) -> None:
    """Remember ``configs`` for ``key``; an equal key already known keeps its objects
    (so that equal configurations are one object, whatever built them again)."""
    if key in cache:
        return
    if len(cache) >= _CACHED_MAX:
        del cache[next(iter(cache))]
    cache[key] = list(configs)


def host_configs_from_candidate(candidate: Candidate, *, check: bool = True) -> list[HostConfig]:
    """The HostConfigs a candidate carries, by topology name; ``ValueError`` when its
    documents are incomplete or unreadable, or (``check``) the structured rows disagree
    with them.  ``check=False`` is for a host's own journal, whose candidates were checked
    when they were staged."""
    if check:
        checked = _CHECKED.get(candidate)
        if checked is not None:
            return list(checked)
    configs = _DECODED.get(candidate.documents)
    if configs is None:
        configs = _decode(candidate)
        _keep(_DECODED, candidate.documents, configs)
    if check:
        expected = _structured(configs)
        for name in ROWS:
            if getattr(expected, name) != getattr(candidate, name):
                raise ValueError(
                    f"the {name} rows do not match the host configuration documents "
                    "(nmDocumentTable): load both from the same configuration"
                )
        _keep(_CHECKED, candidate, configs)
    return list(configs)


def _decode(candidate: Candidate) -> list[HostConfig]:
    chunks: dict[str, dict[int, str]] = {}
    for d in candidate.documents:
        chunks.setdefault(d.topology, {})[d.chunk] = d.data
    configs: list[HostConfig] = []
    for topology in sorted(chunks):
        numbers = sorted(chunks[topology])
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(
                f"topology '{topology}': document chunks {numbers} are not numbered 1..n"
            )
        try:
            config = decode_document(chunks[topology][n] for n in numbers)
        except (ValueError, KeyError, TypeError, zlib.error) as exc:
            raise ValueError(f"topology '{topology}': unreadable document ({exc})") from exc
        if config.topology != topology:
            raise ValueError(
                f"the document of row '{topology}' describes topology '{config.topology}'"
            )
        configs.append(config)
    return configs


def _structured(configs: Iterable[HostConfig]) -> Candidate:
    """The structured rows (no documents) the configurations imply."""
    tables: dict[str, list[object]] = {name: [] for name in ROWS}
    for config in configs:
        for name, rows in rows_of(config).items():
            tables[name].extend(rows)
    return Candidate.of(**tables)


#: a VM port of a topology on a host: (topology, VM, network), names unqualified
PortKey = tuple[str, str, str]


def ports_text(ports: Iterable[PortKey] | None) -> str:
    """Ports as NETMANAGER-MIB's nmTxnScope carries them: ``topology/vm/network`` items
    separated by commas (names never hold either); None (the whole host): empty."""
    return ",".join(SEPARATOR.join(p) for p in ports) if ports is not None else ""


def ports_from_text(text: str) -> tuple[PortKey, ...] | None:
    """The inverse of :func:`ports_text`; ValueError when an item is not three names."""
    if not text:
        return None
    out: list[PortKey] = []
    for item in text.split(","):
        parts = item.split(SEPARATOR)
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"'{item}' is not topology{SEPARATOR}vm{SEPARATOR}network")
        out.append((parts[0], parts[1], parts[2]))
    return tuple(out)


def port_links(config: HostConfig, port: Port) -> list[tuple[str, str]]:
    """The links of one VM port, as (namespace, ifname): the veth end in the dom0 (on the
    bridge), the end inside the VM, and the IFB that shapes what the VM sends."""
    return [(config.dom0, port.vif), (port.vm_namespace, port.ifname), (config.dom0, port.ifb)]


def check_scoped(before: Candidate, after: Candidate, ports: Iterable[PortKey]) -> None:
    """That ``after`` differs from ``before`` in nothing but the shaping (rates, NetEm,
    per-peer classes) of ``ports``, which it holds; ValueError naming a port that does not
    exist or what else differs: a change scoped to some ports must not need anything else."""
    wanted: dict[str, set[tuple[str, str]]] = {}
    for topology, vm, network in ports:
        wanted.setdefault(topology, set()).add((vm, network))
    old = {c.topology: c for c in host_configs_from_candidate(before, check=False)}
    new = {c.topology: c for c in host_configs_from_candidate(after)}
    for topology in sorted(set(new) | set(old)):
        problem = scoped_change(old.get(topology), new.get(topology), wanted.get(topology, set()))
        if problem is not None:
            raise ValueError(problem)
    missing = sorted(set(wanted) - set(new))
    if missing:
        raise ValueError(f"topology '{missing[0]}' is not on this host")


def scoped_change(
    before: HostConfig | None, after: HostConfig | None, named: set[tuple[str, str]]
) -> str | None:
    """Why ``after`` is not ``before`` with only the shaping of the ``named`` ports
    (VM, network) changed, or None when it is."""
    config = after if after is not None else before
    if config is None:
        return None
    where = f"topology '{config.topology}' on host '{config.host}'"
    if not named:
        return None if before == after else f"{where} changes too, and none of its ports is named"
    if before is None:
        return f"{where} is not applied there yet"
    if after is None:
        return f"{where} would go: more than the shaping of the ports named"
    found = {(p.vm, p.network) for p in after.ports}
    missing = sorted(named - found)
    if missing:
        return f"{where} has no port of VM '{missing[0][0]}' in network '{missing[0][1]}'"
    if _unshaped(before, named) != _unshaped(after, named):
        return f"{where} changes more than the shaping of the ports named"
    return None


def _unshaped(config: HostConfig, named: set[tuple[str, str]]) -> HostConfig:
    """``config`` with the shaping of the ``named`` ports cleared."""
    none = Shaping()
    return replace(
        config,
        ports=tuple(
            replace(p, egress=none, ingress=none, classes=()) if (p.vm, p.network) in named else p
            for p in config.ports
        ),
    )
