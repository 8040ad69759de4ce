"""Runtime changes of a running topology's VM ports, kept by the host as *overrides* of
the topology (pure: the backends apply them).

A runtime change (``netmanager set``, ``Testbed.set``, an SNMP SET on the host's link
table) gives a port a rate, a NetEm delay, jitter or loss, or takes it down, at once and
in place, without a new candidate.  The host keeps it as a :class:`PortOverride`: every
convergence (commit, recovery) renders the topology with its overrides on top, so a
re-apply keeps them; each value remembers what the topology gave when it was set, and a
candidate whose own value has changed since wins over it (the file's new value is what
the user asked for last).  A port that is gone takes its override with it.

Values are those of the port's qdiscs: the rate towards the VM (its TBF) and from it (the
TBF on the IFB of what it sends), delay, jitter and loss towards the VM (NetEm under the
TBF), as :mod:`netmanager.compile.desired` renders a port's shaping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from netmanager.compile.hostconfig import HostConfig, Port, Shaping
from netmanager.host.rows import PortKey

#: the shaping values an override may set (None: the topology's)
VALUES = ("rate_bps", "rate_in_bps", "delay_us", "jitter_us", "loss_ppm")

#: the words that name an override's values (NETMANAGER-MIB's nmLinkOverrides, status,
#: plan), by field: both rates are "rate"
WORDS = (
    ("rate_bps", "rate"),
    ("rate_in_bps", "rate"),
    ("delay_us", "delay"),
    ("jitter_us", "jitter"),
    ("loss_ppm", "loss"),
    ("up", "state"),
)

#: the field a word stands for (a rate's: the rate towards the VM)
FIELD_OF_WORD = {word: field for field, word in reversed(WORDS)}


@dataclass(frozen=True)
class PortOverride:
    """A port's runtime values; None leaves the topology's.  ``base``: the topology's
    own values (rate, delay, jitter, loss; "up") when each was set."""

    rate_bps: int | None = None  # towards the VM
    rate_in_bps: int | None = None  # from the VM
    delay_us: int | None = None
    jitter_us: int | None = None
    loss_ppm: int | None = None
    up: bool | None = None
    base: tuple[tuple[str, Any], ...] = ()

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) is None for name in (*VALUES, "up"))

    def values(self) -> dict[str, Any]:
        """What it sets: field name -> value."""
        return {n: getattr(self, n) for n in (*VALUES, "up") if getattr(self, n) is not None}

    def words(self) -> tuple[str, ...]:
        """What it sets, in :data:`WORDS`' words (each once)."""
        return tuple(dict.fromkeys(w for f, w in WORDS if getattr(self, f) is not None))

    def as_json(self) -> dict[str, Any]:
        return {**self.values(), "base": [list(b) for b in self.base]}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> PortOverride:
        known = {f.name for f in fields(cls)} - {"base"}
        return cls(
            **{k: v for k, v in doc.items() if k in known},
            base=tuple((str(k), v) for k, v in doc.get("base", ())),
        )


def own_values(port: Port) -> dict[str, Any]:
    """What the topology itself gives a port, as overrides name them."""
    return {
        "rate_bps": port.egress.rate_bps,
        "rate_in_bps": port.ingress.rate_bps,
        "delay_us": port.egress.delay_us,
        "jitter_us": port.egress.jitter_us,
        "loss_ppm": port.egress.loss_ppm,
        "up": port.up,
    }


def merge(
    overrides: Mapping[PortKey, PortOverride],
    changes: Mapping[PortKey, PortOverride],
    ports: Mapping[PortKey, Port],
) -> dict[PortKey, PortOverride]:
    """``overrides`` with ``changes`` on top (a value given replaces the one kept; the
    topology's value is remembered as its base); a value equal to the topology's own is
    no override.  ``ports``: the running topology's ports, by key."""
    out = dict(overrides)
    for key, change in changes.items():
        own = own_values(ports[key])
        kept = out.get(key, PortOverride())
        values = {**kept.values(), **change.values()}
        values = {n: v for n, v in values.items() if not _same(n, v, own[n])}
        base = tuple((n, own[n]) for n in sorted(values))
        merged = PortOverride(**values, base=base)
        if merged.empty:
            out.pop(key, None)
        else:
            out[key] = merged
    return out


def prune(
    overrides: Mapping[PortKey, PortOverride], ports: Mapping[PortKey, Port]
) -> dict[PortKey, PortOverride]:
    """The overrides that still hold for a topology's new ports: none for a port that is
    gone; a value dropped where the topology's own value changed since it was set (the
    file's new value wins), or now equals it."""
    out = {}
    for key, override in overrides.items():
        port = ports.get(key)
        if port is None:
            continue
        own = own_values(port)
        base = dict(override.base)
        values = {
            n: v
            for n, v in override.values().items()
            if _same(n, base.get(n, own[n]), own[n]) and not _same(n, v, own[n])
        }
        kept = PortOverride(**values, base=tuple((n, own[n]) for n in sorted(values)))
        if not kept.empty:
            out[key] = kept
    return out


def _same(name: str, a: Any, b: Any) -> bool:
    """Whether two values of a field mean the same: 0 and None are both "none" for the
    shaping values."""
    if name in VALUES:
        return (a or 0) == (b or 0)
    return bool(a == b)


def apply_overrides(config: HostConfig, overrides: Mapping[PortKey, PortOverride]) -> HostConfig:
    """``config`` with its ports' overrides on top (the same object when it has none)."""
    mine = {
        (vm, network): o
        for (topology, vm, network), o in overrides.items()
        if topology == config.topology
    }
    if not mine:
        return config
    ports = []
    for port in config.ports:
        override = mine.get((port.vm, port.network))
        ports.append(port if override is None else _overridden(port, override))
    return replace(config, ports=tuple(ports))


def _overridden(port: Port, override: PortOverride) -> Port:
    egress = port.egress
    ingress = port.ingress
    if override.rate_bps is not None:
        egress = replace(egress, rate_bps=override.rate_bps)
    if override.rate_in_bps is not None:
        ingress = replace(ingress, rate_bps=override.rate_in_bps)
    netem = {n: getattr(override, n) for n in ("delay_us", "jitter_us", "loss_ppm")}
    egress = replace(egress, **{n: v for n, v in netem.items() if v is not None})
    return replace(
        port,
        egress=_none_if_zero(egress),
        ingress=_none_if_zero(ingress),
        up=port.up if override.up is None else override.up,
    )


def _none_if_zero(shaping: Shaping) -> Shaping:
    """0 is "none" for every value (no TBF, no NetEm), as the topology writes it."""
    names = ("rate_bps", "delay_us", "jitter_us", "loss_ppm")
    return replace(shaping, **{n: None for n in names if getattr(shaping, n) == 0})


def ports_by_key(configs: Iterable[HostConfig]) -> dict[PortKey, Port]:
    return {(c.topology, p.vm, p.network): p for c in configs for p in c.ports}


def to_json(overrides: Mapping[PortKey, PortOverride]) -> list[list[Any]]:
    return [[*key, o.as_json()] for key, o in sorted(overrides.items())]


def from_json(doc: Iterable[Any]) -> dict[PortKey, PortOverride]:
    return {(str(t), str(v), str(n)): PortOverride.from_json(o) for t, v, n, o in doc}
