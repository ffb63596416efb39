"""Linux parent-death signals: a process asks to be signalled when its parent dies.

Shared by the controller (Luigi task processes, spark-submit) and the job's driver,
which imports it from the shipped ``tasks`` zip. Elsewhere than Linux it does nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Resolved at import, before any fork: a child between fork and exec makes only the C call.
prctl = _load_prctl()


def set_parent_death_signal(sig: int) -> None:
    """Ask for ``sig`` when the parent dies (safe as a ``preexec_fn``)."""
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, sig)


def die_with_parent(sig: int, expected_parent: int | None = None) -> int | None:
    """Ask for ``sig`` when the parent dies; if the parent is already gone (this process
    was re-parented, to PID 1 or a subreaper), send it at once. ``expected_parent``
    defaults to the parent seen before asking, which closes the race between the two.
    Returns the parent pid being watched, or ``None`` where unsupported."""
    if prctl is None:
        return None
    parent = os.getppid() if expected_parent is None else expected_parent
    prctl(_PR_SET_PDEATHSIG, sig)
    if os.getppid() != parent:
        os.kill(os.getpid(), sig)
    return parent
