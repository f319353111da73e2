"""Handing freed heap memory back to the system, so that a long-running server's memory shows what it holds.

glibc's allocator keeps what a process frees in per-thread arenas for reuse and returns it to the system only now
and then. A server whose requests run on many threads (Gradio's workers, one per live stream) therefore grows in
RSS long after the memory is free: in the soak (bench/soak.py), after the warm-up, Python's live allocations grew
under 1 MB a minute while RSS grew about 14 MB a minute, and one ``malloc_trim`` gave 14-25 MB back each minute.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library is not glibc (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def release_free_heap() -> bool:
    """Return the free pages of every arena to the system (a few ms); False where that is not possible."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
