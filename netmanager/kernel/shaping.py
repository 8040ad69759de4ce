"""How big a token bucket, a queue and a NetEm buffer must be for a given rate and delay.

The sizes follow from the rate instead of being constants (Mininet #1252: a fixed 15 kB
burst caps a 1 Gbit/s TBF far below its rate; Mininet #1129: a NetEm queue of 1000 packets
drops at high bandwidth-delay products).

TBF, for a rate ``R`` bit/s on a link with frames of ``F = mtu + 14`` bytes:

* **burst** (bucket size) ``= max(R/8 · W, 2·F, G)``

  - ``R/8·W``: tokens keep arriving while the qdisc waits for its next timer or softirq;
    tc-tbf(8) asks for at least rate/HZ.  ``W`` is how late the host's wake-ups may come:
    one tick of the coarsest common kernel (``HZ = 250``: 4 ms, 500 kB at 1 Gbit/s), so
    the bucket never empties between two wake-ups.  A host whose CPU is emulated (a QEMU
    guest under TCG) wakes its qdiscs later than that: :data:`EMULATED_CPU_WAKEUP_US`
    (measured: a 10 Mbit/s TBF with NetEm below it in such a guest passed 2.5 % under
    its rate with a 4 ms bucket, on the rate with a 20 ms one).
  - ``2·F``: a full frame must always fit, plus one in flight.
  - ``G = 64 KiB`` from :data:`GSO_RATE_BPS` up: with segmentation offloads on, a whole
    GSO super-packet passes without being split in the qdisc.  Below that rate offloads
    should be off on the shaped port (:mod:`netmanager.kernel.ethtool`): TBF segments
    oversized GSO packets itself, which is correct but costs CPU.

  The extra bytes a full bucket lets through are at most one burst, which stays under
  0.1 % of what a 10 s measurement sends from 1 Mbit/s (3 kB of 1.25 MB) to 1 Gbit/s
  (500 kB of 1.25 GB).

* **limit** (queue in bytes) ``= burst + max(R/8 · max(Q, RTT), 8·F)``: a queue that holds
  ``Q`` (default 50 ms) of traffic at the shaped rate, or a whole bandwidth-delay product
  when the path's round-trip time is longer, so that TCP is limited by the rate and not by
  tail drops; never fewer than 8 frames.

NetEm: ``limit_packets = max(1000, ceil(1.5 · R/8 · (delay + jitter) / F))`` — every packet
in flight inside the delay line must fit, with 50 % headroom for jitter bunching.

Where the objects go (design, "Shaping semantics"): the egress TBF of a VM's port with
NetEm as its child (:func:`tbf_with_netem`), and for what the VM sends, the port's
ingress redirected to an IFB whose root TBF shapes it (:func:`ifb_ingress`).
"""

from __future__ import annotations

import math

from netmanager.kernel.objects import (
    KernelObject,
    Link,
    LinkKind,
    MirredRedirect,
    Netem,
    Qdisc,
    Tbf,
    tbf_class,
)

HZ = 250
#: how late a host's qdisc wake-ups may come (see the module docstring): one tick of HZ
DEFAULT_WAKEUP_US = 1_000_000 // HZ
#: ... and on a host whose CPU is emulated (TCG): five ticks
EMULATED_CPU_WAKEUP_US = 5 * DEFAULT_WAKEUP_US
ETH_HEADER = 14
GSO_MAX_BYTES = 65536
GSO_RATE_BPS = 100_000_000
DEFAULT_QUEUE_US = 50_000
MIN_QUEUE_FRAMES = 8
NETEM_MIN_LIMIT = 1000


def frame_bytes(mtu: int) -> int:
    return mtu + ETH_HEADER


def tbf_burst_bytes(
    rate_bps: int, mtu: int = 1500, *, offloads: bool = True, wakeup_us: int = DEFAULT_WAKEUP_US
) -> int:
    frame = frame_bytes(mtu)
    burst = max(math.ceil(rate_bps / 8 * wakeup_us / 1e6), 2 * frame)
    if offloads and rate_bps >= GSO_RATE_BPS:
        burst = max(burst, GSO_MAX_BYTES)
    return burst


def tbf_for_rate(
    rate_bps: int,
    *,
    mtu: int = 1500,
    queue_us: int = DEFAULT_QUEUE_US,
    rtt_us: int = 0,
    offloads: bool = True,
    wakeup_us: int = DEFAULT_WAKEUP_US,
) -> Tbf:
    """TBF parameters for ``rate_bps`` (see the module docstring for the formula).

    ``offloads=False`` when the shaped port has TSO/GSO/GRO off (``Link.offloads``): then
    no GSO super-packet reaches the qdisc and the 64 KiB floor is not needed.
    ``wakeup_us``: how late the host's wake-ups may come (``W`` in the module docstring).
    """
    if rate_bps <= 0:
        raise ValueError(f"rate must be positive, not {rate_bps}")
    burst = tbf_burst_bytes(rate_bps, mtu, offloads=offloads, wakeup_us=wakeup_us)
    queue = max(
        math.ceil(rate_bps / 8 * max(queue_us, rtt_us) / 1e6), MIN_QUEUE_FRAMES * frame_bytes(mtu)
    )
    return Tbf(rate_bps=rate_bps, burst_bytes=burst, limit_bytes=burst + queue)


def netem_limit_packets(rate_bps: int, delay_us: int, jitter_us: int = 0, mtu: int = 1500) -> int:
    in_flight = rate_bps / 8 * (delay_us + jitter_us) / 1e6 / frame_bytes(mtu)
    return max(NETEM_MIN_LIMIT, math.ceil(1.5 * in_flight))


def netem_for(
    delay_us: int, jitter_us: int = 0, loss_ppm: int = 0, *, rate_bps: int, mtu: int = 1500
) -> Netem:
    """NetEm parameters whose queue holds everything in flight at ``rate_bps``."""
    return Netem(
        delay_us=delay_us,
        jitter_us=jitter_us,
        loss_ppm=loss_ppm,
        limit_packets=netem_limit_packets(rate_bps, delay_us, jitter_us, mtu),
    )


def htb_burst_bytes(rate_bps: int, mtu: int = 1500, wakeup_us: int = DEFAULT_WAKEUP_US) -> int:
    """HTB class bucket: the same reasoning as TBF's burst."""
    return tbf_burst_bytes(rate_bps, mtu, wakeup_us=wakeup_us)


def tbf_with_netem(
    namespace: str,
    ifname: str,
    tbf: Tbf,
    netem: Netem | None,
    *,
    handle: int = 0x10000,
    netem_handle: int = 0x100000,
) -> list[Qdisc]:
    """The egress of a port: TBF at the root (``1:``), NetEm (``10:``) as its child."""
    out = [Qdisc(namespace, ifname, tbf, handle)]
    if netem is not None:
        out.append(Qdisc(namespace, ifname, netem, netem_handle, tbf_class(handle)))
    return out


def ifb_ingress(
    namespace: str,
    port: str,
    ifb: str,
    alias: str,
    tbf: Tbf,
    *,
    mtu: int = 1500,
    prio: int = 1,
    handle: int = 1,
) -> list[KernelObject]:
    """Shaping of what ``port`` receives: an IFB link ``ifb`` (owned through ``alias``),
    the port's ingress qdisc, a redirect of everything it receives to the IFB, and ``tbf``
    at the IFB's root.  Packets leave the IFB back into the port's receive path."""
    return [
        Link(namespace, ifb, LinkKind.IFB, alias=alias, mtu=mtu),
        Qdisc.ingress(namespace, port),
        MirredRedirect(namespace, port, ifb, prio=prio, handle=handle),
        Qdisc(namespace, ifb, tbf),
    ]
