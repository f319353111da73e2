"""SIGTERM and SIGHUP stop a front end the way Ctrl-C does.

Why: Python's default for these signals is to end the process at once, without its exit handlers. A Ray head
started by a front end (:mod:`cluster.head`) is shut down by one of those handlers (``ray.shutdown``); Ray would
install its own SIGTERM handler, but only when ``ray.init`` runs on the main thread, and Parley starts its head on a
thread of its own. Without this, ``kill PID`` leaves Ray's dashboard and runtime-env agents running.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

#: The signals a service manager or a closing terminal sends to ask for a stop.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def stopping_like_ctrl_c() -> Iterator[None]:
    """Inside, each of :data:`STOP_SIGNALS` raises ``KeyboardInterrupt`` in the main thread (enter it from there);
    the previous handlers come back on leaving (the CLI also runs inside test processes)."""
    previous = {sig: signal.signal(sig, signal.default_int_handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
