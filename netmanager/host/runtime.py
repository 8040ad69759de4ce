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

from netmanager.compile.hostconfig import HostConfig, Port, PortClass, Shaping
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


#: the columns of a host's schedule log (CSV), one row per step made: times in ms since
#: the schedule's start (late: actual - schedule, negative when early)
LOG_FIELDS = (
    "schedule_ms",
    "actual_ms",
    "late_ms",
    "topology",
    "vm",
    "network",
    "values",
    "source",
    "result",
)

#: the HTB class of a port that shapes its traffic with one peer VM (a ``<link>`` pair)
PAIR_CLASS = "pair "


@dataclass(frozen=True)
class PortOverride:
    """A port's runtime values; None leaves the topology's.  ``base``: the topology's
    own values (rate, delay, jitter, loss; "up") when each was set.  ``pairs``: the
    runtime values of the port's ``<link>`` pairs, by peer VM (overrides of the port's
    class for that peer: shaping values only)."""

    rate_bps: int | None = None  # towards the VM
    rate_in_bps: int | None = None  # from the VM
    delay_us: int | None = None
    jitter_us: int | None = None
    loss_ppm: int | None = None
    up: bool | None = None
    base: tuple[tuple[str, Any], ...] = ()
    pairs: tuple[tuple[str, PortOverride], ...] = ()

    @property
    def empty(self) -> bool:
        return not self.values() and not self.pairs

    def values(self) -> dict[str, Any]:
        """What it sets on the port itself: field name -> value."""
        return {n: getattr(self, n) for n in (*VALUES, "up") if getattr(self, n) is not None}

    @property
    def needs_netem(self) -> bool:
        """Whether it sets a delay, jitter or loss (on the port or one of its pairs)."""
        return bool(self.delay_us or self.jitter_us or self.loss_ppm) or any(
            o.needs_netem for _, o in self.pairs
        )

    def pair(self, peer: str) -> PortOverride | None:
        return dict(self.pairs).get(peer)

    def words(self) -> tuple[str, ...]:
        """What it sets on the port itself, in :data:`WORDS`' words (each once)."""
        return tuple(dict.fromkeys(w for f, w in WORDS if getattr(self, f) is not None))

    def all_words(self) -> tuple[str, ...]:
        """:meth:`words`, then those of each pair as ``WORD~PEER``."""
        return (
            *self.words(),
            *(f"{w}~{peer}" for peer, o in self.pairs for w in o.words()),
        )

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {**self.values(), "base": [list(b) for b in self.base]}
        if self.pairs:
            doc["pairs"] = [[peer, o.as_json()] for peer, o in self.pairs]
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> PortOverride:
        known = {f.name for f in fields(cls)} - {"base", "pairs"}
        return cls(
            **{k: v for k, v in doc.items() if k in known},
            base=tuple((str(k), v) for k, v in doc.get("base", ())),
            pairs=tuple((str(p), cls.from_json(o)) for p, o in doc.get("pairs", ())),
        )


def split_word(word: str) -> tuple[str, str]:
    """An override's word (:meth:`PortOverride.all_words`): the field it stands for, and
    the pair's peer ("" for the port's own value)."""
    name, _, peer = word.partition("~")
    return FIELD_OF_WORD[name], peer


def pair_class(port: Port, peer: str) -> PortClass | None:
    """The port's class for its ``<link>`` pair with VM ``peer``, if it has one."""
    return next((c for c in port.classes if c.name == PAIR_CLASS + peer), None)


def pair_peers(port: Port) -> list[str]:
    return [c.name.removeprefix(PAIR_CLASS) for c in port.classes if c.name.startswith(PAIR_CLASS)]


def own_values(port: Port | PortClass) -> dict[str, Any]:
    """What the topology itself gives a port (or one of its pair's classes), as
    overrides name them."""
    return {
        "rate_bps": port.egress.rate_bps,
        "rate_in_bps": port.ingress.rate_bps,
        "delay_us": port.egress.delay_us,
        "jitter_us": port.egress.jitter_us,
        "loss_ppm": port.egress.loss_ppm,
        "up": getattr(port, "up", None),
    }


def _merged(kept: PortOverride, change: PortOverride, own: Mapping[str, Any]) -> dict[str, Any]:
    """The values of ``change`` over ``kept``, without those equal to the topology's."""
    values = {**kept.values(), **change.values()}
    return {n: v for n, v in values.items() if not _same(n, v, own[n])}


def merge(
    overrides: Mapping[PortKey, PortOverride],
    changes: Mapping[PortKey, PortOverride],
    ports: Mapping[PortKey, Port],
) -> dict[PortKey, PortOverride]:
    """``overrides`` with ``changes`` on top (a value given replaces the one kept; the
    topology's value is remembered as its base); a value equal to the topology's own is
    no override.  ``ports``: the running topology's ports, by key (a change's pairs must
    be classes of its port: ValueError otherwise)."""
    out = dict(overrides)
    for key, change in changes.items():
        port = ports[key]
        own = own_values(port)
        kept = out.get(key, PortOverride())
        values = _merged(kept, change, own)
        pairs = dict(kept.pairs)
        for peer, pair in change.pairs:
            found = pair_class(port, peer)
            if found is None:
                raise ValueError(f"VM '{key[1]}' has no <link> pair with '{peer}' in '{key[2]}'")
            pair_own = own_values(found)
            pair_values = _merged(pairs.get(peer, PortOverride()), pair, pair_own)
            base = tuple((n, pair_own[n]) for n in sorted(pair_values))
            pairs[peer] = PortOverride(**pair_values, base=base)
        merged = PortOverride(
            **values,
            base=tuple((n, own[n]) for n in sorted(values)),
            pairs=tuple((p, o) for p, o in sorted(pairs.items()) if not o.empty),
        )
        if merged.empty:
            out.pop(key, None)
        else:
            out[key] = merged
    return out


def _still(override: PortOverride, own: Mapping[str, Any]) -> dict[str, Any]:
    """An override's values that still hold: set over a topology value that has not
    changed since, and not equal to it now."""
    base = dict(override.base)
    return {
        n: v
        for n, v in override.values().items()
        if _same(n, base.get(n, own[n]), own[n]) and not _same(n, v, own[n])
    }


def prune(
    overrides: Mapping[PortKey, PortOverride], ports: Mapping[PortKey, Port]
) -> dict[PortKey, PortOverride]:
    """The overrides that still hold for a topology's new ports: none for a port (or a
    pair) that is gone; a value dropped where the topology's own value changed since it
    was set (the file's new value wins), or now equals it."""
    out = {}
    for key, override in overrides.items():
        port = ports.get(key)
        if port is None:
            continue
        own = own_values(port)
        values = _still(override, own)
        pairs = []
        for peer, pair in override.pairs:
            found = pair_class(port, peer)
            if found is None:
                continue
            pair_own = own_values(found)
            pair_values = _still(pair, pair_own)
            if pair_values:
                base = tuple((n, pair_own[n]) for n in sorted(pair_values))
                pairs.append((peer, PortOverride(**pair_values, base=base)))
        kept = PortOverride(
            **values, base=tuple((n, own[n]) for n in sorted(values)), pairs=tuple(pairs)
        )
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


def _shaped(egress: Shaping, ingress: Shaping, override: PortOverride) -> tuple[Shaping, Shaping]:
    """A port's (or a pair class's) shaping both ways with an override's values on top."""
    if override.rate_bps is not None:
        egress = replace(egress, rate_bps=override.rate_bps)
    if override.rate_in_bps is not None:
        ingress = replace(ingress, rate_bps=override.rate_in_bps)
    netem = {n: getattr(override, n) for n in ("delay_us", "jitter_us", "loss_ppm")}
    egress = replace(egress, **{n: v for n, v in netem.items() if v is not None})
    return _none_if_zero(egress), _none_if_zero(ingress)


def _pair_overridden(found: PortClass, override: PortOverride) -> PortClass:
    egress, ingress = _shaped(found.egress, found.ingress, override)
    return replace(found, egress=egress, ingress=ingress)


def _overridden(port: Port, override: PortOverride) -> Port:
    egress, ingress = _shaped(port.egress, port.ingress, override)
    pairs = dict(override.pairs)
    classes = tuple(
        _pair_overridden(c, pairs[c.name.removeprefix(PAIR_CLASS)])
        if c.name.startswith(PAIR_CLASS) and c.name.removeprefix(PAIR_CLASS) in pairs
        else c
        for c in port.classes
    )
    return replace(
        port,
        egress=egress,
        ingress=ingress,
        classes=classes,
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
