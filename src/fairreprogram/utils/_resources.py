"""Resource readings reported with every run."""

from __future__ import annotations

import math

__all__ = ["peak_memory_mb"]


def peak_memory_mb() -> float:
    """Peak resident memory of this process in MiB (NaN where the OS does not say)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return math.nan
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
