"""Keeping the job's resident memory near what it holds (glibc on Linux; nothing elsewhere).

A presence tick allocates about 46 response bodies of ~1 MB and as many request bodies, and frees them a moment
later. glibc serves blocks that large from its heap once its dynamic mmap threshold has grown, and keeps the freed
pages, so the RSS climbs far above the live data. ``tune_allocator`` pins the threshold at 128 KiB (large blocks
come from mmap and go back at free, as ``MALLOC_MMAP_THRESHOLD_`` would do); ``release_memory`` hands free heap
pages back after a burst such as the cold start's directory read.
"""

from __future__ import annotations

import ctypes
import gc
import sys
from typing import Any

__all__ = ["release_memory", "tune_allocator"]

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _libc()


def tune_allocator(mmap_threshold: int = 128 * 1024) -> bool:
    """Serve blocks of ``mmap_threshold`` bytes and more from mmap, so they are returned when freed."""
    return bool(_LIBC is not None and _LIBC.mallopt(_M_MMAP_THRESHOLD, mmap_threshold))


def release_memory() -> None:
    """Collect garbage and hand the C allocator's free pages back to the system."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
