"""How often Python threads hand the interpreter lock to each other, for every front end that runs the model.

Python's default switch interval is 5 ms: a thread keeps the lock that long while another waits for it. Every
torch op of the scheduler's worker gives the lock up and waits to take it back, behind the web loop and the
sessions' threads: 300 small ops beside one busy Python thread took 876 ms at 5 ms, 369 ms at 1 ms and 5 ms alone
(2 cores, one torch thread). The desktop mode's audio callbacks wait the same way, and a late output callback is an
underrun: the played timeline slips against the watermark's phase (with two underruns, a desktop test run's
speaker recording read no payload).
"""

from __future__ import annotations

import sys

GIL_SWITCH_INTERVAL_S = 0.001


def hand_over_often() -> None:
    """Set the interpreter's switch interval to :data:`GIL_SWITCH_INTERVAL_S` (process-wide)."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
