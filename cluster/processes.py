"""The processes a local Ray head started, found by pid tree in ``/proc`` (Linux), so that a stop can end them all.

Why: ``ray.shutdown`` stops the GCS and the raylet, but the raylet's own children (the dashboard and runtime-env
agents, sometimes a worker) can outlive it when its graceful stop times out on a busy machine; they are then
adopted by init and nothing else would end them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
#: How long the processes left over get after SIGTERM before SIGKILL.
TERM_GRACE_S = 3.0


@dataclass(frozen=True)
class Process:
    pid: int
    parent: int
    session: int
    command: str  # empty for a process that ended and was not reaped yet


def process_table() -> dict[int, Process]:
    """Every process now (empty where there is no ``/proc``)."""
    table = {}
    for entry in PROC.iterdir() if PROC.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state, ppid, pgrp, session, …
        table[int(entry.name)] = Process(int(entry.name), int(fields[1]), int(fields[3]), command)
    return table


def subtree(roots: Iterable[int], table: dict[int, Process]) -> dict[int, Process]:
    """``roots`` and every process below them."""
    found = {pid for pid in roots if pid in table}
    grew = True
    while grew:
        below = {p.pid for p in table.values() if p.parent in found} - found
        found |= below
        grew = bool(below)
    return {pid: table[pid] for pid in found}


def ray_processes(table: dict[int, Process] | None = None) -> dict[int, Process]:
    """The Ray processes this process started (GCS, raylet, dashboard, monitors) and everything below them."""
    table = process_table() if table is None else table
    me = os.getpid()
    return subtree((p.pid for p in table.values() if p.parent == me and "/ray/" in p.command), table)


def survivors(processes: dict[int, Process]) -> dict[int, Process]:
    """Those of ``processes`` still running (same pid and command line: a pid reused since is not theirs)."""
    now = process_table()
    return {pid: p for pid, p in processes.items() if pid in now and now[pid].command == p.command and p.command}


def end(processes: dict[int, Process], grace_s: float = TERM_GRACE_S) -> None:
    """SIGTERM those still running, then SIGKILL what is left after ``grace_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = survivors(processes)
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = survivors(left)
        if not left:
            return
