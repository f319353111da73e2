"""Keeping a long-running server's heap from growing by fragmentation, and handing freed memory back to the system.

glibc's allocator keeps what a process frees for reuse and returns it to the system only now and then. Two of its
defaults made the server's memory grow for as long as it served (bench/soak.py), though Python's own allocations,
NumPy's included, stayed flat (tracemalloc: +0.3 MB/min against RSS +3.7 MB/min):

- one arena per thread, up to eight per core: Gradio's workers, the scheduler, live streams and housekeeping each
  fragment their own arena;
- a *sliding* mmap threshold: each freed large block (a tensor, an audio buffer) raises the size above which blocks
  are mapped on their own, up to 32 MB, so later tensors of a few MB land in the arenas and leave holes there.

With two arenas and a fixed 128 KB threshold (glibc's starting value) the soak's floor was flat over 5 minutes:
+0.02 MB/min set here, in process, and -0.03 MB/min set through glibc's variables at launch, against +3.7 MB/min
by default. ``malloc_trim`` (each housekeeping round) gives back what the arenas still hold free.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Collection

#: mallopt's parameter numbers (glibc's malloc.h).
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8
#: Heap arenas for the whole process (glibc's default: 8 per core).
ARENAS = 2
#: Blocks of at least this size are mapped on their own and unmapped when freed (glibc starts here, then slides).
MMAP_THRESHOLD_BYTES = 128 * 1024


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library if it is glibc (it has ``malloc_trim`` and ``mallopt``), else None (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc if libc is not None and libc.malloc_trim and libc.mallopt else None
    except (OSError, AttributeError):
        return None


#: glibc's own variable for each setting, and (mallopt parameter, value) set when the host did not set it.
MALLOPT_BY_VARIABLE = {
    "MALLOC_ARENA_MAX": (_M_ARENA_MAX, ARENAS),
    "MALLOC_MMAP_THRESHOLD_": (_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
}


def bound_heap_growth(host_set: Collection[str] = ()) -> bool:
    """Set :data:`ARENAS` and a fixed :data:`MMAP_THRESHOLD_BYTES` for this process (call it first, before threads
    start), except those whose glibc variable is in ``host_set`` (glibc read the host's value at start-up). False
    where the C library is not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    for variable, (parameter, value) in MALLOPT_BY_VARIABLE.items():
        if variable not in host_set:
            libc.mallopt(parameter, value)
    return True


def release_free_heap() -> bool:
    """Return the free pages of every arena to the system (a few ms); False where that is not possible."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
