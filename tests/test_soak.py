"""The bounded soak (CI's share of ``bench/soak.py``): mixed live, file and text visitors at a fixed rate against
one server process for 1.75 minutes after a 30 s warm-up. Nothing may fail, no temp file may outlive the retention rule,
and memory must be flat over the second half.

Memory grew about 20 MB/min here. Most of it was a leak: every stopped live stream kept its VAD copy, decoder
caches and audio until its tab closed, and the soak's clients, like any API client, never close one; housekeeping
now frees them (``LiveRegistry.drop_finished``). Most of the rest was glibc keeping freed heap (Python's live
allocations grew under 1 MB/min while one ``malloc_trim`` gave back 14-25 MB); housekeeping now gives it back
(:mod:`ui.heap`). RSS is now sampled every second and judged by its floor in each 10 s window (a request in flight
raises only a peak). What remains still grows: +2.3 MB/min over this run's second half, +2.4 and +4.4 MB/min over
the second half of 4-minute runs, so that check stays an expected failure. Python's own objects stopped growing
after the first minute but for Gradio's per-chunk timeout tasks (each streaming chunk leaves one asleep for the
stream's time limit, ~1 KB each), too few to explain it; ``bench/soak.py --minutes 10`` shows the curve. The
figures are printed (``pytest -rP`` shows them).
"""

from __future__ import annotations

import gc
import weakref
from dataclasses import dataclass

import pytest

from bench.soak import SoakReport, run
from ui.live import LiveRegistry

#: RSS growth allowed over the second half, MB per minute (the issue's bound).
MAX_SLOPE_MB_PER_MIN = 1.0


@pytest.fixture(scope="module")
def report() -> SoakReport:
    report = run(minutes=1.75, retention_s=10.0, warmup_s=30.0)
    print("\n".join(report.lines()))
    return report


def test_no_errors_and_no_file_outlives_the_retention_rule(report):
    summary = "\n".join(report.lines())
    assert report.errors == [], summary
    assert sum(report.requests.values()) >= 40, summary  # the traffic really ran
    assert report.stale_files == 0, summary  # every output and upload deleted on time
    assert max(s.temp_files for s in report.samples) > 0, summary  # … and there were some to delete


@pytest.mark.xfail(reason="#14: +2 to +4 MB/min remains over a few minutes (bound 1 MB/min); plateau not shown yet",
                   strict=False)  # fmt: skip
def test_memory_is_flat_over_the_second_half(report):
    assert report.slope_mb_per_min <= MAX_SLOPE_MB_PER_MIN, "\n".join(report.lines())


@dataclass
class _Stream:
    """What the registry reads of a :class:`ui.live.LiveTranslation`."""

    finished: bool
    last_active: float


def test_stopped_streams_are_freed_once_quiet():
    """The soak's leak: every stopped live stream stayed in the registry (with its VAD copy and decoder caches)
    until its tab closed, which an API client never does; now housekeeping frees it after the idle timeout."""
    registry = LiveRegistry()
    stopped = registry.get("a", lambda: _Stream(False, last_active=5.0), owner="tab-1")
    running = registry.get("b", lambda: _Stream(False, last_active=5.0), owner="tab-1")
    recent = registry.get("c", lambda: _Stream(True, last_active=50.0), owner="tab-2")
    stopped.finished = True
    gone = weakref.ref(stopped)
    del stopped
    assert registry.drop_finished(since=20.0) == 1  # stopped and quiet; not the running one, nor a recent stop
    gc.collect()
    assert gone() is None, "something still holds the stopped stream"
    assert registry.peek("b") is running and registry.peek("c") is recent
    registry.drop("b")
    registry.drop_owner("tab-2")
    assert len(registry) == 0 and registry._owners == {} and registry._owner_of == {}  # no key left behind
