"""How torch's OpenMP threads wait for work: chosen before torch loads, from how busy the
other cores were while the command started.

Threads that spin between parallel regions answer at once: on a quiet machine the shapes
video's denoising took 1.1 s against 1.45 s with threads that sleep. But they spin on cores
other programs need: with one of the two cores busy it took 3.6 s (9.4 s at 30,000 spins)
against 1.4-2.0 s sleeping (docs/benchmarks.md). The kernel's tick counts over the command's
own start-up (about 0.1 s of imports, on one core) say which case this is; elsewhere than
Linux, and for the service, which runs for hours beside whatever comes, threads sleep.
"""

from __future__ import annotations

import os


def cpu_ticks() -> tuple[int, int] | None:
    """The machine's idle and total CPU time so far, in ticks; None where /proc is not."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(t) for t in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return ticks[3] + ticks[4], sum(ticks)  # idle and waiting on I/O: free either way


def choose_wait_policy() -> None:
    """Let threads spin only if every other core stayed idle since this module was imported
    (the command's first import); else they sleep. A policy the user set is theirs."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return
    now = cpu_ticks()
    cores = os.cpu_count() or 1
    if STARTED is not None and now is not None and now[1] > STARTED[1]:
        free = (now[0] - STARTED[0]) / (now[1] - STARTED[1]) * cores
        if free >= cores - 1.5:  # this command's start-up keeps one core busy
            return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


STARTED = cpu_ticks()


def threads_sleep() -> None:
    """For a long-running process (the service), unless the user chose: threads sleep."""
    if "GOMP_SPINCOUNT" not in os.environ:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
