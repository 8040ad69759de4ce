"""The cyclic garbage collector paused during the pipeline's bursts of allocation.

Loading, mapping, compiling, rendering, observing and planning a topology of a thousand
VMs allocate some hundred thousand small objects that are almost all acyclic (frozen
dataclasses, tuples, strings), and the collector's generation-2 passes over that heap
took 0.1-0.2 s of a one-second re-apply (measured with bench/apply.py at 1000 VMs).
Reference counting still frees everything; the few cycles wait for the next collection
after the work is done.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def paused() -> Iterator[None]:
    """Run the block with the collector off; nested blocks leave it to the outermost."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def pausing(function: Callable[P, R]) -> Callable[P, R]:
    """Decorator: the function runs with the collector paused (see :func:`paused`)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with paused():
            return function(*args, **kwargs)

    return wrapper
