"""Resource readings reported with every run.

A sweep's worker processes run many trials one after another, and a process's peak
resident memory (``ru_maxrss``) only ever grows: read at the end of a trial, it is the
largest peak of every trial the worker ran so far. On Linux the kernel's high-water mark
(``VmHWM``) can be reset through ``/proc/self/clear_refs``, so each run starts a window
with :func:`start_memory_window` and reads its own peak with :func:`peak_memory_mb`.
Where the reset is not possible the reading stays the process's peak so far, an upper
bound on the run's, and the run records that in ``peak_memory_scope``.
"""

from __future__ import annotations

import math
from pathlib import Path

__all__ = ["peak_memory_mb", "start_memory_window"]

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")
_RESET_HIGH_WATER_MARK = "5"  # see proc(5), /proc/pid/clear_refs


def start_memory_window() -> str:
    """Start a new peak-memory window for this process and say what the next reading covers.

    Returns ``"run"`` when the kernel's high-water mark was reset (the next
    :func:`peak_memory_mb` is the peak since this call), else ``"process"`` (it is the
    peak since the process started, an upper bound).
    """
    try:
        _CLEAR_REFS.write_text(_RESET_HIGH_WATER_MARK)
    except OSError:  # not Linux, or /proc is not writable here
        return "process"
    return "run" if _high_water_mark_mb() is not None else "process"


def peak_memory_mb() -> float:
    """Peak resident memory in MiB since :func:`start_memory_window` (NaN where the OS does not say).

    Without a window (or where it cannot be reset) this is the process's peak so far.
    """
    mark = _high_water_mark_mb()
    if mark is not None:
        return mark
    try:
        import resource
    except ImportError:  # not on Windows
        return math.nan
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _high_water_mark_mb() -> float | None:
    try:
        status = _STATUS.read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0  # reported in kB
    return None
